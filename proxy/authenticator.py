"""Who is asking: a bearer token (``api.accept_bearer``) if one is presented, else the session in
the request's cookie, refreshed when due. Built by ``proxy.app`` with what it uses; handlers reach it
through ``proxy.handlers.access.principal`` and ``proxy.sessions.request.current_session``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from .config import Settings
from .cookies import CookieCodec
from .errors import TokenInvalid
from .identity import Principal
from .oidc.bearer import bearer_token, identity_from, verify_access_token
from .oidc.providers import ProviderEntry, Providers
from .oidc.tokens import unverified_issuer
from .sessions.base import Session
from .sessions.refresh import Refresher
from .sessions.store import SessionStore

log = logging.getLogger(__name__)


class BearerRejected(Exception):
    """A presented bearer token failed verification (→ 401 ``invalid_token``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Authenticator:
    settings: Settings
    codec: CookieCodec
    store: SessionStore
    refresher: Refresher
    providers: Providers
    kept_as: web.RequestKey[Session | None]
    """Where the session found is kept on the request (``keys.SESSION``: the access log reads it)."""

    async def current(self, request: web.Request) -> Principal | None:
        """The bearer token's principal if one is presented, else the session's; ``None`` for
        neither; :class:`BearerRejected` for a bad token."""
        settings = self.settings
        if settings.api.accept_bearer:
            values = request.headers.getall("Authorization", [])
            tokens = [t for t in (bearer_token(v) for v in values) if t is not None]
            if tokens:
                if len(values) > 1:
                    raise BearerRejected("more than one Authorization header")
                entry, claims = await self._verified(tokens[0])
                identity = identity_from(settings.authorization, [claims])
                acr = claims.get("acr")
                return Principal(
                    identity, tokens[0], "bearer", None, entry.id, acr if isinstance(acr, str) else None
                )
        session = await self.session(request)
        if session is None:
            return None
        provider = session.provider or self.providers.configs[0].id
        return Principal(
            session.identity, session.access_token, "session", session.id_token, provider, session.acr,
            session.acr_requested,
        )  # fmt: skip

    async def session(self, request: web.Request) -> Session | None:
        """The signed-in session, ``None`` without one. ``StoreUnavailable`` propagates: fail
        closed. Each handler asks once (it slides the idle timeout); the answer is kept on the
        request for the access log."""
        session = None
        ticket = self.codec.ticket_from(request)
        if ticket is not None:
            session = await self.store.load(ticket)
            if session is not None and self.refresher.due(session):
                session = await self.refresher.fresh(ticket, session)
            if session is not None:
                await self.store.touch(ticket, session)
        request[self.kept_as] = session
        return session

    def _bearer_provider(self, token: str) -> ProviderEntry:
        """The provider whose keys verify ``token``: the one whose issuer it claims, if ``api.issuers``
        (default: every provider's) lists it; the verification checks ``iss`` again."""
        entry = self.providers.by_issuer(unverified_issuer(token) or "")
        allowed = self.settings.api.issuers
        if entry is None or (allowed is not None and entry.issuer not in {i.rstrip("/") for i in allowed}):
            raise TokenInvalid("the access token is not from an accepted issuer")
        return entry

    async def _verified(self, token: str) -> tuple[ProviderEntry, dict[str, object]]:
        settings = self.settings
        try:
            entry = self._bearer_provider(token)
            claims = await verify_access_token(
                entry.discovery,
                token,
                audiences=settings.api.audiences or [entry.client.client_id],
                authorized_parties=settings.api.authorized_parties,
                untyped=settings.api.untyped_access_tokens,
            )
            return entry, claims
        except TokenInvalid as exc:
            log.info("bearer token refused: %s", exc.message, extra={"event": "bearer_invalid"})
            raise BearerRejected(exc.message) from None
