"""Several providers on the proxy path: choosing one, restricting prefixes to some, the sign-in
parameters each sends (fixed and passed through), and step-up sign-in for an upstream's ``acr``."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp
import pytest

from tests.conftest import ProxyFactory, RunningProxy
from tests.support.browser import navigate, new_browser
from tests.support.two_providers import Pair, providers_config, start_pair, two_provider_proxy


@pytest.fixture
async def pair(aiohttp_server: Any) -> Pair:
    return await start_pair(aiohttp_server)


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, pair: Pair, upstream: str) -> RunningProxy:
    providers = providers_config(
        pair,
        auth_params={"kc_idp_hint": "corp"},
        pass_through_params={
            "login_hint": {"pattern": r"[a-z0-9._-]{1,64}@example\.test"},
            "prompt": {"values": ["login"]},
        },
    )
    upstreams = [
        {"prefix": "/", "url": upstream},
        {"prefix": "/b-only", "url": upstream, "providers": ["b"]},
        {"prefix": "/gold", "url": upstream, "acr": ["gold"]},
    ]
    return await two_provider_proxy(make_proxy, pair, upstream, providers=providers, upstreams=upstreams)


async def authorize_query(proxy: RunningProxy, query: str) -> tuple[int, dict[str, list[str]]]:
    async with new_browser() as browser:
        async with browser.get(f"{proxy.url}/oauth/start?{query}", allow_redirects=False) as r:
            location = r.headers.get("Location", "")
            return r.status, parse_qs(urlsplit(location).query)


async def test_the_sign_in_page_lists_every_provider(proxy: RunningProxy) -> None:
    async with new_browser() as browser:
        for path in ("/oauth/sign_in?rd=/x", "/oauth/start?rd=/x", "/x"):
            page = await navigate(browser, proxy.url + path)
            assert page.status == 200, path
            assert "Sign in with Provider A" in page.text and "Sign in with Provider B" in page.text
            assert "provider=a" in page.text and "provider=b" in page.text


@pytest.mark.parametrize("query", ["provider=nope", "provider=a&provider=b", "provider="])
async def test_an_unknown_provider_is_400(proxy: RunningProxy, query: str) -> None:
    status, _ = await authorize_query(proxy, query)
    assert status == 400


async def test_fixed_and_passed_through_params_reach_the_provider(proxy: RunningProxy) -> None:
    hint = quote("ann@example.test")
    status, q = await authorize_query(proxy, f"provider=a&login_hint={hint}&prompt=login&ui_locales=de")
    assert status == 302
    assert (
        q["kc_idp_hint"] == ["corp"] and q["login_hint"] == ["ann@example.test"] and q["prompt"] == ["login"]
    )
    assert "ui_locales" not in q  # not on the allow-list: ignored
    status, q = await authorize_query(proxy, "provider=b&login_hint=x")
    assert status == 302 and "login_hint" not in q and "kc_idp_hint" not in q  # A's settings only


async def sign_in(proxy: RunningProxy, provider: str) -> aiohttp.ClientSession:
    browser = new_browser()
    page = await navigate(browser, f"{proxy.url}/oauth/start?rd=/oauth/userinfo&provider={provider}")
    assert page.status == 200, page.text[:300]
    return browser


async def test_a_prefix_restricted_to_a_provider(proxy: RunningProxy) -> None:
    async with await sign_in(proxy, "a") as at_a, await sign_in(proxy, "b") as at_b:
        assert (await navigate(at_a, proxy.url + "/b-only/x")).status == 403
        assert (await navigate(at_b, proxy.url + "/b-only/x")).status == 200
        assert (await navigate(at_a, proxy.url + "/x")).status == 200


async def test_step_up_sends_the_browser_back_for_the_acr(proxy: RunningProxy, pair: Pair) -> None:
    pair.a.honour_acr = True
    async with await sign_in(proxy, "a") as browser:
        async with browser.get(proxy.url + "/gold/x", allow_redirects=False) as r:
            assert r.status == 302
            assert r.headers["Location"] == "/oauth/start?rd=%2Fgold%2Fx&provider=a&acr_values=gold"
        async with browser.get(proxy.url + "/gold/x", headers={"Accept": "application/json"}) as r:
            assert r.status == 401 and (await r.json())["error"] == "step_up_required"
        page = await navigate(browser, proxy.url + "/gold/x")
        assert page.status == 200 and page.url.endswith("/gold/x")
        assert pair.a.codes == {} and any(True for _ in pair.a.token_requests)
        async with browser.get(proxy.url + "/oauth/userinfo") as r:
            assert r.status == 200


async def test_step_up_the_provider_does_not_deliver_is_403_not_a_loop(
    proxy: RunningProxy, pair: Pair
) -> None:
    async with await sign_in(proxy, "a") as browser:
        page = await navigate(browser, proxy.url + "/gold/x")
    assert page.status == 403 and "Stronger sign-in required" in page.text
    assert len(pair.a.token_requests) == 2  # the sign-in and one step-up, no more


async def test_a_bearer_token_short_of_the_acr_is_told_so(
    make_proxy: ProxyFactory, pair: Pair, upstream: str
) -> None:
    upstreams = [{"prefix": "/", "url": upstream, "acr": ["gold"]}]
    proxy = await two_provider_proxy(
        make_proxy, pair, upstream, upstreams=upstreams, api={"accept_bearer": True}
    )
    async with aiohttp.ClientSession() as client:
        for acr, status in (("silver", 401), ("gold", 200)):
            token = pair.a.access_token(acr=acr)
            async with client.get(proxy.url + "/x", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == status
                if status == 401:
                    assert 'error="insufficient_user_authentication"' in r.headers["WWW-Authenticate"]
                    assert 'acr_values="gold"' in r.headers["WWW-Authenticate"]


async def test_auth_request_narrows_by_provider(proxy: RunningProxy) -> None:
    async with await sign_in(proxy, "a") as at_a:
        for query, status in (
            ("providers=a", 202),
            ("providers=b", 403),
            ("providers=b,%20a", 202),
            ("", 202),
        ):
            async with at_a.get(f"{proxy.url}/oauth/auth?{query}") as r:
                assert r.status == status, query
