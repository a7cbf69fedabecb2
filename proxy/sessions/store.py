"""Sessions and their records on top of a backend: encryption, keys, lifetimes, ending them.

Which sessions belong to whom is the :class:`~proxy.sessions.index.SessionIndex`'s; locks and replay
marks are ``guards.py``'s. (Pending logins are never stored: they live sealed in the browser's login
cookie, ``proxy.login_state``.)"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from .backend import Backend, Blobs
from .base import Session, Ticket, session_key
from .crypto import open_sealed, seal
from .index import SessionIndex
from .invalidation import Invalidation
from .records import SessionRecord, record_key

log = logging.getLogger(__name__)


class SessionStore:
    def __init__(
        self,
        blobs: Blobs,
        index: SessionIndex,
        clock: Callable[[], float] = time.time,
        idle_timeout: float | None = None,
        record_keys: list[bytes] | None = None,
    ) -> None:
        self._blobs = blobs
        self.index = index
        self._clock = clock
        self._idle = idle_timeout
        self._record_keys = record_keys or []
        self.invalidation: Invalidation | None = None
        """Set when sessions are cached in memory: every change is published to all processes."""

    @classmethod
    def on(
        cls,
        backend: Backend,
        clock: Callable[[], float] = time.time,
        idle_timeout: float | None = None,
        record_keys: list[bytes] | None = None,
    ) -> SessionStore:
        """A store and its index on one backend."""
        return cls(backend, SessionIndex(backend, backend, clock), clock, idle_timeout, record_keys)

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
        if session.sid and await self.index.ended_during(session.sid, exchanged_at):
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
        session_id = ticket.id.hex()
        if user_agent is None:
            if not await self._blobs.set_existing(ticket.key, sealed, ttl):
                return False
            if self._record_keys:
                await self._update_record(ticket, session, ttl)
            await self.index.add(session_id, session, index_ttl)  # entries exist since creation
        else:
            if self._record_keys:
                await self._write_record(ticket, session, ttl, user_agent, ip)
            # Index first: a session that exists is always findable by back-channel logout. (An
            # entry whose session is gone is harmless: deleting it again is a no-op.)
            await self.index.add(session_id, session, index_ttl)
            await self._blobs.set(ticket.key, sealed, ttl)
        await self._changed(session_id)
        return True

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
        blob = await self._blobs.get(ticket.key)
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
            await self._blobs.expire(ticket.key, session.ttl(now, self._idle))
        if self._record_keys:
            await self.index.seen(ticket.id.hex(), now, session.ttl(now, self._idle))

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
        await self._blobs.set(record_key(record.session_id), record.seal(self._record_keys), ttl)

    async def _update_record(self, ticket: Ticket, session: Session, ttl: int) -> None:
        """The new refresh token into the record, only while it exists (never a record written back
        for a session ended meanwhile: it would keep a refresh token)."""
        old = await self.record(ticket.id.hex())
        if old is None:
            return
        hint = session.id_token if len(session.id_token) <= 4096 else None
        record = replace(old, refresh_token=session.refresh_token, id_token_hint=hint)
        await self._blobs.set_existing(record_key(old.session_id), record.seal(self._record_keys), ttl)

    async def record(self, session_id: str) -> SessionRecord | None:
        blob = await self._blobs.get(record_key(session_id))
        return None if blob is None else SessionRecord.open(self._record_keys, session_id, blob)

    async def delete(self, ticket: Ticket, session: Session | None = None) -> bool:
        """End one session; with ``session`` given, its index entries go too."""
        removed = await self._delete_id(ticket.id.hex()) > 0
        if session is not None:
            await self.index.remove(ticket.id.hex(), session)
        return removed

    async def _end_all(self, session_ids: frozenset[str]) -> int:
        ended = 0
        for session_id in sorted(session_ids):
            ended += await self._delete_id(session_id)
        return ended

    async def _delete_id(self, session_id: str) -> int:
        """Delete a session and what goes with it; 1 if the session was live. One key a call (the
        keys share a hash tag, but one-key calls are simplest for every deployment)."""
        live = await self._blobs.delete(session_key(session_id))
        await self._changed(session_id)
        await self._blobs.delete(record_key(session_id))
        await self.index.forget_seen(session_id)
        return live

    async def _changed(self, session_id: str) -> None:
        if self.invalidation is not None:
            await self.invalidation.publish(session_id)

    async def user_sessions(self, sub: str) -> list[tuple[SessionRecord, float | None]]:
        """The user's live sessions that have a record, with when each was last seen; forgets the
        index entries of sessions that are gone."""
        out = []
        for session_id in sorted(await self.index.user_sessions(sub)):
            if await self._blobs.get(session_key(session_id)) is None:
                await self.index.remove_user_session(sub, session_id)
                continue
            record = await self.record(session_id)
            if record is None:
                continue
            out.append((record, await self.index.last_seen(session_id)))
        return out

    async def end_by_id(self, sub: str, session_id: str) -> SessionRecord | None:
        """End one of the user's sessions by id (its record, for ending it at the provider too)."""
        if session_id not in await self.index.user_sessions(sub):
            return None
        record = await self.record(session_id)
        await self._delete_id(session_id)
        await self.index.remove_user_session(sub, session_id)
        return record

    async def end_provider_session(self, sid: str) -> int:
        """End every session created from the provider session ``sid``; how many were live. The sid
        is marked ended (with the time) for ``ENDED_SID_TTL``, so a login in flight with it ends too
        (``create``)."""
        await self.index.mark_ended(sid)
        ended = await self._end_all(await self.index.provider_sessions(sid))
        await self.index.drop_provider_session(sid)
        return ended

    async def end_user_sessions(self, sub: str) -> int:
        """End every session of the user ``sub``; how many were live."""
        ended = await self._end_all(await self.index.user_sessions(sub))
        await self.index.drop_user(sub)
        return ended
