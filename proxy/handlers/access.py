"""Who is asking, and may they: what the proxy path and ``/oauth/auth`` share.

- :func:`skip_auth`: a public route (or CORS preflight): no session, no identity.
- :func:`principal`: the bearer token (``api.accept_bearer``) if one is presented, else the session;
  ``None`` for neither; :class:`BearerRejected` for a bad token.
- :func:`denial`: which rule (if any) turns the identity away; denials are logged.
- :func:`rule_denial`: the same for ``authorization.rules`` (method and path of the request).
- :func:`wrong_provider`, :func:`refusal`: per-upstream conditions on how someone signed in:
  ``upstreams[].providers`` (which provider vouches for them: else 403) and ``upstreams[].acr`` (how
  strongly: step-up). A session whose ID token ``acr`` is not one the upstream lists is sent to sign
  in again at its provider with ``acr_values`` (a browser navigating: 302; other clients: 401 JSON
  naming the sign-in URL), unless its sign-in already asked for exactly that (the provider did not
  deliver: 403, no loop). A bearer token whose ``acr`` falls short gets 401
  ``insufficient_user_authentication`` (RFC 9470): it can't be stepped up here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiohttp import web

from .. import pages
from ..authenticator import BearerRejected as BearerRejected
from ..authz import Rules, first_denial
from ..identity import Principal
from ..keys import AUTHENTICATOR, RULE_TABLE, RULES, SETTINGS
from ..paths import skips_auth
from ..routing import Upstream
from ..rules import Denial, effective_methods
from ..signin import ACR_VALUES, acr_verdict
from .common import provider_start_url

log = logging.getLogger(__name__)

REALM = "auth-proxy"


def skip_auth(request: web.Request, method: str, raw_path: str) -> bool:
    book = request.app[RULES]
    if not book.has_public_routes:
        return False
    return skips_auth(
        book.public,
        preflight=book.public_preflight,
        method=method,
        raw_path=raw_path,
        cors_preflight="Access-Control-Request-Method" in request.headers,
    )


async def principal(request: web.Request) -> Principal | None:
    """Who asks (``proxy.authenticator``): ``None`` for nobody, ``BearerRejected`` for a bad token."""
    return await request.app[AUTHENTICATOR].current(request)


def www_authenticate(error: str | None = None) -> str:
    """RFC 6750 §3. The reason stays in our log: the client learns only that the token failed."""
    value = f'Bearer realm="{REALM}"'
    return value + f', error="{error}"' if error else value


def bearer_challenge(request: web.Request) -> dict[str, str]:
    """The ``WWW-Authenticate`` of a 401 for a request without credentials, when bearers are accepted."""
    return {"WWW-Authenticate": www_authenticate()} if request.app[SETTINGS].api.accept_bearer else {}


def invalid_token(json_body: bool = True) -> web.Response:
    headers = {**pages.NO_STORE, "WWW-Authenticate": www_authenticate("invalid_token")}
    if not json_body:
        return web.Response(status=401, headers=headers)
    body = {"error": "invalid_token", "message": "the bearer token is invalid or expired"}
    return web.json_response(body, status=401, headers=headers)


def denial(
    request: web.Request, who: Principal, all_rules: Iterable[Rules], path: str, **context: str
) -> str | None:
    """The rule ``who`` fails (logged), or ``None`` when every rule set lets them through."""
    failed = first_denial(all_rules, who.identity)
    if failed is not None:
        log.info(
            "denied by %s",
            failed,
            extra={"event": "denied", "sub": who.identity.sub, "user": who.identity.user,
                   "rule": failed, "via": who.via, "path": path, **context},
        )  # fmt: skip
    return failed


def rule_denial(
    request: web.Request,
    who: Principal,
    method: str | None,
    raw_path: str | None,
    fold: bool = False,
    **context: str,
) -> Denial | None:
    """The ``authorization.rules`` entry that refuses ``method`` on ``raw_path`` (logged with its
    index), or ``None``. ``None`` for the method or path means the front did not say: refused."""
    table = request.app[RULE_TABLE]
    if not table:
        return None
    if table.uses_methods:
        query = raw_path.partition("?")[2] if raw_path else ""
        methods = effective_methods(method, request.headers, query)
    else:
        methods = ("*",)  # no rule names a method
    found = table.decide(who.identity, methods, raw_path, fold)
    if found is not None:
        log.info(
            "denied by %s: %s",
            found.key if found.index >= 0 else "authorization.rules",
            found.reason,
            extra={"event": "denied", "sub": who.identity.sub, "user": who.identity.user,
                   "rule": "authorization.rules", "rule_index": found.index, "rule_name": found.name,
                   "reason": found.reason, "via": who.via, "method": (method or "?")[:16],
                   "path": (raw_path or "?")[:512], **context},
        )  # fmt: skip
    return found


def refusal(request: web.Request, who: Principal, upstream: Upstream) -> web.StreamResponse | None:
    """``None`` when ``who`` meets ``upstream``'s ``acr``, else the answer: a step-up sign-in, a
    403 page, or (bearer) a 401 challenge."""
    if not upstream.acr:
        return None
    required = " ".join(upstream.acr)
    verdict = acr_verdict(upstream.acr, who.acr, who.acr_requested, session=who.via == "session")
    if verdict == "ok":
        return None
    extra = {"event": "step_up", "sub": who.identity.sub, "upstream": upstream.prefix, "acr": who.acr}
    if verdict == "step_up":
        log.info("step-up sign-in required", extra=extra)
        url = provider_start_url(request, request.raw_path, who.provider, **{ACR_VALUES: required})
        if pages.wants_html(request) and request.method in ("GET", "HEAD"):
            return web.Response(status=302, headers={"Location": url, **pages.NO_STORE})
        body = {"error": "step_up_required", "message": "a stronger sign-in is required", "sign_in": url}
        return web.json_response(body, status=401, headers=pages.NO_STORE)
    log.info("denied: sign-in not strong enough", extra={**extra, "event": "denied", "rule": "acr"})
    if who.via == "bearer":
        challenge = (
            f'Bearer realm="{REALM}", error="insufficient_user_authentication", acr_values="{required}"'
        )
        body = {"error": "insufficient_user_authentication", "acr_values": required}
        return web.json_response(body, status=401, headers={**pages.NO_STORE, "WWW-Authenticate": challenge})
    return pages.error(
        request, 403, "Stronger sign-in required",
        "This page needs a stronger sign-in than the sign-in provider gave. Sign out and try again, "
        "or ask your administrator.",
    )  # fmt: skip


def wrong_provider(who: Principal, upstream: Upstream) -> bool:
    """Whether ``upstream`` is closed to ``who``'s provider (logged; the caller answers 403)."""
    if upstream.providers is None or who.provider in upstream.providers:
        return False
    log.info(
        "denied by upstream providers",
        extra={"event": "denied", "sub": who.identity.sub, "rule": "providers", "via": who.via,
               "provider": who.provider, "upstream": upstream.prefix},
    )  # fmt: skip
    return True
