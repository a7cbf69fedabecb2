"""Sessions and login states on top of a backend: encryption, keys, lifetimes."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

from .backend import Backend
from .base import LoginState, Session, Ticket
from .crypto import open_sealed, seal

log = logging.getLogger(__name__)

LOGIN_TTL = 600
"""Seconds a started login may take before its state expires."""


def _login_key(state: str) -> str:
    return "ap:login:" + hashlib.sha256(state.encode()).hexdigest()


class SessionStore:
    def __init__(self, backend: Backend, clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self._clock = clock

    async def create(self, session: Session) -> Ticket:
        """Save ``session`` under a brand-new ticket (never reuse one: session fixation)."""
        ticket = Ticket.new()
        await self.save(ticket, session)
        return ticket

    async def save(self, ticket: Ticket, session: Session) -> None:
        ttl = session.ttl(self._clock())
        await self.backend.set(ticket.key, seal(ticket, session.to_bytes()), ttl)

    async def load(self, ticket: Ticket) -> Session | None:
        """The session, or ``None`` if it ended, expired or can't be read with this ticket."""
        blob = await self.backend.get(ticket.key)
        if blob is None:
            return None
        plain = open_sealed(ticket, blob)
        if plain is None:
            log.warning("session blob did not open with the presented ticket", extra={"event": "session_bad"})
            return None
        try:
            session = Session.from_bytes(plain)
        except ValueError as exc:
            log.warning("unreadable session dropped: %s", exc, extra={"event": "session_bad"})
            return None
        if session.expires_at <= self._clock():
            return None
        return session

    async def delete(self, ticket: Ticket) -> bool:
        return await self.backend.delete(ticket.key) > 0

    async def put_login(self, state: str, login: LoginState) -> None:
        await self.backend.set(_login_key(state), login.to_bytes(), LOGIN_TTL)

    async def take_login(self, state: str) -> LoginState | None:
        """The login started with ``state``, at most once (read and deleted in one step)."""
        raw = await self.backend.getdel(_login_key(state))
        if raw is None:
            return None
        try:
            return LoginState.from_bytes(raw)
        except ValueError:
            return None

    async def ping(self) -> None:
        await self.backend.ping()
