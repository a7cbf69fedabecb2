"""Where am I signed in: list the user's sessions, end one, end all (here and at the provider)."""

from __future__ import annotations

import aiohttp
import pytest
from redis.asyncio import Redis

from proxy.keys import COOKIES, STORE
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


async def live(proxy: RunningProxy, browser: aiohttp.ClientSession) -> bool:
    ticket = proxy.app[COOKIES].decode(session_cookie(browser))
    return ticket is not None and await proxy.app[STORE].load(ticket) is not None


async def sessions_of(browser: aiohttp.ClientSession, proxy: RunningProxy) -> list[dict[str, object]]:
    async with browser.get(proxy.url + "/oauth/sessions") as r:
        assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
        items: list[dict[str, object]] = (await r.json())["sessions"]
        return items


async def test_list_and_end_one(
    proxy: RunningProxy, fake_provider: FakeProvider, redis_client: Redis
) -> None:
    async with await signed_in_browser(proxy.url) as laptop, await signed_in_browser(proxy.url) as phone:
        listed = await sessions_of(laptop, proxy)
        assert len(listed) == 2
        mine = [s for s in listed if s["current"]]
        other = [s for s in listed if not s["current"]]
        assert len(mine) == 1 and len(other) == 1
        assert mine[0]["ip"] == "127.0.0.1" and "aiohttp" in str(mine[0]["user_agent"])
        assert mine[0]["last_seen"] is not None and float(str(mine[0]["created_at"])) > 0
        ticket = proxy.app[COOKIES].decode(session_cookie(phone))
        assert ticket is not None
        phone_session = await proxy.app[STORE].load(ticket)
        assert phone_session is not None and phone_session.refresh_token
        # no token in clear in Redis, records included
        for key in await redis_client.keys("ap:*"):
            if await redis_client.type(key) == b"string":
                assert phone_session.refresh_token.encode() not in (await redis_client.get(key) or b"")

        async with laptop.post(proxy.url + "/oauth/sessions/end", data={"id": other[0]["id"]}) as r:
            assert r.status == 403  # no CSRF token
        async with laptop.get(proxy.url + "/oauth/sessions") as r:
            token = (await r.json())["csrf_token"]
        async with laptop.post(
            proxy.url + "/oauth/sessions/end", data={"id": other[0]["id"], "csrf": token}
        ) as r:
            assert r.status == 200 and await r.json() == {"ended": True, "provider_ended": True}
        assert fake_provider.end_session_posts[-1]["refresh_token"] == phone_session.refresh_token
        assert not await live(proxy, phone) and await live(proxy, laptop)
        async with phone.get(proxy.url + "/", allow_redirects=False) as r:
            assert r.status == 302
        assert [s["current"] for s in await sessions_of(laptop, proxy)] == [True]


async def test_cannot_end_someone_elses_session(proxy: RunningProxy, fake_provider: FakeProvider) -> None:
    async with await signed_in_browser(proxy.url) as user1:
        theirs = (await sessions_of(user1, proxy))[0]["id"]
        fake_provider.claims.update(sub="user-2", sid="sid-2")
        async with await signed_in_browser(proxy.url) as user2:
            async with user2.get(proxy.url + "/oauth/sessions") as r:
                token = (await r.json())["csrf_token"]
            async with user2.post(proxy.url + "/oauth/sessions/end", json={"id": theirs, "csrf": token}) as r:
                assert r.status == 404
            assert await live(proxy, user1)


async def test_sign_out_everywhere(proxy: RunningProxy, fake_provider: FakeProvider) -> None:
    async with await signed_in_browser(proxy.url) as laptop, await signed_in_browser(proxy.url) as phone:
        fake_provider.claims.update(sub="user-2", sid="sid-2")
        async with await signed_in_browser(proxy.url) as someone_else:
            async with laptop.post(proxy.url + "/oauth/sign_out?everywhere=1", allow_redirects=False) as r:
                assert r.status == 302 and "/logout?" in r.headers["Location"]  # this one: the usual way
            assert not await live(proxy, phone)
            assert len(fake_provider.end_session_posts) == 1  # the phone's, ended from the server
            assert await live(proxy, someone_else)


async def test_not_signed_in(proxy: RunningProxy) -> None:
    async with aiohttp.ClientSession() as anon:
        async with anon.get(proxy.url + "/oauth/sessions") as r:
            assert r.status == 401
        async with anon.post(proxy.url + "/oauth/sessions/end", data={"id": "x"}) as r:
            assert r.status == 401
