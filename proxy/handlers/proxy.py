"""The catch-all: signed-in (or bearer) requests that pass the rules go to their upstream with
identity headers; public routes go without; others sign in, or are told they may not. A path that
servers would read as different upstreams' paths is refused first (400, ``routing.Router.route``)."""

from __future__ import annotations

import html
import logging
from urllib.parse import quote

from aiohttp import web

from .. import pages
from ..authz import Rules
from ..forward_headers import upstream_request_headers
from ..keys import COOKIES, REQUEST_ID, ROUTER, RULES, SETTINGS, UPSTREAM_HTTP
from ..routing import PathRefused, Upstream
from ..sessions.base import Identity
from ..upstream import forward_http
from ..upstream_ws import forward_ws, is_websocket
from .access import BearerRejected, Principal, bearer_challenge, denial, invalid_token, principal, skip_auth
from .context import CSRF_FIELD, own_origin, prefix, start_url
from .logout import UPSTREAM_CSRF_HEADER, csrf_token
from .stepup import refusal, wrong_provider

log = logging.getLogger(__name__)


def unauthenticated(request: web.Request) -> web.StreamResponse:
    """Browsers navigating are sent to sign in; everything else gets 401 JSON."""
    if pages.wants_html(request) and request.method in ("GET", "HEAD"):
        return web.Response(
            status=302, headers={"Location": start_url(request, request.raw_path), **pages.NO_STORE}
        )
    return web.json_response(
        {"error": "unauthorized", "message": "sign in required", "sign_in": f"{prefix(request)}/start"},
        status=401,
        headers={**pages.NO_STORE, **bearer_challenge(request)},
    )


def forbidden(request: web.Request, who: Principal) -> web.Response:
    """403: who is signed in, and a way to sign out (to come back as someone else)."""
    identity = who.identity
    sign_out = f"{prefix(request)}/sign_out?rd={quote(request.raw_path, safe='')}"
    message = "Your account is not allowed to use this page."
    if pages.wants_html(request):
        who_text = identity.user + (f" ({identity.email})" if identity.email else "")
        body = f"<p>You are signed in as <strong>{html.escape(who_text)}</strong>.</p>"
        if who.via == "session":
            body += (
                f'<form id="sign-out" method="post" action="{html.escape(sign_out, quote=True)}">'
                f'<input type="hidden" name="{CSRF_FIELD}" value="{html.escape(csrf_token(request) or "")}">'
                '<button type="submit">Sign out and sign in as someone else</button></form>'
            )
        return pages.html_page(request, 403, "Access denied", message, body, kind="forbidden")
    payload: dict[str, object] = {
        "error": "forbidden",
        "message": message,
        "user": identity.user,
        "email": identity.email,
        "request_id": request.get(REQUEST_ID, "-"),
    }
    if who.via == "session":
        payload["sign_out"] = sign_out
    return web.json_response(payload, status=403, headers=pages.NO_STORE)


def rules_for(request: web.Request, upstream: Upstream) -> list[Rules]:
    """The rules of the upstream the request goes to. Only one set: ``Router.route`` refused every
    path that some server would read as another upstream's."""
    return [request.app[RULES].for_prefix(upstream.prefix)]


def refused(request: web.Request, exc: PathRefused) -> web.Response:
    """400 for a path servers disagree about (logged with the reading that would escape)."""
    log.warning(
        "path refused: %s",
        exc.why,
        extra={"event": "refused", "status": 400, "path": request.raw_path[:512], "reader": exc.reader,
               "reading": exc.reading[:512]},
    )  # fmt: skip
    return pages.error(
        request, 400, "Bad request path",
        "Servers would read this address differently (dot segments, ';', escapes or backslashes). "
        "Please use the plain address.",
    )  # fmt: skip


async def proxy(request: web.Request) -> web.StreamResponse:
    if request.path.startswith(prefix(request) + "/") or request.path == prefix(request):
        return pages.error(request, 404, "Not found", "There is no such page of the sign-in proxy.")
    try:
        upstream = request.app[ROUTER].route(request.raw_path)
    except PathRefused as exc:
        return refused(request, exc)
    if skip_auth(request, request.method, request.raw_path):
        if upstream is None:
            return pages.error(request, 404, "Not found", "No application is configured for this path.")
        return await _forward(request, upstream, None)
    try:
        who = await principal(request)
    except BearerRejected:
        return invalid_token()
    if who is None:
        return unauthenticated(request)
    if upstream is None:
        return pages.error(request, 404, "Not found", "No application is configured for this path.")
    if denial(request, who, rules_for(request, upstream), request.path, upstream=upstream.prefix):
        return forbidden(request, who)
    if wrong_provider(who, upstream):
        return forbidden(request, who)
    step_up = refusal(request, who, upstream)
    if step_up is not None:
        return step_up
    return await _forward(request, upstream, who.identity, bearer=who.via == "bearer")


async def _forward(
    request: web.Request, upstream: Upstream, identity: Identity | None, *, bearer: bool = False
) -> web.StreamResponse:
    app = request.app
    codec, settings = app[COOKIES], app[SETTINGS]
    scheme, _, host = own_origin(request).partition("://")
    headers = upstream_request_headers(
        request,
        upstream,
        identity,
        drop_cookies=codec.names,
        trust_forwarded=settings.server.trust_forwarded_headers,
        scheme=scheme,
        host=host,
        max_groups_bytes=settings.headers.max_groups_bytes,
    )
    token = csrf_token(request) if identity is not None else None
    if token is not None:
        headers[UPSTREAM_CSRF_HEADER] = token  # for the app's sign-out form (logout.allow_get: false)
    if is_websocket(request):
        return await forward_ws(request, app[UPSTREAM_HTTP], upstream, headers, bearer=bearer)
    return await forward_http(
        request, app[UPSTREAM_HTTP], upstream, headers, max_body=settings.server.max_body_bytes,
        no_store=settings.headers.no_store and identity is not None,
    )  # fmt: skip
