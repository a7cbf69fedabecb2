"""Sessions on Redis behind Sentinel and on a Redis Cluster (real servers, tests/sessions/conftest.py):
when the master dies, Sentinel promotes the replica and the store follows it by itself, sessions
kept; the whole proxy (login, proxied request, the invalidation feed, sign-out) runs on both; every
key of one session lives in one Cluster slot; and an unreachable Sentinel or Cluster fails closed.
The store conformance suite runs on both too (tests/sessions/test_store.py)."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from proxy.errors import StoreUnavailable
from proxy.keys import STORE
from proxy.sessions.base import Ticket
from proxy.sessions.guards import lock_key
from proxy.sessions.records import record_key, seen_key
from proxy.sessions.redis_store import RedisBackend
from proxy.sessions.store import SessionStore
from tests.conftest import ProxyFactory
from tests.sessions.test_store import make_session
from tests.support.fake_provider import FakeProvider
from tests.support.login import signed_in_browser
from tests.support.redis_ha import SentinelSetup
from tests.support.servers import free_port


async def test_the_master_dies_sentinel_promotes_the_replica_and_sessions_go_on(
    redis_sentinel: SentinelSetup,
) -> None:
    backend = RedisBackend.from_url(redis_sentinel.url)
    store = SessionStore.on(backend)
    before = await store.create(make_session(time.time()))
    # Replication is asynchronous: WAIT until the replica has it (what survives a failover is what
    # had been replicated: the usual Redis trade-off, also for sessions).
    assert await backend.client.execute_command("WAIT", 1, 1500) == 1
    new = await asyncio.to_thread(redis_sentinel.kill_master)
    # The same client, never rebuilt: its connections to the dead master fail, it asks Sentinel again.
    assert await store.load(before) is not None
    after = await store.create(make_session(time.time()))
    assert await store.load(after) is not None
    direct = Redis(host="127.0.0.1", port=new)
    assert await direct.exists(before.key, after.key) == 2
    await direct.aclose()
    await backend.close()


def test_every_key_of_one_session_is_in_one_cluster_slot() -> None:
    ticket = Ticket.new()
    session_id = ticket.id.hex()
    keys = [ticket.key, lock_key(ticket), record_key(session_id), seen_key(session_id)]
    assert len({key_slot(k.encode()) for k in keys}) == 1
    # (Indexes are one key each and every store call names one key: see proxy/sessions/store.py.)


@pytest.mark.parametrize("ha", ["redis_sentinel", "redis_cluster"])
async def test_the_whole_proxy_runs_on(
    ha: str, request: pytest.FixtureRequest, make_proxy: ProxyFactory, fake_provider: FakeProvider,
    upstream: str,
) -> None:  # fmt: skip
    url = request.getfixturevalue(ha).url
    proxy = await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream, session={"store": "redis", "redis_url": url}
    )
    async with await signed_in_browser(proxy.url) as browser:
        async with browser.get(proxy.url + "/echo") as r:
            assert r.status == 200 and (await r.json())["path_qs"] == "/echo"
        async with browser.get(proxy.url + "/ready") as r:
            assert r.status == 200, await r.text()
        invalidation = proxy.app[STORE].invalidation
        assert invalidation is not None
        await asyncio.wait_for(invalidation.subscribed.wait(), 10)  # pub/sub works there too
        async with browser.get(proxy.url + "/oauth/sign_out", allow_redirects=False) as r:
            assert r.status in (200, 302)
        async with browser.get(proxy.url + "/echo", headers={"Accept": "application/json"}) as r:
            assert r.status == 401


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://127.0.0.1:{port}/mymaster/0",  # no Sentinel there
        "redis+cluster://127.0.0.1:{port}",  # no Cluster node there
    ],
)
async def test_unreachable_sentinel_or_cluster_is_store_unavailable(url: str) -> None:
    backend = RedisBackend.from_url(url.format(port=free_port()), timeout=0.5)
    started = time.monotonic()
    for call in (backend.ping(), backend.get("k"), backend.set("k", b"v", 10)):
        with pytest.raises(StoreUnavailable):
            await call
    assert time.monotonic() - started < 10
    await backend.close()


async def test_a_service_name_sentinel_does_not_know_is_store_unavailable(
    redis_sentinel: SentinelSetup,
) -> None:
    backend = RedisBackend.from_url(f"redis+sentinel://127.0.0.1:{redis_sentinel.sentinel_port}/nosuch")
    with pytest.raises(StoreUnavailable, match="MasterNotFoundError"):
        await backend.ping()
    await backend.close()
