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
from .oidc.discovery import Provider
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
    provider: Provider
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
                claims = await self._verified(tokens[0])
                identity = identity_from(settings.authorization, [claims])
                return Principal(identity, tokens[0], "bearer")
        session = await self.session(request)
        if session is None:
            return None
        return Principal(session.identity, session.access_token, "session", session.id_token)

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

    async def _verified(self, token: str) -> dict[str, object]:
        settings = self.settings
        try:
            return await verify_access_token(
                self.provider,
                token,
                audiences=settings.api.audiences or [settings.provider.client_id],
                authorized_parties=settings.api.authorized_parties,
                untyped=settings.api.untyped_access_tokens,
            )
        except TokenInvalid as exc:
            log.info("bearer token refused: %s", exc.message, extra={"event": "bearer_invalid"})
            raise BearerRejected(exc.message) from None
