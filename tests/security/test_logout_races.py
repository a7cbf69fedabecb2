"""A session ended stays ended, whatever is in flight; front-channel logout ends only the browser's own.

Races: two replicas over one Redis (each with its session cache and invalidation feed, as deployed).
Replica A refreshes the session's tokens (its ``refresh_skew`` makes the token due there) and the
provider's token endpoint is held on an event; meanwhile the session is ended through replica B
(where the token is not yet due, as with a clock a little behind); then the refresh is let finish.

  back-channel logout (by sid) during the refresh        → ended: the refresh's save writes nothing, the
                                                            request in flight is not signed in (302)
  back-channel logout (by sub only) during the refresh   → ended, the same
  sign-out (same browser, other replica) during refresh  → ended, the same
  "end this session" from the user's other browser       → ended, the same
  "sign out everywhere" from the user's other browser    → ended, the same
  back-channel logout (by sid) while the login's callback waits for its tokens (no session of
      that sid yet)                                       → the session the callback makes is ended at
                                                            once (the sid is marked ended for
                                                            LOGIN_TTL + 2 min): not signed in
  the session's record (refresh token) after any of them → gone: the refresh doesn't write it back
  sign-out while the refresh fails (provider down)       → ended here all the same (was a 503 that
                                                            left the session signed in)
  a replayed logout token                                 → 400, nothing more ended
  a replica's cache: a load that read the session before it was ended, and caches it after the
      eviction arrived                                    → not cached (tests/unit/sessions/test_cache.py)
  the store: a refresh's save after delete               → nothing written, for every backend
      (memory, Redis, Sentinel, Cluster: tests/sessions/test_store.py)

Front-channel logout (``GET /oauth/frontchannel_logout?iss=&sid=``, unsigned, framed by the provider):

  logout.frontchannel: false (default)                   → 404, nothing ended
  on, iss missing                                        → 400, nothing ended
  on, iss another issuer                                 → 400, nothing ended
  on, sid missing                                        → 400, nothing ended
  on, no session cookie, a known sid                     → 200 (nothing to end), nothing ended: the
                                                            sid's other sessions are left to back-channel
  on, another browser's cookie-less frame naming my sid  → my session lives
  on, my cookie but another sid                          → 200, nothing ended
  on, my cookie and my session's sid                     → 200, my session ended (only mine: the
                                                            user's other browser with the same sid lives)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from proxy.keys import COOKIES, STORE
from proxy.sessions.records import record_key
from tests.conftest import ProxyFactory, RunningProxy
from tests.security.conftest import KEY
from tests.support.browser import navigate, new_browser
from tests.support.fake_provider import FakeProvider
from tests.support.login import session_cookie, signed_in_browser


@dataclass
class GatedProvider(FakeProvider):
    """The fake provider, whose token endpoint holds refreshes while ``gate`` is set and closed."""

    gate: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    code_gate: asyncio.Event | None = None
    """Holds code exchanges (the login callback) likewise."""

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()  # aiohttp keeps it: the provider's handler reads it again
        if form.get("grant_type") == "authorization_code" and self.code_gate is not None:
            self.entered.set()
            await self.code_gate.wait()
        return await super().token(request)

    async def _refresh(self, refresh_token: str) -> web.Response:
        if self.gate is not None:
            self.entered.set()
            await self.gate.wait()
        return await super()._refresh(refresh_token)


@pytest.fixture
async def provider(aiohttp_server: Any) -> GatedProvider:
    gated = GatedProvider(key=KEY)
    server = await aiohttp_server(gated.app(), host="127.0.0.1")
    gated.issuer = str(server.make_url("")).rstrip("/")
    return gated


@dataclass
class Replicas:
    a: RunningProxy
    """Refreshes: its refresh_skew is longer than the tokens live."""
    b: RunningProxy
    """Where the session is ended: the tokens are not due here."""


@pytest.fixture
async def replicas(
    make_proxy: ProxyFactory, provider: GatedProvider, upstream: str, redis_url: str
) -> Replicas:
    session = {"store": "redis", "redis_url": redis_url}
    a = await make_proxy(
        issuer=provider.issuer, upstream=upstream, session={**session, "refresh_skew": "10m"}
    )
    b = await make_proxy(issuer=provider.issuer, upstream=upstream, session=session)
    for replica in (a, b):  # the caches on: every replica is subscribed to the invalidation feed
        invalidation = replica.app[STORE].invalidation
        assert invalidation is not None
        await asyncio.wait_for(invalidation.subscribed.wait(), 5)
    return Replicas(a, b)


Ending = Callable[[Replicas, GatedProvider, aiohttp.ClientSession, aiohttp.ClientSession], Awaitable[None]]


async def _backchannel(r: Replicas, p: GatedProvider, victim: Any, other: Any, **claims: Any) -> None:
    async with aiohttp.ClientSession() as client:
        token = p.logout_token(**claims)
        async with client.post(r.b.url + "/oauth/backchannel_logout", data={"logout_token": token}) as resp:
            assert resp.status == 200, await resp.text()


async def by_sid(r: Replicas, p: GatedProvider, victim: Any, other: Any) -> None:
    await _backchannel(r, p, victim, other)


async def by_sub(r: Replicas, p: GatedProvider, victim: Any, other: Any) -> None:
    await _backchannel(r, p, victim, other, drop=("sid",))


async def sign_out(r: Replicas, p: GatedProvider, victim: aiohttp.ClientSession, other: Any) -> None:
    async with victim.get(r.b.url + "/oauth/sign_out", allow_redirects=False) as resp:
        assert resp.status == 302


async def end_session(r: Replicas, p: GatedProvider, victim: Any, other: aiohttp.ClientSession) -> None:
    async with other.get(r.b.url + "/oauth/sessions") as resp:
        listing = await resp.json()
    (ref,) = [s["id"] for s in listing["sessions"] if not s["current"]]
    data = {"id": ref, "csrf": listing["csrf_token"]}
    async with other.post(r.b.url + "/oauth/sessions/end", data=data) as resp:
        assert resp.status == 200 and (await resp.json())["ended"] is True


async def everywhere(r: Replicas, p: GatedProvider, victim: Any, other: aiohttp.ClientSession) -> None:
    async with other.get(r.b.url + "/oauth/sign_out?everywhere=1", allow_redirects=False) as resp:
        assert resp.status == 302


ENDINGS: dict[str, Ending] = {
    "backchannel_sid": by_sid,
    "backchannel_sub": by_sub,
    "sign_out": sign_out,
    "end_session": end_session,
    "sign_out_everywhere": everywhere,
}


@pytest.fixture
async def browsers(replicas: Replicas) -> AsyncIterator[tuple[aiohttp.ClientSession, aiohttp.ClientSession]]:
    """The victim's browser and the same user's other browser, both signed in through replica B.
    (The cookie jar doesn't tell the two replicas' ports apart: one browser, two replicas.)"""
    victim = await signed_in_browser(replicas.b.url)
    try:
        other = await signed_in_browser(replicas.b.url)
        try:
            yield victim, other
        finally:
            await other.close()
    finally:
        await victim.close()


async def signed_in(proxy: RunningProxy, browser: aiohttp.ClientSession) -> bool:
    async with browser.get(proxy.url + "/page", allow_redirects=False) as resp:
        await resp.read()
        assert resp.status in (200, 302), resp.status
        return resp.status == 200


@pytest.mark.parametrize("ending", list(ENDINGS))
async def test_a_session_ended_during_its_refresh_stays_ended(
    replicas: Replicas,
    provider: GatedProvider,
    browsers: tuple[aiohttp.ClientSession, aiohttp.ClientSession],
    redis_client: Any,
    ending: str,
) -> None:
    victim, other = browsers
    ticket = replicas.a.app[COOKIES].decode(session_cookie(victim))
    assert ticket is not None
    assert await signed_in(replicas.b, victim)  # not due on B: no refresh
    assert provider.refreshes == 0
    provider.gate = asyncio.Event()
    in_flight = asyncio.ensure_future(signed_in(replicas.a, victim))  # due on A: refreshes
    try:
        await asyncio.wait_for(provider.entered.wait(), 5)
        await ENDINGS[ending](replicas, provider, victim, other)
        assert await replicas.b.app[STORE].load(ticket) is None
    finally:
        provider.gate.set()
    assert await asyncio.wait_for(in_flight, 10) is False  # the request in flight: not signed in
    assert provider.refreshes == 1
    for replica in (replicas.a, replicas.b):
        assert await replica.app[STORE].load(ticket) is None
        assert await replica.app[STORE].load(ticket, cached=False) is None
        assert not await signed_in(replica, victim)
    assert await redis_client.get(ticket.key) is None
    assert await redis_client.get(record_key(ticket.id.hex())) is None  # no refresh token left behind


async def test_a_login_whose_provider_session_ends_during_the_callback_is_not_signed_in(
    replicas: Replicas, provider: GatedProvider
) -> None:
    provider.code_gate = asyncio.Event()
    browser = new_browser()
    try:
        login = asyncio.ensure_future(navigate(browser, replicas.a.url + "/oauth/start?rd=/oauth/userinfo"))
        try:
            await asyncio.wait_for(provider.entered.wait(), 5)  # the callback waits for its tokens
            await by_sid(replicas, provider, None, None)  # no session of sid-1 yet: ends none
        finally:
            provider.code_gate.set()
        page = await asyncio.wait_for(login, 10)
        assert page.status == 401  # /oauth/userinfo: the new session was ended at once
        ticket = replicas.a.app[COOKIES].decode(session_cookie(browser))
        assert ticket is not None and await replicas.b.app[STORE].load(ticket) is None
        assert not await signed_in(replicas.a, browser)
    finally:
        await browser.close()


async def test_sign_out_while_the_refresh_fails_still_ends_the_session(
    replicas: Replicas, provider: GatedProvider, browsers: tuple[aiohttp.ClientSession, aiohttp.ClientSession]
) -> None:
    victim, _ = browsers
    ticket = replicas.a.app[COOKIES].decode(session_cookie(victim))
    assert ticket is not None
    provider.refresh_mode = "500"  # the token is due on A, and the provider can't refresh it
    async with victim.get(replicas.a.url + "/oauth/sign_out", allow_redirects=False) as resp:
        assert resp.status == 302
    assert await replicas.a.app[STORE].load(ticket) is None
    assert not await signed_in(replicas.b, victim)


async def test_a_replayed_logout_token_is_refused(replicas: Replicas, provider: GatedProvider) -> None:
    token = provider.logout_token()
    async with aiohttp.ClientSession() as client:
        for expected in (200, 400):
            async with client.post(
                replicas.b.url + "/oauth/backchannel_logout", data={"logout_token": token}
            ) as resp:
                assert resp.status == expected


# --- front-channel logout --------------------------------------------------------------------


async def frontchannel_proxy(
    make_proxy: ProxyFactory, provider: FakeProvider, upstream: str, on: bool
) -> RunningProxy:
    logout = {"frontchannel": True} if on else {}
    return await make_proxy(issuer=provider.issuer, upstream=upstream, as_deployed=True, logout=logout)


async def is_live(proxy: RunningProxy, browser: aiohttp.ClientSession) -> bool:
    ticket = proxy.app[COOKIES].decode(session_cookie(browser))
    return ticket is not None and await proxy.app[STORE].load(ticket) is not None


async def frame(client: aiohttp.ClientSession, proxy: RunningProxy, **params: str) -> aiohttp.ClientResponse:
    async with client.get(proxy.url + "/oauth/frontchannel_logout", params=params) as resp:
        await resp.read()
        return resp


async def test_frontchannel_is_off_by_default(
    make_proxy: ProxyFactory, provider: GatedProvider, upstream: str
) -> None:
    proxy = await frontchannel_proxy(make_proxy, provider, upstream, on=False)
    async with await signed_in_browser(proxy.url) as browser:
        resp = await frame(browser, proxy, iss=provider.issuer, sid="sid-1")
        assert resp.status == 404 and resp.headers["Cache-Control"] == "no-store"
        assert await is_live(proxy, browser)


@pytest.mark.parametrize(
    "params",
    [{"sid": "sid-1"}, {"iss": "https://evil.example", "sid": "sid-1"}, {"iss": "{issuer}/", "sid": "sid-1"},
     {"iss": "{issuer}"}, {"iss": "{issuer}", "sid": ""}],
    ids=["no iss", "other iss", "iss with a slash", "no sid", "empty sid"],
)  # fmt: skip
async def test_frontchannel_without_the_right_iss_and_a_sid_is_400(
    make_proxy: ProxyFactory, provider: GatedProvider, upstream: str, params: dict[str, str]
) -> None:
    proxy = await frontchannel_proxy(make_proxy, provider, upstream, on=True)
    async with await signed_in_browser(proxy.url) as browser:
        query = {k: v.format(issuer=provider.issuer) for k, v in params.items()}
        resp = await frame(browser, proxy, **query)
        assert resp.status == 400
        assert await is_live(proxy, browser)


async def test_frontchannel_ends_only_the_own_session_of_that_sid(
    make_proxy: ProxyFactory, provider: GatedProvider, upstream: str
) -> None:
    proxy = await frontchannel_proxy(make_proxy, provider, upstream, on=True)
    iss = provider.issuer
    my_sid = provider.claims["sid"]
    async with await signed_in_browser(proxy.url) as mine, await signed_in_browser(proxy.url) as my_other:
        provider.claims["sid"] = "sid-attacker"
        async with await signed_in_browser(proxy.url) as attacker, aiohttp.ClientSession() as cookieless:
            # Without a cookie (a cross-site frame with SameSite=Lax, or anyone at all): nothing ends.
            resp = await frame(cookieless, proxy, iss=iss, sid=my_sid)
            assert resp.status == 200 and "Signed out" in await resp.text()
            # Another browser naming my sid: nothing of mine (nor of theirs) ends.
            assert (await frame(attacker, proxy, iss=iss, sid=my_sid)).status == 200
            # My cookie, but another sid: nothing.
            assert (await frame(mine, proxy, iss=iss, sid="sid-attacker")).status == 200
            assert await is_live(proxy, mine) and await is_live(proxy, my_other)
            assert await is_live(proxy, attacker)
            # My cookie and my session's sid: mine ends, and only mine.
            ticket = proxy.app[COOKIES].decode(session_cookie(mine))
            assert ticket is not None
            async with mine.get(
                proxy.url + "/oauth/frontchannel_logout", params={"iss": iss, "sid": my_sid}
            ) as r:
                assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
                assert f"frame-ancestors {iss}" in r.headers["Content-Security-Policy"]
                assert r.cookies["_auth_proxy"].value == ""  # the cookie is cleared
            assert await proxy.app[STORE].load(ticket) is None
            assert await is_live(proxy, my_other) and await is_live(proxy, attacker)
