"""Sessions on top of a backend: encryption, keys, lifetimes. (Pending logins are never stored:
they live sealed in the browser's login cookie, ``proxy.login_state``.)"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

from .backend import Backend
from .base import Session, Ticket, session_key
from .crypto import open_sealed, seal
from .invalidation import Invalidation
from .records import SessionRecord, record_key, seen_key

log = logging.getLogger(__name__)

SEEN_EVERY = 60.0
"""A session's last-seen time is written at most this often (per process)."""
SEEN_MEMORY = 10_000
_NEVER = float("-inf")


def _h(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _lock_key(ticket: Ticket) -> str:
    return f"ap:lock:{{{ticket.id.hex()}}}"  # same hash tag as the session: same Cluster slot


def sid_index(sid: str) -> str:
    """The set of our session ids that belong to one provider session (back-channel logout)."""
    return f"ap:sid:{{{_h(sid)}}}"


ENDED_SID_TTL = 600 + 120
"""How long an ended provider session's sid is remembered: longer than a login may take (its sealed
state lives ``proxy.login_state.LOGIN_TTL``, 600 s) plus the code exchange; a provider never issues a
new login with an ended sid."""

CODE_LIFETIME = 60.0
"""How long before its code exchange a login's code may have been issued (Keycloak: 60 s). Only a
logout after that can have ended the provider session a login in flight belongs to: a provider
issues no code for an ended session. An older mark is not held against a login, so a provider that
hands out the same sid again later does not lock its users out."""


def _ended_sid_key(sid: str) -> str:
    return f"ap:ended-sid:{{{_h(sid)}}}"


def sub_index(sub: str) -> str:
    """The set of our session ids of one user (logout of all their sessions)."""
    return f"ap:sub:{{{_h(sub)}}}"


class SessionStore:
    def __init__(
        self,
        backend: Backend,
        clock: Callable[[], float] = time.time,
        idle_timeout: float | None = None,
        record_keys: list[bytes] | None = None,
    ) -> None:
        self.backend = backend
        self._clock = clock
        self._idle = idle_timeout
        self._record_keys = record_keys or []
        self.invalidation: Invalidation | None = None
        """Set when sessions are cached in memory: every change is published to all processes."""
        self._seen_written: OrderedDict[bytes, float] = OrderedDict()
        """When this process last wrote each session's last-seen time (bounded, oldest dropped)."""

    async def create(
        self, session: Session, *, user_agent: str = "", ip: str = "", exchanged_at: float | None = None
    ) -> Ticket:
        """Save ``session`` under a brand-new ticket (never reuse one: session fixation).

        If its provider session was ended (back-channel logout) while this login was in flight, it is
        ended at once: the ticket then names no session. (The logout marks the sid before it reads
        the index, this checks the mark after indexing: one of the two sees the other.) In flight:
        the logout came less than ``CODE_LIFETIME`` before ``exchanged_at``, when the code exchange
        started (``None``: any mark counts)."""
        ticket = Ticket.new()
        await self.save(ticket, session, user_agent=user_agent, ip=ip)
        if session.sid and self._ended_during(
            await self.backend.get(_ended_sid_key(session.sid)), exchanged_at
        ):
            log.warning(
                "provider session ended during the login; session ended", extra={"event": "login_ended"}
            )
            await self.delete(ticket, session)
        return ticket

    async def save(
        self, ticket: Ticket, session: Session, *, user_agent: str | None = None, ip: str = ""
    ) -> bool:
        """Write ``session``; whether it was written. With ``user_agent`` given it is new: its record
        starts. Otherwise it is an update (a refresh): written only while the session still exists,
        in one step (SET XX), so a session ended meanwhile (logout of any kind) stays ended; its
        record keeps its origin and takes the new refresh token."""
        now = self._clock()
        ttl = session.ttl(now, self._idle)
        # The indexes live as long as the session may (the idle timeout slides only the session).
        index_ttl = session.ttl(now)
        sealed = seal(ticket, session.to_bytes())
        if user_agent is None:
            if not await self.backend.set_existing(ticket.key, sealed, ttl):
                return False
            if self._record_keys:
                await self._update_record(ticket, session, ttl)
            await self._index(ticket, session, index_ttl)
        else:
            if self._record_keys:
                await self._write_record(ticket, session, ttl, user_agent, ip)
            # Index first: a session that exists is always findable by back-channel logout. (An
            # entry whose session is gone is harmless: deleting it again is a no-op.)
            await self._index(ticket, session, index_ttl)
            await self.backend.set(ticket.key, sealed, ttl)
        await self._changed(ticket.id.hex())
        return True

    async def _index(self, ticket: Ticket, session: Session, ttl: int) -> None:
        """An update's entries exist since its creation (``ttl`` only ever extends them)."""
        if session.sid:
            await self.backend.index_add(sid_index(session.sid), ticket.id.hex(), ttl)
        await self.backend.index_add(sub_index(session.user_key), ticket.id.hex(), ttl)

    async def load(self, ticket: Ticket, *, cached: bool = True) -> Session | None:
        """The session, or ``None`` if it ended, expired or can't be read with this ticket.
        ``cached=False`` always asks the backend (a re-read under the refresh lock)."""
        cache = self.invalidation.cache if self.invalidation is not None else None
        if cached and cache is not None:
            hit = cache.get(ticket)
            if hit is not None and hit.ends_at() > self._clock():
                return hit
        since = cache.generation if cache is not None else 0
        session = await self._load(ticket)
        if session is not None and cache is not None:
            cache.put(ticket, session, since)  # not if it was evicted meanwhile (cache.py)
        return session

    async def _load(self, ticket: Ticket) -> Session | None:
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
        """A request used the session: slide the idle timeout (the session lives ``idle_timeout``
        more, never past its end) and note when it was last seen (at most once a minute)."""
        now = self._clock()
        if self._idle is not None:
            await self.backend.expire(ticket.key, session.ttl(now, self._idle))
        if not self._record_keys or now - self._seen_written.get(ticket.id, _NEVER) < SEEN_EVERY:
            return
        self._seen_written[ticket.id] = now
        self._seen_written.move_to_end(ticket.id)
        while len(self._seen_written) > SEEN_MEMORY:
            self._seen_written.popitem(last=False)
        ttl = session.ttl(now, self._idle)
        await self.backend.set(seen_key(ticket.id.hex()), str(round(now, 1)).encode(), ttl)

    async def try_lock(self, ticket: Ticket, seconds: int) -> bytes | None:
        """Take the session's refresh lock (SET NX EX) across every replica; the token to unlock it."""
        token = secrets.token_bytes(16)
        return token if await self.backend.add_new(_lock_key(ticket), token, seconds) else None

    async def unlock(self, ticket: Ticket, token: bytes) -> None:
        await self.backend.delete_if(_lock_key(ticket), token)

    async def _write_record(
        self, ticket: Ticket, session: Session, ttl: int, user_agent: str, ip: str
    ) -> None:
        hint = session.id_token if len(session.id_token) <= 4096 else None
        record = SessionRecord(
            ticket.id.hex(),
            session.created_at,
            user_agent[:300],
            ip[:64],
            session.refresh_token,
            hint,
            session.provider,
        )
        await self.backend.set(record_key(record.session_id), record.seal(self._record_keys), ttl)

    async def _update_record(self, ticket: Ticket, session: Session, ttl: int) -> None:
        """The new refresh token into the record, only while it exists (never a record written back
        for a session ended meanwhile: it would keep a refresh token)."""
        old = await self.record(ticket.id.hex())
        if old is None:
            return
        hint = session.id_token if len(session.id_token) <= 4096 else None
        record = replace(old, refresh_token=session.refresh_token, id_token_hint=hint)
        await self.backend.set_existing(record_key(old.session_id), record.seal(self._record_keys), ttl)

    async def record(self, session_id: str) -> SessionRecord | None:
        blob = await self.backend.get(record_key(session_id))
        return None if blob is None else SessionRecord.open(self._record_keys, session_id, blob)

    async def delete(self, ticket: Ticket, session: Session | None = None) -> bool:
        """End one session; with ``session`` given, its index entries go too."""
        removed = await self._delete_id(ticket.id.hex()) > 0
        if session is not None:
            if session.sid:
                await self.backend.index_remove(sid_index(session.sid), ticket.id.hex())
            await self.backend.index_remove(sub_index(session.user_key), ticket.id.hex())
        return removed

    async def _end_indexed(self, index: str) -> int:
        ended = 0
        for session_id in sorted(await self.backend.index_members(index)):
            ended += await self._delete_id(session_id)
        await self.backend.delete(index)
        return ended

    async def _delete_id(self, session_id: str) -> int:
        """Delete a session and what goes with it; 1 if the session was live. One key a call (the
        keys share a hash tag, but one-key calls are simplest for every deployment)."""
        live = await self.backend.delete(session_key(session_id))
        await self._changed(session_id)
        await self.backend.delete(record_key(session_id))
        await self.backend.delete(seen_key(session_id))
        return live

    async def _changed(self, session_id: str) -> None:
        if self.invalidation is not None:
            await self.invalidation.publish(session_id)

    async def user_sessions(self, sub: str) -> list[tuple[SessionRecord, float | None]]:
        """The user's live sessions that have a record, with when each was last seen; forgets the
        index entries of sessions that are gone."""
        out = []
        for session_id in sorted(await self.backend.index_members(sub_index(sub))):
            if await self.backend.get(session_key(session_id)) is None:
                await self.backend.index_remove(sub_index(sub), session_id)
                continue
            record = await self.record(session_id)
            if record is None:
                continue
            seen = await self.backend.get(seen_key(session_id))
            out.append((record, float(seen) if seen else None))
        return out

    async def end_by_id(self, sub: str, session_id: str) -> SessionRecord | None:
        """End one of the user's sessions by id (its record, for ending it at the provider too)."""
        if session_id not in await self.backend.index_members(sub_index(sub)):
            return None
        record = await self.record(session_id)
        await self._delete_id(session_id)
        await self.backend.index_remove(sub_index(sub), session_id)
        return record

    @staticmethod
    def _ended_during(mark: bytes | None, exchanged_at: float | None) -> bool:
        if mark is None:
            return False
        if exchanged_at is None:
            return True
        try:
            ended_at = float(mark)
        except ValueError:
            return True
        return ended_at >= exchanged_at - CODE_LIFETIME

    async def end_provider_session(self, sid: str) -> int:
        """End every session created from the provider session ``sid``; how many were live. The sid
        is marked ended (with the time) for ``ENDED_SID_TTL``, so a login in flight with it ends too
        (``create``)."""
        await self.backend.set(_ended_sid_key(sid), repr(self._clock()).encode(), ENDED_SID_TTL)
        return await self._end_indexed(sid_index(sid))

    async def end_user_sessions(self, sub: str) -> int:
        """End every session of the user ``sub``; how many were live."""
        return await self._end_indexed(sub_index(sub))

    async def first_use(self, name: str, ttl: int) -> bool:
        """True the first time ``name`` is seen within ``ttl`` seconds (replay protection)."""
        return await self.backend.add_new("ap:once:" + _h(name), b"1", ttl)

    async def ping(self) -> None:
        await self.backend.ping()
