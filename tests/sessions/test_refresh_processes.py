"""The refresh lock holds across processes: two real proxy processes share one Redis, and 100
concurrent requests at a session whose access token just expired cause exactly one refresh."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from proxy.config import load_settings
from proxy.cookies import CookieCodec
from proxy.sessions.invalidation import CHANNEL
from proxy.sessions.redis_store import RedisBackend
from proxy.sessions.store import SessionStore
from tests.conftest import COOKIE_SECRET
from tests.support.browser import navigate, new_browser
from tests.support.fake_provider import FakeProvider
from tests.support.processes import proxy_processes, shared_config
from tests.support.servers import RedisServer, wait_port


@pytest.fixture
def two_proxies(
    fake_provider: FakeProvider, upstream: str, redis_srv: RedisServer, tmp_path: Path
) -> Iterator[tuple[list[str], dict[str, object]]]:
    config = shared_config(fake_provider.issuer, upstream, redis_srv.url, COOKIE_SECRET)
    with proxy_processes(2, config, tmp_path) as urls:
        yield urls, config


async def test_one_refresh_for_100_requests_over_2_processes(
    two_proxies: tuple[list[str], dict[str, object]], fake_provider: FakeProvider
) -> None:
    urls, config = two_proxies
    for url in urls:
        await asyncio.to_thread(wait_port, int(url.rsplit(":", 1)[1]), 20)
    fake_provider.refresh_delay = 0.3  # a slow provider widens the race
    settings = load_settings(None, **config)
    codec = CookieCodec(settings.cookie, settings.session.lifetime)
    backend = RedisBackend.from_url(settings.session.redis_url.get_secret_value())
    store = SessionStore.on(backend)
    async with new_browser() as browser:
        for _ in range(100):  # the processes discover the provider in the background
            page = await navigate(browser, urls[0] + "/oauth/start?rd=/echo")
            if page.status == 200:
                break
            await asyncio.sleep(0.1)
        assert page.status == 200
        ticket = codec.decode(next(c.value for c in browser.cookie_jar if c.key == "_auth_proxy"))
        assert ticket is not None
        session = await store.load(ticket)
        assert session is not None
        await store.save(ticket, replace(session, access_expires_at=time.time() - 1))
        # as the proxy itself would: tell every process's session cache that this session changed
        redis = Redis.from_url(settings.session.redis_url.get_secret_value())
        await redis.publish(CHANNEL, ticket.id.hex())
        await redis.aclose()
        cookie = {"Cookie": f"_auth_proxy={codec.encode(ticket)}"}

        async with aiohttp.ClientSession() as client:

            async def one(i: int) -> int:
                async with client.get(urls[i % 2] + "/echo", headers=cookie) as r:
                    await r.read()
                    return r.status

            statuses = await asyncio.gather(*(one(i) for i in range(100)))
    await backend.close()
    assert statuses == [200] * 100
    assert fake_provider.refreshes == 1
