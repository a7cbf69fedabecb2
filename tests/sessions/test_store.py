"""One conformance suite for every session store backend: the in-memory one and the real Redis, as
a standalone server, behind Sentinel and as a 3-node Cluster (tests/sessions/conftest.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

import pytest

from proxy.errors import StoreUnavailable
from proxy.identity import Identity
from proxy.sessions.backend import Backend
from proxy.sessions.base import Session, Ticket
from proxy.sessions.guards import ReplayGuard
from proxy.sessions.index import sid_index, sub_index
from proxy.sessions.memory_store import MemoryBackend
from proxy.sessions.redis_store import RedisBackend
from proxy.sessions.store import SessionStore
from tests.support.servers import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    backend: Backend
    ttl_of: Callable[[str], Awaitable[float]]
    clock: Clock
    ttl_of_set: Callable[[str], Awaitable[float]]


@pytest.fixture(params=["memory", "redis", "sentinel", "cluster"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    clock = Clock()
    if request.param == "memory":
        mem = MemoryBackend(clock=clock)

        async def mem_ttl(key: str) -> float:
            item = mem._data.get(key)
            return -2 if item is None else item[1] - clock.now

        async def mem_set_ttl(key: str) -> float:
            item = mem._sets.get(key)
            return -2 if item is None else item[1] - clock.now

        yield Harness(mem, mem_ttl, clock, mem_set_ttl)
        return
    servers = {"redis": "redis_srv", "sentinel": "redis_sentinel", "cluster": "redis_cluster"}
    url = request.getfixturevalue(servers[request.param]).url  # sync fixtures: safe to pull from here
    backend = RedisBackend.from_url(url)
    raw = backend.client
    await raw.flushall()  # on a Cluster: on every master

    async def redis_ttl(key: str) -> float:
        return float(await raw.ttl(key))

    yield Harness(backend, redis_ttl, clock, redis_ttl)
    await backend.close()


def make_session(now: float, lifetime: float = 3600.0, **identity: str) -> Session:
    ident = Identity(sub="u-1", email="u@example.test", preferred_username="u", groups=("a", "b"), **identity)
    return Session(ident, "id.tok.en", "access", "refresh", "sid-1", now, now + lifetime, now + 300)


# --- the backend contract ----------------------------------------------------------------------


async def test_set_get_roundtrip_and_overwrite(harness: Harness) -> None:
    b = harness.backend
    assert await b.get("k") is None
    await b.set("k", b"\x00\xffbytes", 60)
    assert await b.get("k") == b"\x00\xffbytes"
    await b.set("k", b"new", 60)
    assert await b.get("k") == b"new"


async def test_ttl_is_what_was_asked(harness: Harness) -> None:
    await harness.backend.set("k", b"v", 120)
    ttl = await harness.ttl_of("k")
    assert 118 <= ttl <= 120


async def test_first_use_is_single_use_even_when_concurrent(harness: Harness) -> None:
    """What keeps a login to one session (the callback marks its state used)."""
    replay = ReplayGuard(harness.backend)
    results = await asyncio.gather(*(replay.first_use("login:s", 60) for _ in range(20)))
    assert results.count(True) == 1


async def test_delete_counts_only_existing_keys(harness: Harness) -> None:
    await harness.backend.set("a", b"1", 60)
    assert await harness.backend.delete("a", "missing") == 1
    assert await harness.backend.delete() == 0
    assert await harness.backend.get("a") is None


async def test_non_positive_ttl_is_refused(harness: Harness) -> None:
    with pytest.raises(ValueError):
        await harness.backend.set("k", b"v", 0)


async def test_ping(harness: Harness) -> None:
    await harness.backend.ping()


# --- sessions on top of the backend ------------------------------------------------------------


async def test_session_roundtrip_and_new_ticket_each_time(harness: Harness) -> None:
    store = SessionStore.on(harness.backend, clock=harness.clock)
    session = make_session(harness.clock.now)
    t1, t2 = await store.create(session), await store.create(session)
    assert t1 != t2 and t1.id != t2.id
    assert await store.load(t1) == session
    ttl = await harness.ttl_of(t1.key)
    assert 3598 <= ttl <= 3600


async def test_store_holds_no_plaintext_token(harness: Harness) -> None:
    store = SessionStore.on(harness.backend, clock=harness.clock)
    session = replace(make_session(harness.clock.now), id_token="SECRET-ID-TOKEN", access_token="SECRET-AT")
    ticket = await store.create(session)
    blob = await harness.backend.get(ticket.key)
    assert blob is not None
    assert b"SECRET" not in blob and b"u@example.test" not in blob


async def test_wrong_secret_or_unknown_id_loads_nothing(harness: Harness) -> None:
    store = SessionStore.on(harness.backend, clock=harness.clock)
    ticket = await store.create(make_session(harness.clock.now))
    assert await store.load(Ticket(ticket.id, b"\x00" * 32)) is None
    assert await store.load(Ticket.new()) is None


async def test_corrupted_blob_loads_nothing(harness: Harness) -> None:
    store = SessionStore.on(harness.backend, clock=harness.clock)
    ticket = await store.create(make_session(harness.clock.now))
    blob = await harness.backend.get(ticket.key)
    assert blob is not None
    await harness.backend.set(ticket.key, blob[:-1] + bytes([blob[-1] ^ 1]), 60)
    assert await store.load(ticket) is None


async def test_delete_ends_the_session(harness: Harness) -> None:
    store = SessionStore.on(harness.backend, clock=harness.clock)
    ticket = await store.create(make_session(harness.clock.now))
    assert await store.delete(ticket) is True
    assert await store.load(ticket) is None
    assert await store.delete(ticket) is False


async def test_session_past_its_absolute_end_is_not_loaded(harness: Harness) -> None:
    store = SessionStore.on(harness.backend, clock=harness.clock)
    ticket = await store.create(make_session(harness.clock.now, lifetime=100))
    harness.clock.now += 101  # the Redis TTL would have removed it too; the check must not rely on that
    assert await store.load(ticket) is None


async def test_memory_backend_forgets_expired_keys() -> None:
    clock = Clock()
    backend = MemoryBackend(clock=clock)
    await backend.set("k", b"v", 10)
    clock.now += 9.9
    assert await backend.get("k") == b"v"
    clock.now += 0.2
    assert await backend.get("k") is None


# --- Redis down: every operation fails closed --------------------------------------------------


async def test_unreachable_redis_raises_store_unavailable() -> None:
    backend = RedisBackend.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    store = SessionStore.on(backend)
    started = time.monotonic()
    for op in (backend.ping(), store.load(Ticket.new()), store.create(make_session(time.time())),
               ReplayGuard(backend).first_use("s", 60)):  # fmt: skip
        with pytest.raises(StoreUnavailable):
            await op
    assert time.monotonic() - started < 10
    await backend.close()


# --- indexes for logout everywhere ---------------------------------------------------------------


async def test_add_new_is_set_if_absent(harness: Harness) -> None:
    assert await harness.backend.add_new("once", b"1", 60) is True
    assert await harness.backend.add_new("once", b"2", 60) is False
    assert await harness.backend.get("once") == b"1"


async def test_index_add_members_remove_and_ttl_only_grows(harness: Harness) -> None:
    b = harness.backend
    await b.index_add("idx", "a", 100)
    await b.index_add("idx", "b", 50)  # a shorter ttl must not shorten the set's life
    assert await b.index_members("idx") == {"a", "b"}
    assert 98 <= await harness.ttl_of_set("idx") <= 100
    await b.index_add("idx", "c", 300)
    assert 298 <= await harness.ttl_of_set("idx") <= 300
    await b.index_remove("idx", "a")
    assert await b.index_members("idx") == {"b", "c"}
    assert await b.index_members("missing") == frozenset()


async def test_ending_a_provider_session_ends_all_its_sessions_only(harness: Harness) -> None:
    store = SessionStore.on(harness.backend, clock=harness.clock)
    mine = make_session(harness.clock.now)
    other = replace(mine, sid="sid-2")
    t1, t2, t3 = await store.create(mine), await store.create(mine), await store.create(other)
    assert await store.end_provider_session("sid-1") == 2
    assert await store.load(t1) is None and await store.load(t2) is None
    assert await store.load(t3) is not None
    assert await store.end_provider_session("sid-1") == 0


async def test_ending_a_users_sessions(harness: Harness) -> None:
    store = SessionStore.on(harness.backend, clock=harness.clock)
    alice = make_session(harness.clock.now)
    bob = replace(alice, identity=replace(alice.identity, sub="u-2"), sid="sid-9")
    ta1, ta2, tb = (
        await store.create(alice),
        await store.create(replace(alice, sid=None)),
        await store.create(bob),
    )
    assert await store.end_user_sessions("u-1") == 2
    assert await store.load(ta1) is None and await store.load(ta2) is None
    assert await store.load(tb) is not None


async def test_delete_with_session_cleans_its_index_entries(harness: Harness) -> None:
    store = SessionStore.on(harness.backend, clock=harness.clock)
    session = make_session(harness.clock.now)
    ticket = await store.create(session)
    await store.delete(ticket, session)
    assert await harness.backend.index_members(sid_index("sid-1")) == frozenset()
    assert await harness.backend.index_members(sub_index("u-1")) == frozenset()


async def test_first_use(harness: Harness) -> None:
    replay = ReplayGuard(harness.backend)
    assert await replay.first_use("jti:1", 60) is True
    assert await replay.first_use("jti:1", 60) is False
    assert await replay.first_use("jti:2", 60) is True


# --- a session ended stays ended (tests/security/test_logout_races.py) --------------------------


async def test_set_existing_replaces_only_a_live_key(harness: Harness) -> None:
    b = harness.backend
    assert await b.set_existing("k", b"v", 60) is False
    assert await b.get("k") is None  # not created
    await b.set("k", b"v1", 60)
    assert await b.set_existing("k", b"v2", 30) is True
    assert await b.get("k") == b"v2"
    assert 28 <= await harness.ttl_of("k") <= 30
    await b.delete("k")
    assert await b.set_existing("k", b"v3", 60) is False
    assert await b.get("k") is None


ENDINGS = {
    "delete": lambda s, t: s.delete(t),
    "end_provider_session": lambda s, t: s.end_provider_session("sid-1"),
    "end_user_sessions": lambda s, t: s.end_user_sessions("u-1"),
    "end_by_id": lambda s, t: s.end_by_id("u-1", t.id.hex()),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
async def test_a_refresh_save_after_the_session_ended_writes_nothing(harness: Harness, ending: str) -> None:
    """The refresh read the session, it ended meanwhile, the refresh saves: it stays ended, and no
    record (with its refresh token) or index entry comes back to life."""
    store = SessionStore.on(harness.backend, clock=harness.clock, record_keys=[b"k" * 32])
    session = make_session(harness.clock.now)
    ticket = await store.create(session, user_agent="ua")
    read = await store.load(ticket)
    assert read is not None and await store.record(ticket.id.hex()) is not None
    await ENDINGS[ending](store, ticket)
    assert await store.save(ticket, replace(read, refresh_token="rotated")) is False
    assert await store.load(ticket) is None
    assert await harness.backend.get(ticket.key) is None
    assert await store.record(ticket.id.hex()) is None
    assert await store.user_sessions("u-1") == []


async def test_a_refresh_save_of_a_live_session_updates_it_and_its_record(harness: Harness) -> None:
    store = SessionStore.on(harness.backend, clock=harness.clock, record_keys=[b"k" * 32])
    session = make_session(harness.clock.now)
    ticket = await store.create(session, user_agent="ua", ip="10.0.0.1")
    assert await store.save(ticket, replace(session, refresh_token="rotated")) is True
    loaded = await store.load(ticket)
    assert loaded is not None and loaded.refresh_token == "rotated"
    record = await store.record(ticket.id.hex())
    assert record is not None and record.refresh_token == "rotated" and record.user_agent == "ua"


async def test_the_sid_index_outlives_the_idle_timeout(harness: Harness) -> None:
    """A session kept alive by use past its first idle timeout stays findable by back-channel logout."""
    store = SessionStore.on(harness.backend, clock=harness.clock, idle_timeout=60)
    session = make_session(harness.clock.now)
    await store.create(session)
    assert await harness.ttl_of_set(sid_index("sid-1")) >= 3590
    assert await harness.ttl_of_set(sub_index("u-1")) >= 3590


async def test_a_login_of_a_provider_session_ended_meanwhile_ends_at_once(harness: Harness) -> None:
    """Back-channel logout for sid-1 landed while a login with sid-1 was in flight (no session yet)."""
    store = SessionStore.on(harness.backend, clock=harness.clock)
    session = make_session(harness.clock.now)
    assert await store.end_provider_session("sid-1") == 0
    ticket = await store.create(session)
    assert await store.load(ticket) is None
    assert await harness.backend.index_members(sid_index("sid-1")) == frozenset()
    other = await store.create(replace(session, sid="sid-2"))  # other provider sessions: unaffected
    assert await store.load(other) is not None
