"""The catch-all: signed-in (or bearer) requests that pass the rules go to their upstream with
identity headers; public routes go without; others sign in, or are told they may not. A path that
servers would read as different upstreams' paths is refused first (400, ``routing.Router.route``)."""

from __future__ import annotations

import functools
import logging
from urllib.parse import quote

from aiohttp import web

from .. import pages
from ..authz import Rules
from ..cors import CorsPolicy, is_preflight
from ..forward_headers import upstream_request_headers
from ..identity import Principal
from ..keys import COOKIES, INJECT, METRICS, REQUEST_ID, ROUTER, RULES, SETTINGS, UPSTREAM_HTTP
from ..local_upstream import serve_file, static_answer
from ..paths import canonical_path
from ..rewrite import RewriteRefused
from ..routing import PathRefused, Upstream
from ..trusted_proxies import in_networks
from ..upstream import forward_http
from ..upstream_ws import forward_ws, is_websocket
from .access import (
    BearerRejected,
    bearer_challenge,
    denial,
    invalid_token,
    principal,
    refusal,
    rule_denial,
    skip_auth,
    wrong_provider,
)
from .common import CSRF_FIELD, UPSTREAM_CSRF_HEADER, client, csrf_token, own_origin, prefix, start_url

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
        body = pages.fragment("signed_in_as", who=who_text)
        if who.via == "session":
            label = "Sign out and sign in as someone else"
            form = pages.fragment(
                "sign_out_form",
                action=sign_out,
                field=CSRF_FIELD,
                token=csrf_token(request) or "",
                label=label,
            )
            body = pages.concat(body, form)
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
    response: web.StreamResponse | None = None
    try:
        upstream = request.app[ROUTER].route(request.raw_path)
    except PathRefused as exc:
        upstream, response = None, refused(request, exc)
    policy = upstream.cors if upstream is not None else request.app[SETTINGS].cors.policy
    if policy is not None and response is None and is_preflight(request):
        return policy.preflight(request)  # before sign-in: preflights carry no cookies
    if response is None:
        response = await _authorized(request, upstream, policy)
    if policy is not None and not response.prepared:  # a streamed answer got them before prepare()
        policy.decorate(request, response.headers)
    return response


async def _authorized(
    request: web.Request, upstream: Upstream | None, policy: CorsPolicy | None
) -> web.StreamResponse:
    if skip_auth(request, request.method, request.raw_path):
        if upstream is None:
            return pages.error(request, 404, "Not found", "No application is configured for this path.")
        return await _answer(request, upstream, None, policy)
    if upstream is not None and upstream.trusted_ips and _trusted_ip(request, upstream):
        return await _answer(request, upstream, None, policy)
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
    fold = upstream.case_insensitive
    if rule_denial(request, who, request.method, request.raw_path, fold, upstream=upstream.prefix):
        return forbidden(request, who)
    step_up = refusal(request, who, upstream)
    if step_up is not None:
        return step_up
    return await _answer(request, upstream, who, policy)


async def _answer(
    request: web.Request,
    upstream: Upstream,
    who: Principal | None,
    policy: CorsPolicy | None,
) -> web.StreamResponse:
    """After authorization: the rewrite (if any), then the upstream, or the proxy's own answer."""
    if upstream.kind == "static":
        return static_answer(upstream.status)
    try:
        if upstream.kind == "file":
            local = upstream.local_path(canonical_path(request.raw_path))
            return await serve_file(request, upstream.root, local)
        if upstream.rewrite is not None:
            upstream.target(request.raw_path)  # refused here, before anything is sent
    except RewriteRefused as exc:
        log.warning(
            "rewrite refused: %s",
            exc.why,
            extra={"event": "refused", "status": exc.status, "path": request.raw_path[:512]},
        )
        if exc.status == 414:
            return pages.error(request, 414, "Address too long", "Please use a shorter address.")
        return pages.error(request, 400, "Bad request path", "This address can't be passed on.")
    return await _forward(request, upstream, who, policy)


def _trusted_ip(request: web.Request, upstream: Upstream) -> bool:
    """Whether the client address (never a header an untrusted peer sent) is in the upstream's
    ``trusted_ips``: then it passes without sign-in and without identity headers."""
    who = client(request)
    if not who.certain or not in_networks(who.ip, upstream.trusted_ips):
        return False
    log.info(
        "trusted address passes without sign-in",
        extra={"event": "trusted_ip", "client": who.ip, "peer": who.peer, "upstream": upstream.prefix},
    )
    request.app[METRICS].trusted_ip_requests.labels(upstream.prefix).inc()
    return True


async def _forward(
    request: web.Request, upstream: Upstream, who: Principal | None, policy: CorsPolicy | None
) -> web.StreamResponse:
    app = request.app
    codec, settings = app[COOKIES], app[SETTINGS]
    scheme, _, host = own_origin(request).partition("://")
    scope = app[INJECT].for_prefix(upstream.prefix)
    identity = scope.filter_groups(who.identity) if who is not None else None
    bearer = who is not None and who.via == "bearer"
    headers = upstream_request_headers(
        request,
        upstream,
        identity,
        strip=app[INJECT].strip,
        drop_cookies=codec.names,
        client=client(request),
        scheme=scheme,
        host=host,
        max_groups_bytes=settings.headers.max_groups_bytes,
    )
    if who is not None:
        headers.update(scope.headers(who.identity, who.access_token, who.id_token))
    token = csrf_token(request) if identity is not None else None
    if token is not None:
        headers[UPSTREAM_CSRF_HEADER] = token  # for the app's sign-out form (logout.allow_get: false)
    if is_websocket(request):
        return await forward_ws(request, app[UPSTREAM_HTTP], upstream, headers, bearer=bearer)
    return await forward_http(
        request, app[UPSTREAM_HTTP], upstream, headers, max_body=settings.server.max_body_bytes,
        no_store=settings.headers.no_store and identity is not None,
        on_headers=None if policy is None else functools.partial(policy.decorate, request),
    )  # fmt: skip
