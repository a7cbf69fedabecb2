"""Token refresh: once per session however many requests race, sessions ended by the provider end
here, and a provider outage is a 503 that keeps the session."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import aiohttp
import pytest

from proxy.keys import COOKIES, STORE
from proxy.sessions.base import Session, Ticket
from tests.conftest import ProxyFactory, RunningProxy
from tests.support.fake_provider import FakeProvider
from tests.support.login import session_cookie, signed_in_browser


@pytest.fixture
async def proxy(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str, redis_url: str
) -> RunningProxy:
    return await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream, session={"store": "redis", "redis_url": redis_url}
    )


async def expire_access_token(proxy: RunningProxy, browser: aiohttp.ClientSession) -> tuple[Ticket, Session]:
    """Make the stored session's access token expire now (as time passing would)."""
    ticket = proxy.app[COOKIES].decode(session_cookie(browser))
    assert ticket is not None
    session = await proxy.app[STORE].load(ticket)
    assert session is not None
    stale = replace(session, access_expires_at=time.time() - 1)
    await proxy.app[STORE].save(ticket, stale)
    return ticket, stale


async def test_a_stale_token_is_refreshed_once_and_saved(
    proxy: RunningProxy, fake_provider: FakeProvider
) -> None:
    async with await signed_in_browser(proxy.url) as browser:
        async with browser.get(proxy.url + "/echo") as r:
            assert r.status == 200
        assert fake_provider.refreshes == 0  # fresh tokens are not refreshed
        ticket, stale = await expire_access_token(proxy, browser)
        async with browser.get(proxy.url + "/echo") as r:
            assert r.status == 200
        assert fake_provider.refreshes == 1
        renewed = await proxy.app[STORE].load(ticket)
        assert renewed is not None
        assert renewed.access_token != stale.access_token and renewed.refresh_token != stale.refresh_token
        assert renewed.access_expires_at is not None and renewed.access_expires_at > time.time() + 200
        assert renewed.refresh_expires_at is not None


async def test_racing_requests_share_one_refresh(proxy: RunningProxy, fake_provider: FakeProvider) -> None:
    fake_provider.refresh_delay = 0.2
    async with await signed_in_browser(proxy.url) as browser:
        await expire_access_token(proxy, browser)

        async def one() -> int:
            async with browser.get(proxy.url + "/echo") as r:
                await r.read()
                return r.status

        statuses = await asyncio.gather(*(one() for _ in range(50)))
    assert statuses == [200] * 50
    assert fake_provider.refreshes == 1


async def test_provider_ended_session_ends_here(proxy: RunningProxy, fake_provider: FakeProvider) -> None:
    async with await signed_in_browser(proxy.url) as browser:
        ticket, _ = await expire_access_token(proxy, browser)
        fake_provider.refresh_mode = "invalid_grant"
        async with browser.get(proxy.url + "/page", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"].startswith("/oauth/start")
        assert await proxy.app[STORE].load(ticket) is None
        async with browser.get(proxy.url + "/api", headers={"Accept": "application/json"}) as r:
            assert r.status == 401


async def test_provider_down_is_503_and_the_session_is_kept(
    proxy: RunningProxy, fake_provider: FakeProvider
) -> None:
    async with await signed_in_browser(proxy.url) as browser:
        ticket, _ = await expire_access_token(proxy, browser)
        fake_provider.refresh_mode = "500"
        async with browser.get(proxy.url + "/page") as r:
            assert r.status == 503 and "could not be reached" in await r.text()
        async with browser.get(proxy.url + "/oauth/auth") as r:
            assert r.status == 503
        assert await proxy.app[STORE].load(ticket) is not None
        fake_provider.refresh_mode = "ok"  # back: retried on the next request
        async with browser.get(proxy.url + "/echo") as r:
            assert r.status == 200
        assert fake_provider.refreshes == 3


async def test_refreshed_id_token_for_another_subject_ends_the_session(
    proxy: RunningProxy, fake_provider: FakeProvider
) -> None:
    async with await signed_in_browser(proxy.url) as browser:
        ticket, _ = await expire_access_token(proxy, browser)
        fake_provider.refresh_mode = "other_sub"
        async with browser.get(proxy.url + "/page", allow_redirects=False) as r:
            assert r.status == 302
        assert await proxy.app[STORE].load(ticket) is None


async def test_idle_timeout_slides_and_lifetime_caps(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str, redis_url: str
) -> None:
    from redis.asyncio import Redis

    proxy = await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream,
        session={"store": "redis", "redis_url": redis_url, "idle_timeout": "10m", "lifetime": "1h"},
    )  # fmt: skip
    redis = Redis.from_url(redis_url)
    try:
        async with await signed_in_browser(proxy.url) as browser:
            ticket = proxy.app[COOKIES].decode(session_cookie(browser))
            assert ticket is not None
            assert 595 <= await redis.ttl(ticket.key) <= 600  # idle timeout, not the 1 h lifetime
            await redis.expire(ticket.key, 30)  # nearly idle ...
            async with browser.get(proxy.url + "/echo") as r:
                assert r.status == 200
            assert 595 <= await redis.ttl(ticket.key) <= 600  # ... and used again: it slides
    finally:
        await redis.aclose()
