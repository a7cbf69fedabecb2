"""The catch-all: signed-in requests go to their upstream with identity headers; others sign in."""

from __future__ import annotations

from aiohttp import web

from .. import pages
from ..keys import COOKIES, ROUTER, SETTINGS, UPSTREAM_HTTP
from ..sessions.request import current_session
from ..upstream import forward_http, upstream_request_headers
from ..upstream_ws import forward_ws, is_websocket
from .context import own_origin, prefix, start_url


def unauthenticated(request: web.Request) -> web.StreamResponse:
    """Browsers navigating are sent to sign in; everything else gets 401 JSON."""
    if pages.wants_html(request) and request.method in ("GET", "HEAD"):
        return web.Response(
            status=302, headers={"Location": start_url(request, request.raw_path), **pages.NO_STORE}
        )
    return web.json_response(
        {"error": "unauthorized", "message": "sign in required", "sign_in": f"{prefix(request)}/start"},
        status=401,
        headers=pages.NO_STORE,
    )


async def proxy(request: web.Request) -> web.StreamResponse:
    app = request.app
    if request.path.startswith(prefix(request) + "/") or request.path == prefix(request):
        return pages.error(request, 404, "Not found", "There is no such page of the sign-in proxy.")
    session = await current_session(request)
    if session is None:
        return unauthenticated(request)
    upstream = app[ROUTER].match(request.path)
    if upstream is None:
        return pages.error(request, 404, "Not found", "No application is configured for this path.")
    codec, server = app[COOKIES], app[SETTINGS].server
    scheme, _, host = own_origin(request).partition("://")
    headers = upstream_request_headers(
        request,
        upstream,
        session.identity,
        drop_cookies=frozenset({codec.name, codec.login_name}),
        trust_forwarded=server.trust_forwarded_headers,
        scheme=scheme,
        host=host,
        max_groups_bytes=app[SETTINGS].headers.max_groups_bytes,
    )
    if is_websocket(request):
        return await forward_ws(request, app[UPSTREAM_HTTP], upstream, headers)
    return await forward_http(request, app[UPSTREAM_HTTP], upstream, headers)
