"""Sessions and login states on top of a backend: encryption, keys, lifetimes."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable

from .backend import Backend
from .base import LoginState, Session, Ticket, session_key
from .crypto import open_sealed, seal

log = logging.getLogger(__name__)

LOGIN_TTL = 600
"""Seconds a started login may take before its state expires."""


def _login_key(state: str) -> str:
    return "ap:login:" + hashlib.sha256(state.encode()).hexdigest()


def _h(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _lock_key(ticket: Ticket) -> str:
    return f"ap:lock:{{{ticket.id.hex()}}}"  # same hash tag as the session: same Cluster slot


def sid_index(sid: str) -> str:
    """The set of our session ids that belong to one provider session (back-channel logout)."""
    return f"ap:sid:{{{_h(sid)}}}"


def sub_index(sub: str) -> str:
    """The set of our session ids of one user (logout of all their sessions)."""
    return f"ap:sub:{{{_h(sub)}}}"


class SessionStore:
    def __init__(
        self, backend: Backend, clock: Callable[[], float] = time.time, idle_timeout: float | None = None
    ) -> None:
        self.backend = backend
        self._clock = clock
        self._idle = idle_timeout

    async def create(self, session: Session) -> Ticket:
        """Save ``session`` under a brand-new ticket (never reuse one: session fixation)."""
        ticket = Ticket.new()
        await self.save(ticket, session)
        return ticket

    async def save(self, ticket: Ticket, session: Session) -> None:
        ttl = session.ttl(self._clock(), self._idle)
        # Index first: a session that exists is always findable by back-channel logout. (An index
        # entry whose session is gone is harmless: deleting it again is a no-op.)
        if session.sid:
            await self.backend.index_add(sid_index(session.sid), ticket.id.hex(), ttl)
        await self.backend.index_add(sub_index(session.identity.sub), ticket.id.hex(), ttl)
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
        if session.ends_at() <= self._clock():
            return None
        return session

    async def touch(self, ticket: Ticket, session: Session) -> None:
        """Slide the idle timeout: the session lives ``idle_timeout`` more (never past its end)."""
        if self._idle is not None:
            await self.backend.expire(ticket.key, session.ttl(self._clock(), self._idle))

    async def try_lock(self, ticket: Ticket, seconds: int) -> bytes | None:
        """Take the session's refresh lock (SET NX EX) across every replica; the token to unlock it."""
        token = secrets.token_bytes(16)
        return token if await self.backend.add_new(_lock_key(ticket), token, seconds) else None

    async def unlock(self, ticket: Ticket, token: bytes) -> None:
        await self.backend.delete_if(_lock_key(ticket), token)

    async def delete(self, ticket: Ticket, session: Session | None = None) -> bool:
        """End one session; with ``session`` given, its index entries go too."""
        removed = await self.backend.delete(ticket.key) > 0
        if session is not None:
            if session.sid:
                await self.backend.index_remove(sid_index(session.sid), ticket.id.hex())
            await self.backend.index_remove(sub_index(session.identity.sub), ticket.id.hex())
        return removed

    async def _end_indexed(self, index: str) -> int:
        ended = 0
        for session_id in sorted(await self.backend.index_members(index)):
            ended += await self.backend.delete(session_key(session_id))  # one key a call: Cluster-safe
        await self.backend.delete(index)
        return ended

    async def end_provider_session(self, sid: str) -> int:
        """End every session created from the provider session ``sid``; how many were live."""
        return await self._end_indexed(sid_index(sid))

    async def end_user_sessions(self, sub: str) -> int:
        """End every session of the user ``sub``; how many were live."""
        return await self._end_indexed(sub_index(sub))

    async def first_use(self, name: str, ttl: int) -> bool:
        """True the first time ``name`` is seen within ``ttl`` seconds (replay protection)."""
        return await self.backend.add_new("ap:once:" + _h(name), b"1", ttl)

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
