"""Who is asking, and may they: what the proxy path and ``/oauth/auth`` share.

- :func:`skip_auth`: a public route (or CORS preflight): no session, no identity.
- :func:`principal`: the bearer token (``api.accept_bearer``) if one is presented, else the session;
  ``None`` for neither; :class:`BearerRejected` for a bad token.
- :func:`denial`: which rule (if any) turns the identity away; denials are logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Literal, NamedTuple

from aiohttp import web

from .. import pages
from ..authz import Rules, first_denial
from ..errors import TokenInvalid
from ..keys import PROVIDERS, RULES, SETTINGS
from ..oidc.bearer import bearer_token, identity_from, verify_access_token
from ..oidc.providers import ProviderEntry
from ..oidc.tokens import unverified_issuer
from ..paths import skips_auth
from ..sessions.base import Identity, Session
from ..sessions.request import current_session

log = logging.getLogger(__name__)

REALM = "auth-proxy"


class Principal(NamedTuple):
    """Who asks (a named tuple: built for every request, and a frozen dataclass costs ~1 us more)."""

    identity: Identity
    access_token: str
    via: Literal["session", "bearer"]
    session: Session | None = None
    provider: str | None = None
    """The id of the provider that vouches for them (``None``: a session from before several
    providers, the first one's)."""
    acr: str | None = None
    """How strongly they signed in (the ID token's, or the bearer token's, ``acr``)."""


class BearerRejected(Exception):
    """A presented bearer token failed verification (→ 401 ``invalid_token``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
    settings = request.app[SETTINGS]
    if settings.api.accept_bearer:
        values = request.headers.getall("Authorization", [])
        tokens = [t for t in (bearer_token(v) for v in values) if t is not None]
        if tokens:
            if len(values) > 1:
                raise BearerRejected("more than one Authorization header")
            entry, claims = await _verified(request, tokens[0])
            identity = identity_from(settings.authorization, [claims])
            acr = claims.get("acr")
            return Principal(
                identity, tokens[0], "bearer", None, entry.id, acr if isinstance(acr, str) else None
            )
    session = await current_session(request)
    if session is None:
        return None
    provider = session.provider or request.app[PROVIDERS].configs[0].id
    return Principal(session.identity, session.access_token, "session", session, provider, session.acr)


def _bearer_provider(request: web.Request, token: str) -> ProviderEntry:
    """The provider whose keys verify ``token``: the one whose issuer it claims, if ``api.issuers``
    (default: every provider's) lists it; the verification checks ``iss`` again."""
    entry = request.app[PROVIDERS].by_issuer(unverified_issuer(token) or "")
    allowed = request.app[SETTINGS].api.issuers
    if entry is None or (allowed is not None and entry.issuer not in {i.rstrip("/") for i in allowed}):
        raise TokenInvalid("the access token is not from an accepted issuer")
    return entry


async def _verified(request: web.Request, token: str) -> tuple[ProviderEntry, dict[str, object]]:
    settings = request.app[SETTINGS]
    try:
        entry = _bearer_provider(request, token)
        claims = await verify_access_token(
            entry.discovery,
            token,
            audiences=settings.api.audiences or [entry.client.client_id],
            authorized_parties=settings.api.authorized_parties,
        )
        return entry, claims
    except TokenInvalid as exc:
        log.info("bearer token refused: %s", exc.message, extra={"event": "bearer_invalid"})
        raise BearerRejected(exc.message) from None


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
