"""An in-process cache of open sessions, so a request needn't fetch and decrypt its session from
Redis every time. It is only ever used while the invalidation feed (``invalidation.py``) is live:
every change or deletion of a session, on any process, evicts it here within milliseconds, and when
the feed is down the cache is emptied and bypassed. Entries also expire after ``max_age`` seconds.

Past ``max_entries``, the entry put longest ago goes first. An entry is put again each time its
session is reloaded (at least every ``max_age``), so that is close to least recently used, without
reordering anything on a hit: a hit is the common case, once per request.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

from .base import Session, Ticket


class SessionCache:
    def __init__(
        self, max_age: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ):
        self.max_age = max_age
        self._max = max_entries
        self._clock = clock
        self._entries: dict[bytes, tuple[bytes, Session, float]] = {}  # oldest put first
        self.enabled = False
        """Set by the invalidation feed: True only while it is subscribed."""

    def get(self, ticket: Ticket) -> Session | None:
        if not self.enabled:
            return None
        entry = self._entries.get(ticket.id)
        if entry is None:
            return None
        secret, session, at = entry
        if self._clock() - at > self.max_age or not hmac.compare_digest(secret, ticket.secret):
            self._entries.pop(ticket.id, None)
            return None
        return session

    def put(self, ticket: Ticket, session: Session) -> None:
        if not self.enabled:
            return
        entries = self._entries
        entries.pop(ticket.id, None)  # put again: now the newest
        entries[ticket.id] = (ticket.secret, session, self._clock())
        while len(entries) > self._max:
            del entries[next(iter(entries))]

    def evict(self, session_id_hex: str) -> None:
        try:
            self._entries.pop(bytes.fromhex(session_id_hex), None)
        except ValueError:
            pass

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
