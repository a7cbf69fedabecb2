"""Who is asking, and may they: what the proxy path and ``/oauth/auth`` share.

- :func:`skip_auth`: a public route (or CORS preflight): no session, no identity.
- :func:`principal`: the bearer token (``api.accept_bearer``) if one is presented, else the session;
  ``None`` for neither; :class:`BearerRejected` for a bad token.
- :func:`denial`: which rule (if any) turns the identity away; denials are logged.
- :func:`rule_denial`: the same for ``authorization.rules`` (method and path of the request).
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
from ..rules import Denial, effective_methods

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
