"""An in-process cache of open sessions, so a request needn't fetch and decrypt its session from
Redis every time. It is only ever used while the invalidation feed (``invalidation.py``) is live:
every change or deletion of a session, on any process, evicts it here within milliseconds, and when
the feed is down the cache is emptied and bypassed. Entries also expire after ``max_age`` seconds.

Past ``max_entries``, the entry put longest ago goes first. An entry is put again each time its
session is reloaded (at least every ``max_age``), so that is close to least recently used, without
reordering anything on a hit: a hit is the common case, once per request.

A load reads the store, then puts what it read: an eviction (the session ended on another process)
can land in between, and the put would bring the ended session back for ``max_age``. So a load takes
the cache's ``generation`` before it reads and passes it to ``put``, which drops the entry if that
session was evicted since (or the cache was cleared: evictions may have been missed).
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
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
        self.generation = 0
        """Counts evictions and clears; a load reads it before it reads the store (see ``put``)."""
        self._evicted: OrderedDict[bytes, int] = OrderedDict()
        """The generation of each recent eviction, by session id (bounded, oldest dropped)."""
        self._unknown_before = 0
        """Evictions older than this may have been dropped from ``_evicted`` (or missed): puts from
        loads that started earlier are refused."""

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

    def put(self, ticket: Ticket, session: Session, since: int | None = None) -> None:
        """Keep ``session``, unless (``since``: the ``generation`` taken before reading it) it was
        evicted or the cache cleared after that: what was read may have ended since."""
        if not self.enabled:
            return
        if since is not None and (since < self._unknown_before or self._evicted.get(ticket.id, -1) > since):
            return
        entries = self._entries
        entries.pop(ticket.id, None)  # put again: now the newest
        entries[ticket.id] = (ticket.secret, session, self._clock())
        while len(entries) > self._max:
            del entries[next(iter(entries))]

    def evict(self, session_id_hex: str) -> None:
        try:
            session_id = bytes.fromhex(session_id_hex)
        except ValueError:
            return
        self.generation += 1
        self._entries.pop(session_id, None)
        self._evicted[session_id] = self.generation
        self._evicted.move_to_end(session_id)
        while len(self._evicted) > self._max:
            _, dropped = self._evicted.popitem(last=False)
            self._unknown_before = dropped

    def clear(self) -> None:
        self._entries.clear()
        self.generation += 1
        self._evicted.clear()
        self._unknown_before = self.generation

    def __len__(self) -> int:
        return len(self._entries)
