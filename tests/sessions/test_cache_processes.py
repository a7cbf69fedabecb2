"""Sessions cached in each process's memory, and still: a sign-out or back-channel logout on one
process takes effect on the other within 100 ms; and with the invalidation feed cut, nothing is
served from memory at all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from proxy.config import load_settings
from proxy.cookies import CookieCodec
from tests.conftest import COOKIE_SECRET
from tests.support.browser import navigate, new_browser
from tests.support.fake_provider import FakeProvider
from tests.support.processes import proxy_processes, shared_config
from tests.support.servers import RedisServer, wait_port


@pytest.fixture
def two_proxies(
    fake_provider: FakeProvider, upstream: str, redis_srv: RedisServer, tmp_path: Path
) -> Iterator[list[str]]:
    config = shared_config(fake_provider.issuer, upstream, redis_srv.url, COOKIE_SECRET, cache_max_age="60s")
    with proxy_processes(2, config, tmp_path) as urls:
        yield urls


@pytest.fixture
async def signed_in(two_proxies: list[str]) -> AsyncIterator[tuple[list[str], str]]:
    """Both processes up, a user signed in through the first; the cookie value."""
    for url in two_proxies:
        await asyncio.to_thread(wait_port, int(url.rsplit(":", 1)[1]), 20)
    async with new_browser() as browser:
        for _ in range(100):  # discovery runs in the background at start-up
            page = await navigate(browser, two_proxies[0] + "/oauth/start?rd=/echo")
            if page.status == 200:
                break
            await asyncio.sleep(0.1)
        assert page.status == 200
        yield two_proxies, next(c.value for c in browser.cookie_jar if c.key == "_auth_proxy")


async def status(client: aiohttp.ClientSession, url: str, cookie: str) -> int:
    headers = {"Cookie": f"_auth_proxy={cookie}", "Accept": "application/json"}
    async with client.get(url + "/echo", headers=headers, allow_redirects=False) as r:
        await r.read()
        return r.status


async def gone_within(client: aiohttp.ClientSession, url: str, cookie: str, limit: float) -> float:
    started = time.monotonic()
    while await status(client, url, cookie) == 200:
        assert time.monotonic() - started < limit, f"still signed in on {url} after {limit * 1000:.0f} ms"
        await asyncio.sleep(0.002)
    return time.monotonic() - started


async def test_sign_out_reaches_the_other_process_within_100ms(signed_in: tuple[list[str], str]) -> None:
    (a, b), cookie = signed_in
    async with aiohttp.ClientSession() as client:
        for _ in range(5):  # both processes now hold the session in memory
            assert await status(client, a, cookie) == 200 and await status(client, b, cookie) == 200
        async with client.get(a + "/oauth/sign_out", headers={"Cookie": f"_auth_proxy={cookie}"},
                              allow_redirects=False) as r:  # fmt: skip
            assert r.status == 302
        took = await gone_within(client, b, cookie, 0.1)
    print(f"signed out on the other process after {took * 1000:.1f} ms")


async def test_backchannel_logout_reaches_every_process_within_100ms(
    signed_in: tuple[list[str], str], fake_provider: FakeProvider
) -> None:
    (a, b), cookie = signed_in
    async with aiohttp.ClientSession() as client:
        for _ in range(5):
            assert await status(client, a, cookie) == 200 and await status(client, b, cookie) == 200
        async with client.post(
            b + "/oauth/backchannel_logout", data={"logout_token": fake_provider.logout_token()}
        ) as r:
            assert r.status == 200
        await gone_within(client, a, cookie, 0.1)
        await gone_within(client, b, cookie, 0.1)


async def test_without_the_feed_nothing_is_served_from_memory(
    signed_in: tuple[list[str], str], redis_srv: RedisServer
) -> None:
    (a, b), cookie = signed_in
    provider = {"issuer_url": "http://x/r", "client_id": "p", "client_secret": "s"}
    settings = load_settings(None, provider=provider, cookie={"secret": COOKIE_SECRET, "secure": False})
    ticket = CookieCodec(settings.cookie, 3600).decode(cookie)
    assert ticket is not None
    redis = Redis.from_url(redis_srv.url)
    try:
        async with aiohttp.ClientSession() as client:
            for _ in range(5):
                assert await status(client, a, cookie) == 200 and await status(client, b, cookie) == 200
            # Cut every process's invalidation feed and, at once, delete the session behind their backs
            # (no message): the processes must notice the cut and stop trusting their memory.
            await redis.client_kill_filter(_type="pubsub")
            await asyncio.sleep(0.05)
            await redis.delete(ticket.key)
            assert await status(client, a, cookie) != 200 and await status(client, b, cookie) != 200
    finally:
        await redis.aclose()
