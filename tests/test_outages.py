"""Outages, with the real servers stopped and started again mid-run.

Redis down: ``/ready`` says so (503), every request that needs a session is answered 503 and none
reaches the upstream, the process stays up; when Redis is back the proxy recovers by itself and the
sessions from before work again. The test's Redis keeps an append-only file (fsync on every write),
so restarting it keeps its data, as a production Redis with persistence (or a replica) would: that is
what "nothing lost" means here.

Provider down: a login in progress fails with a clear page, sessions already made keep working
(nothing about them needs the provider) until their tokens need a refresh, which is a 503 that keeps
the session; when the provider is back the refresh goes through.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any
from urllib.parse import urljoin

import aiohttp
from aiohttp.test_utils import TestServer

from proxy.keys import COOKIES, STORE
from tests.conftest import ProxyFactory
from tests.support.browser import navigate, new_browser
from tests.support.fake_provider import FakeProvider
from tests.support.login import session_cookie, signed_in_browser
from tests.support.servers import free_port, redis_server, until
from tests.test_metrics import scrape, value

JSON = {"Accept": "application/json"}


async def fetch(browser: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, str]:
    async with browser.get(url, allow_redirects=False, **kwargs) as r:
        return r.status, await r.text()


async def test_redis_down_fails_closed_and_the_proxy_recovers_with_every_session(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    with redis_server(appendonly=True) as redis:
        proxy = await make_proxy(
            issuer=fake_provider.issuer, upstream=upstream, session={"store": "redis", "redis_url": redis.url}
        )
        invalidation = proxy.app[STORE].invalidation
        assert invalidation is not None
        async with await signed_in_browser(proxy.url) as browser:
            assert (await fetch(browser, proxy.url + "/echo"))[0] == 200
            through = value(
                await scrape(proxy.url + "/metrics"), "auth_proxy_upstream_duration_seconds_count"
            )

            await asyncio.to_thread(redis.stop)
            # (The in-memory session cache is only used while its invalidation feed is up; the feed
            # sees the connection close, and the cache is off before anything below is asked.)
            await until(lambda: not invalidation.subscribed.is_set(), "session cache off")
            status, body = await fetch(browser, proxy.url + "/ready")
            assert status == 503 and '"store": "unavailable"' in body
            status, body = await fetch(browser, proxy.url + "/echo")
            assert status == 503 and "Sessions are unavailable" in body
            assert (await fetch(browser, proxy.url + "/api", headers=JSON))[0] == 503
            assert (await fetch(browser, proxy.url + "/oauth/auth"))[0] == 503  # never 202
            # A login starts without the store (its state is in a cookie) and can't finish without it.
            page = await navigate(browser, proxy.url + "/oauth/start?rd=/")
            assert page.status == 503 and "/oauth/callback" in page.url
            assert (await fetch(browser, proxy.url + "/ping"))[0] == 200  # the process is up
            text = await scrape(proxy.url + "/metrics")
            assert value(text, "auth_proxy_upstream_duration_seconds_count") == through  # none got through
            assert value(text, "auth_proxy_store_errors_total", op="get") >= 3

            await asyncio.to_thread(redis.start_again)  # same port, same data (append-only file)
            # No restart, no reconnect command: the very next requests work again.
            assert (await fetch(browser, proxy.url + "/ready"))[0] == 200
            status, body = await fetch(browser, proxy.url + "/echo")
            assert status == 200 and '"path_qs": "/echo"' in body  # the session from before the outage
            await until(invalidation.subscribed.is_set, "session cache back on")
        async with await signed_in_browser(proxy.url) as again:  # and new logins work
            assert (await fetch(again, proxy.url + "/echo"))[0] == 200


async def test_provider_down_fails_logins_clearly_and_sessions_go_on_until_a_refresh(
    make_proxy: ProxyFactory, upstream: str
) -> None:
    provider = FakeProvider()
    port = free_port()
    provider.issuer = f"http://127.0.0.1:{port}"
    server = TestServer(provider.app(), host="127.0.0.1", port=port)
    await server.start_server()
    proxy = await make_proxy(issuer=provider.issuer, upstream=upstream)
    async with await signed_in_browser(proxy.url) as browser, new_browser() as late:
        # Another browser is mid-login: the provider approved it and is sending it back ...
        async with late.get(proxy.url + "/oauth/start?rd=/", allow_redirects=False) as r:
            at_provider = r.headers["Location"]
        async with late.get(at_provider, allow_redirects=False) as r:
            callback = urljoin(proxy.url, r.headers["Location"])
        await server.close()  # ... when the provider goes down.

        page = await navigate(late, callback)
        assert page.status == 503
        assert "The sign-in provider is unavailable" in page.text and "could not be reached" in page.text
        assert "Try again" in page.text  # a way forward, not a stack trace
        # A new login during the outage: our page, not the browser's "can't connect" to the provider.
        page = await navigate(late, proxy.url + "/oauth/start?rd=/")
        assert page.status == 503 and "could not be reached" in page.text

        # A session made before the outage needs nothing from the provider ...
        assert (await fetch(browser, proxy.url + "/echo"))[0] == 200
        assert (await fetch(browser, proxy.url + "/oauth/auth"))[0] == 202
        # ... until its access token needs a refresh: 503, and the session is kept.
        ticket = proxy.app[COOKIES].decode(session_cookie(browser))
        assert ticket is not None
        session = await proxy.app[STORE].load(ticket)
        assert session is not None
        await proxy.app[STORE].save(ticket, replace(session, access_expires_at=time.time() - 1))
        status, body = await fetch(browser, proxy.url + "/echo")
        assert status == 503 and "could not be reached" in body
        assert await proxy.app[STORE].load(ticket) is not None

        server = TestServer(provider.app(), host="127.0.0.1", port=port)  # the provider is back
        await server.start_server()
        try:
            assert (await fetch(browser, proxy.url + "/echo"))[0] == 200  # refreshed now
            assert provider.refreshes == 1  # the try during the outage never reached it
        finally:
            await server.close()
