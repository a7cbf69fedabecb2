"""The in-process session cache (``proxy.sessions.cache``): what it hands back, and what it drops."""

from __future__ import annotations

import time

from proxy.identity import Identity
from proxy.sessions.base import Session, Ticket
from proxy.sessions.cache import SessionCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _session(sub: str) -> Session:
    now = time.time()
    return Session(Identity(sub), "id", "at", None, None, now, now + 3600)


def _cache(max_entries: int = 10) -> tuple[SessionCache, Clock]:
    clock = Clock()
    cache = SessionCache(60.0, max_entries=max_entries, clock=clock)
    cache.enabled = True
    return cache, clock


def test_a_hit_needs_the_ticket_secret_and_a_young_entry() -> None:
    cache, clock = _cache()
    ticket, session = Ticket.new(), _session("a")
    cache.put(ticket, session)
    assert cache.get(ticket) is session
    assert cache.get(Ticket(ticket.id, Ticket.new().secret)) is None  # the id alone is not enough
    assert cache.get(ticket) is None  # ... and the entry is gone
    cache.put(ticket, session)
    clock.now += 60.5
    assert cache.get(ticket) is None
    assert len(cache) == 0


def test_nothing_is_kept_or_handed_back_while_disabled() -> None:
    cache, _ = _cache()
    ticket = Ticket.new()
    cache.put(ticket, _session("a"))
    cache.enabled = False
    assert cache.get(ticket) is None
    cache.put(Ticket.new(), _session("b"))
    assert len(cache) == 1


def test_past_its_size_the_entry_put_longest_ago_goes_first() -> None:
    cache, _ = _cache(max_entries=3)
    tickets = [Ticket.new() for _ in range(4)]
    for i, ticket in enumerate(tickets[:3]):
        cache.put(ticket, _session(str(i)))
    cache.put(tickets[0], _session("0 again"))  # reloaded: now the newest
    cache.put(tickets[3], _session("3"))
    assert [cache.get(t) is not None for t in tickets] == [True, False, True, True]
    assert len(cache) == 3


def test_evict_by_id_and_a_bad_id_is_ignored() -> None:
    cache, _ = _cache()
    ticket = Ticket.new()
    cache.put(ticket, _session("a"))
    cache.evict("not hex")
    cache.evict(ticket.id.hex())
    assert cache.get(ticket) is None


def test_a_load_that_read_before_an_eviction_does_not_cache_what_it_read() -> None:
    """A replica read the session, the session ended elsewhere and the eviction arrived, then the
    read's answer is put: it must not be kept (it would be served for max_age)."""
    cache, _ = _cache()
    ended, other = Ticket.new(), Ticket.new()
    since = cache.generation  # the load starts
    cache.evict(ended.id.hex())  # ... the session ends on another replica
    cache.put(ended, _session("ended"), since)  # ... the load's answer arrives
    assert cache.get(ended) is None
    cache.put(other, _session("other"), since)  # another session's load is not affected
    assert cache.get(other) is not None
    cache.put(ended, _session("reloaded"), cache.generation)  # a load that started after: kept
    assert cache.get(ended) is not None


def test_after_a_clear_no_load_that_started_before_it_caches() -> None:
    """The feed dropped (evictions may have been missed) or came back: loads from before don't put."""
    cache, _ = _cache()
    ticket = Ticket.new()
    since = cache.generation
    cache.clear()
    cache.put(ticket, _session("a"), since)
    assert cache.get(ticket) is None


def test_evictions_forgotten_past_the_bound_refuse_older_loads() -> None:
    cache, _ = _cache(max_entries=2)
    ticket = Ticket.new()
    since = cache.generation
    cache.evict(ticket.id.hex())
    for _ in range(3):  # the eviction of ``ticket`` is pushed out of the bounded memory
        cache.evict(Ticket.new().id.hex())
    cache.put(ticket, _session("a"), since)
    assert cache.get(ticket) is None
