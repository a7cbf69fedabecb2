"""Which sessions exist for whom: the sid and sub indexes, last-seen times and ended-sid marks.

The sid index finds a provider session's sessions (back-channel logout), the sub index a user's
(sign out everywhere, the sessions page). Both live as long as their sessions may; an entry whose
session is gone is harmless (deleting it again is a no-op) and is forgotten when seen.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable

from .backend import Blobs, Indexes
from .base import Session
from .records import seen_key

SEEN_EVERY = 60.0
"""A session's last-seen time is written at most this often (per process)."""
SEEN_MEMORY = 10_000
_NEVER = float("-inf")

ENDED_SID_TTL = 600 + 120
"""How long an ended provider session's sid is remembered: longer than a login may take (its sealed
state lives ``proxy.login_state.LOGIN_TTL``, 600 s) plus the code exchange; a provider never issues a
new login with an ended sid."""

CODE_LIFETIME = 60.0
"""How long before its code exchange a login's code may have been issued (Keycloak: 60 s). Only a
logout after that can have ended the provider session a login in flight belongs to: a provider
issues no code for an ended session. An older mark is not held against a login, so a provider that
hands out the same sid again later does not lock its users out."""


def _h(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def sid_index(sid: str) -> str:
    """The set of our session ids that belong to one provider session (back-channel logout)."""
    return f"ap:sid:{{{_h(sid)}}}"


def sub_index(sub: str) -> str:
    """The set of our session ids of one user (logout of all their sessions)."""
    return f"ap:sub:{{{_h(sub)}}}"


def _ended_sid_key(sid: str) -> str:
    return f"ap:ended-sid:{{{_h(sid)}}}"


class SessionIndex:
    def __init__(self, indexes: Indexes, blobs: Blobs, clock: Callable[[], float] = time.time) -> None:
        self._sets = indexes
        self._blobs = blobs
        self._clock = clock
        self._seen_written: OrderedDict[str, float] = OrderedDict()
        """When this process last wrote each session's last-seen time (bounded, oldest dropped)."""

    async def add(self, session_id: str, session: Session, ttl: int) -> None:
        """Index a session under its sid (if any) and its sub, for at least ``ttl`` seconds more."""
        if session.sid:
            await self._sets.index_add(sid_index(session.sid), session_id, ttl)
        await self._sets.index_add(sub_index(session.user_key), session_id, ttl)

    async def remove(self, session_id: str, session: Session) -> None:
        if session.sid:
            await self._sets.index_remove(sid_index(session.sid), session_id)
        await self._sets.index_remove(sub_index(session.user_key), session_id)

    async def remove_user_session(self, sub: str, session_id: str) -> None:
        await self._sets.index_remove(sub_index(sub), session_id)

    async def user_sessions(self, sub: str) -> frozenset[str]:
        return await self._sets.index_members(sub_index(sub))

    async def provider_sessions(self, sid: str) -> frozenset[str]:
        return await self._sets.index_members(sid_index(sid))

    async def drop_user(self, sub: str) -> None:
        await self._sets.delete(sub_index(sub))

    async def drop_provider_session(self, sid: str) -> None:
        await self._sets.delete(sid_index(sid))

    async def mark_ended(self, sid: str) -> None:
        """Remember (with the time) that the provider session ``sid`` ended, ``ENDED_SID_TTL``."""
        await self._blobs.set(_ended_sid_key(sid), repr(self._clock()).encode(), ENDED_SID_TTL)

    async def ended_during(self, sid: str, exchanged_at: float | None) -> bool:
        """Whether ``sid`` ended less than ``CODE_LIFETIME`` before ``exchanged_at`` (``None``: at
        all, as long as it is remembered)."""
        mark = await self._blobs.get(_ended_sid_key(sid))
        if mark is None:
            return False
        if exchanged_at is None:
            return True
        try:
            ended_at = float(mark)
        except ValueError:
            return True
        return ended_at >= exchanged_at - CODE_LIFETIME

    async def seen(self, session_id: str, now: float, ttl: int) -> None:
        """Note that the session was used at ``now`` (written at most once a ``SEEN_EVERY``)."""
        if now - self._seen_written.get(session_id, _NEVER) < SEEN_EVERY:
            return
        self._seen_written[session_id] = now
        self._seen_written.move_to_end(session_id)
        while len(self._seen_written) > SEEN_MEMORY:
            self._seen_written.popitem(last=False)
        await self._blobs.set(seen_key(session_id), str(round(now, 1)).encode(), ttl)

    async def last_seen(self, session_id: str) -> float | None:
        seen = await self._blobs.get(seen_key(session_id))
        return float(seen) if seen else None

    async def forget_seen(self, session_id: str) -> None:
        await self._blobs.delete(seen_key(session_id))
