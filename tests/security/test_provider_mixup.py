"""Several providers: nothing of provider B completes, ends or unlocks anything of provider A.

Mix-up (RFC 9207 §2 / OAuth Security BCP §4.4): a login started for A completes only with A's
token endpoint, keys, issuer and client; an answer naming B's issuer, a code of B, an ID token of B
are refused. Logout tokens of B end only B's sessions, though A's share the same ``sid`` and
``sub``; sessions of the same ``sub`` at two providers are two users; a bearer token is verified
by the keys of the issuer it names, among ``api.issuers`` only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import pytest

from proxy.keys import COOKIES, PROVIDERS, STORE
from tests.conftest import ProxyFactory, RunningProxy
from tests.support.browser import navigate, new_browser
from tests.support.login import session_cookie
from tests.support.two_providers import Pair, start_pair, two_provider_proxy


@pytest.fixture
async def pair(aiohttp_server: Any) -> Pair:
    return await start_pair(aiohttp_server)


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, pair: Pair, upstream: str) -> RunningProxy:
    return await two_provider_proxy(make_proxy, pair, upstream, logout={"frontchannel": True})


async def authorize_url(browser: aiohttp.ClientSession, proxy: RunningProxy, provider: str) -> str:
    async with browser.get(
        f"{proxy.url}/oauth/start?rd=/oauth/userinfo&provider={provider}", allow_redirects=False
    ) as r:
        assert r.status == 302, await r.text()
        return r.headers["Location"]


async def sign_in(proxy: RunningProxy, provider: str) -> aiohttp.ClientSession:
    browser = new_browser()
    page = await navigate(browser, f"{proxy.url}/oauth/start?rd=/oauth/userinfo&provider={provider}")
    assert page.status == 200, page.text[:300]
    return browser


async def live(proxy: RunningProxy, browser: aiohttp.ClientSession) -> bool:
    ticket = proxy.app[COOKIES].decode(session_cookie(browser))
    return ticket is not None and await proxy.app[STORE].load(ticket) is not None


async def test_each_provider_signs_in_to_its_own_endpoints(proxy: RunningProxy, pair: Pair) -> None:
    async with new_browser() as browser:
        assert (await authorize_url(browser, proxy, "a")).startswith(pair.a.issuer + "/auth?")
        assert (await authorize_url(browser, proxy, "b")).startswith(pair.b.issuer + "/auth?")
    async with await sign_in(proxy, "b") as browser:
        assert pair.b.token_requests and not pair.a.token_requests


async def test_an_answer_naming_another_issuer_is_refused(proxy: RunningProxy, pair: Pair) -> None:
    pair.a.send_iss = True
    async with new_browser() as browser:
        started = await authorize_url(browser, proxy, "a")
        async with browser.get(started, allow_redirects=False) as r:
            callback = r.headers["Location"]
        forged = callback.replace("iss=" + pair.a.issuer, "iss=" + pair.b.issuer)
        assert forged != callback
        page = await navigate(browser, forged)
    assert page.status == 400 and "another provider" in page.text
    assert not pair.a.token_requests and not pair.b.token_requests  # no code was sent anywhere


async def test_an_answer_without_iss_from_a_provider_that_always_sends_it_is_refused(
    proxy: RunningProxy, pair: Pair
) -> None:
    pair.a.send_iss = True
    pair.a.discovery_extra["authorization_response_iss_parameter_supported"] = True
    await proxy.app[PROVIDERS].get("a").discovery.discover()
    async with new_browser() as browser:
        started = await authorize_url(browser, proxy, "a")
        async with browser.get(started, allow_redirects=False) as r:
            callback = r.headers["Location"]
        stripped = callback.replace("&iss=" + pair.a.issuer, "")
        assert stripped != callback
        page = await navigate(browser, stripped)
    assert page.status == 400 and "does not name its provider" in page.text
    assert not pair.a.token_requests


async def test_a_code_of_b_does_not_complete_a_login_started_for_a(proxy: RunningProxy, pair: Pair) -> None:
    async with new_browser() as browser:
        started = await authorize_url(browser, proxy, "a")
        # The same request, answered by B: B's code comes back with A's state.
        query = urlsplit(started).query
        async with browser.get(f"{pair.b.issuer}/auth?{query}", allow_redirects=False) as r:
            callback = r.headers["Location"]
        page = await navigate(browser, callback)
    assert page.status == 400
    assert not pair.b.token_requests  # B's code was taken to A (which refused it), never to B
    assert len(pair.a.token_requests) == 1
    assert not any(c.key == "_auth_proxy" for c in browser.cookie_jar)


async def test_an_id_token_of_b_from_a_token_endpoint_is_refused(
    proxy: RunningProxy, pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pair.a, "id_token", pair.b.id_token)  # iss B, B's key, our client id
    async with new_browser() as browser:
        page = await navigate(browser, f"{proxy.url}/oauth/start?rd=/oauth/userinfo&provider=a")
    assert page.status == 401 and "could not be verified" in page.text
    assert not any(c.key == "_auth_proxy" for c in browser.cookie_jar)


async def test_a_logout_token_of_b_ends_only_b_sessions(proxy: RunningProxy, pair: Pair) -> None:
    assert pair.a.claims["sid"] == pair.b.claims["sid"] and pair.a.claims["sub"] == pair.b.claims["sub"]
    async with await sign_in(proxy, "a") as at_a, await sign_in(proxy, "b") as at_b:
        for token in (pair.b.logout_token(), pair.b.logout_token(drop=("sid",))):  # by sid, by sub
            async with aiohttp.ClientSession() as client:
                async with client.post(
                    proxy.url + "/oauth/backchannel_logout", data={"logout_token": token}
                ) as r:
                    assert r.status == 200
            assert await live(proxy, at_a)
        assert not await live(proxy, at_b)


async def test_a_logout_token_naming_a_but_signed_by_b_is_refused(proxy: RunningProxy, pair: Pair) -> None:
    async with await sign_in(proxy, "a") as at_a:
        for kid in ("kb", "k1"):  # B's key under its own kid, and under A's
            token = pair.a.logout_token(
                key=pair.b.key, header={"alg": "RS256", "kid": kid, "typ": "logout+jwt"}
            )
            async with aiohttp.ClientSession() as client:
                data = {"logout_token": token}
                async with client.post(proxy.url + "/oauth/backchannel_logout", data=data) as r:
                    assert r.status == 400
        assert await live(proxy, at_a)


async def test_front_channel_logout_of_b_leaves_a_session(proxy: RunningProxy, pair: Pair) -> None:
    async with await sign_in(proxy, "a") as at_a:
        ticket = proxy.app[COOKIES].decode(session_cookie(at_a))
        assert ticket is not None
        query = urlencode({"iss": pair.b.issuer, "sid": pair.b.claims["sid"]})
        async with at_a.get(f"{proxy.url}/oauth/frontchannel_logout?{query}") as r:
            assert r.status == 200
        assert await live(proxy, at_a)
        query = urlencode({"iss": pair.a.issuer, "sid": pair.a.claims["sid"]})
        async with at_a.get(f"{proxy.url}/oauth/frontchannel_logout?{query}") as r:
            assert r.status == 200
        assert await proxy.app[STORE].load(ticket) is None


async def test_the_same_sub_at_two_providers_is_two_users(proxy: RunningProxy, pair: Pair) -> None:
    async with await sign_in(proxy, "a") as at_a, await sign_in(proxy, "b") as at_b:
        async with at_a.get(proxy.url + "/oauth/sessions") as r:
            listed = (await r.json())["sessions"]
        assert len(listed) == 1  # not B's session of the same sub
        async with at_a.post(proxy.url + "/oauth/sign_out?everywhere=1", allow_redirects=False) as r:
            assert r.status in (200, 302)
        assert await live(proxy, at_b)


async def test_sign_out_goes_to_the_session_provider(proxy: RunningProxy, pair: Pair) -> None:
    async with await sign_in(proxy, "b") as at_b:
        async with at_b.get(proxy.url + "/oauth/sign_out", allow_redirects=False) as r:
            assert r.status == 302
            assert r.headers["Location"].startswith(pair.b.issuer + "/logout?")


@pytest.mark.parametrize(
    ("issuers", "signer", "claimed", "status"),
    [
        (None, "b", "b", 200),
        (["a"], "b", "b", 401),  # B is not an accepted issuer
        (None, "a", "b", 401),  # claims B, signed by A
        (None, "b", "a", 401),  # claims A, signed by B
    ],
    ids=["b-accepted", "b-not-listed", "claims-b-signed-by-a", "claims-a-signed-by-b"],
)
async def test_bearer_tokens_are_verified_by_the_issuer_they_name(
    make_proxy: ProxyFactory, pair: Pair, upstream: str, issuers: list[str] | None, signer: str,
    claimed: str, status: int,
) -> None:  # fmt: skip
    by_name = {"a": pair.a, "b": pair.b}
    api: dict[str, Any] = {"accept_bearer": True}
    if issuers is not None:
        api["issuers"] = [by_name[i].issuer for i in issuers]
    proxy = await two_provider_proxy(make_proxy, pair, upstream, api=api)
    token = by_name[claimed].access_token(key=by_name[signer].key)
    async with aiohttp.ClientSession() as client:
        async with client.get(proxy.url + "/x", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == status


async def test_a_session_refreshes_at_its_own_provider(
    make_proxy: ProxyFactory, pair: Pair, upstream: str
) -> None:
    proxy = await two_provider_proxy(
        make_proxy, pair, upstream, session={"store": "memory", "refresh_skew": "400s"}
    )
    async with await sign_in(proxy, "b") as at_b:
        async with at_b.get(proxy.url + "/x") as r:
            assert r.status == 200
    assert pair.b.refreshes >= 1 and pair.a.refreshes == 0
