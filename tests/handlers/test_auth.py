"""Login through /start and /callback, against the fake provider: the happy path once, then every
way it can fail. (The same flow against the real Keycloak is in tests/integration.)"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from proxy.keys import COOKIES, STORE
from tests.conftest import ProxyFactory, RunningProxy
from tests.support.browser import navigate, new_browser
from tests.support.fake_provider import FakeProvider
from tests.support.servers import free_port


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str) -> RunningProxy:
    return await make_proxy(issuer=fake_provider.issuer, upstream=upstream)


async def test_login_lands_on_the_page_asked_for_with_identity(proxy: RunningProxy) -> None:
    async with new_browser() as browser:
        page = await navigate(browser, proxy.url + "/app/page?x=1&y=%2F")
        assert page.status == 200
        seen = json.loads(page.text)
        assert seen["path_qs"] == "/app/page?x=1&y=%2F"
        headers = dict(seen["headers"])
        assert headers["X-Forwarded-User"] == "user1"
        assert headers["X-Forwarded-Email"] == "user1@example.test"
        assert headers["X-Forwarded-Groups"] == "staff,dev"
        cookies = {c.key: c for c in browser.cookie_jar}
        assert len(cookies["_auth_proxy"].value) < 200
        assert cookies["_auth_proxy"]["httponly"]
        assert "_auth_proxy" not in headers.get("Cookie", "")


async def test_start_uses_pkce_s256_state_and_nonce(proxy: RunningProxy) -> None:
    async with (
        new_browser() as browser,
        browser.get(proxy.url + "/oauth/start?rd=/x", allow_redirects=False) as r,
    ):
        assert r.status == 302
        q = parse_qs(urlsplit(r.headers["Location"]).query)
        assert q["code_challenge_method"] == ["S256"] and len(q["code_challenge"][0]) == 43
        assert len(q["state"][0]) >= 32 and len(q["nonce"][0]) >= 32
        assert q["redirect_uri"] == [proxy.url + "/oauth/callback"]
        assert r.headers["Cache-Control"] == "no-store"


async def test_replayed_callback_is_refused_and_creates_no_session(proxy: RunningProxy) -> None:
    async with new_browser() as browser:
        page = await navigate(browser, proxy.url + "/")
        callback = next(url for _, url in page.history if "/oauth/callback" in url)
        browser.cookie_jar.clear_domain("127.0.0.1")
        page = await navigate(browser, callback)
        assert page.status == 400
        assert "expired or was already used" in page.text
        assert "/oauth/start" in page.text  # a way to try again
        assert not any(c.key == "_auth_proxy" for c in browser.cookie_jar)


async def test_callback_from_another_browser_is_refused(
    proxy: RunningProxy, fake_provider: FakeProvider
) -> None:
    async with new_browser() as victim, new_browser() as attacker:
        async with attacker.get(proxy.url + "/oauth/start", allow_redirects=False) as r:
            auth_url = r.headers["Location"]
        async with attacker.get(auth_url, allow_redirects=False) as r:
            callback = r.headers["Location"]
        page = await navigate(victim, callback)  # login CSRF: the victim's browser lacks the binding
        assert page.status == 400 and "another browser" in page.text
        assert not any(c.key == "_auth_proxy" for c in victim.cookie_jar)


@pytest.mark.parametrize(
    "query, expect",
    [
        ("", "missing its code or state"),
        ("?code=abc", "missing its code or state"),
        ("?state=unknown&code=abc", "expired or was already used"),
        ("?error=access_denied&error_description=User+said+no&state=s", "User said no"),
    ],
)
async def test_bad_callbacks_get_a_readable_page(proxy: RunningProxy, query: str, expect: str) -> None:
    async with new_browser() as browser:
        page = await navigate(browser, proxy.url + "/oauth/callback" + query)
        assert page.status == 400
        assert expect in page.text and "Try again" in page.text
        assert "Traceback" not in page.text


@pytest.mark.parametrize(
    "mode, status",
    [
        ("500", 503),
        ("garbage", 503),
        ("no_id_token", 503),
        ("invalid_grant", 400),
        ("bad_signature", 401),
        ("wrong_nonce", 401),
        ("wrong_aud", 401),
        ("expired", 401),
    ],
)
async def test_provider_failures_at_callback(
    proxy: RunningProxy, fake_provider: FakeProvider, mode: str, status: int
) -> None:
    fake_provider.token_mode = mode
    async with new_browser() as browser:
        page = await navigate(browser, proxy.url + "/")
        assert page.status == status
        assert "Try again" in page.text and "Traceback" not in page.text
        assert not any(c.key == "_auth_proxy" for c in browser.cookie_jar)


async def test_new_signing_key_is_fetched_once(proxy: RunningProxy, fake_provider: FakeProvider) -> None:
    from joserfc.jwk import RSAKey

    async with new_browser() as browser:
        assert (await navigate(browser, proxy.url + "/")).status == 200
    before = fake_provider.jwks_requests
    fake_provider.key = RSAKey.generate_key(2048, parameters={"kid": "k2"})  # the provider rotates
    async with new_browser() as browser:
        assert (await navigate(browser, proxy.url + "/")).status == 200
    assert fake_provider.jwks_requests == before + 1


async def test_login_again_replaces_the_old_session(proxy: RunningProxy) -> None:
    async with new_browser() as browser:
        await navigate(browser, proxy.url + "/")
        codec, store = proxy.app[COOKIES], proxy.app[STORE]
        first = codec.decode(next(c.value for c in browser.cookie_jar if c.key == "_auth_proxy"))
        assert first is not None and await store.load(first) is not None
        await navigate(browser, proxy.url + "/oauth/start?rd=/again")
        second = codec.decode(next(c.value for c in browser.cookie_jar if c.key == "_auth_proxy"))
        assert second is not None and second.id != first.id
        assert await store.load(first) is None  # no fixation: the old id is dead
        assert await store.load(second) is not None


async def test_two_tabs_can_log_in_at_once(proxy: RunningProxy) -> None:
    async with new_browser() as browser:
        urls = []
        for rd in ("/tab1", "/tab2"):
            async with browser.get(proxy.url + f"/oauth/start?rd={rd}", allow_redirects=False) as r:
                urls.append(r.headers["Location"])
        for url, rd in zip(urls, ("/tab1", "/tab2"), strict=True):
            page = await navigate(browser, url)
            assert page.status == 200 and json.loads(page.text)["path_qs"] == rd


@pytest.mark.parametrize("rd", ["//evil.example", "https://evil.example/", "/\\evil.example", "javascript:x"])
async def test_unsafe_rd_returns_home(proxy: RunningProxy, rd: str) -> None:
    async with new_browser() as browser:
        page = await navigate(browser, proxy.url + "/oauth/start?rd=" + rd)
        assert page.url == proxy.url + "/"


async def test_api_clients_get_401_json_and_browsers_a_redirect(proxy: RunningProxy) -> None:
    async with new_browser() as browser:
        async with browser.get(proxy.url + "/api", headers={"Accept": "application/json"}) as r:
            assert r.status == 401 and (await r.json())["error"] == "unauthorized"
        xhr = {"Accept": "text/html", "X-Requested-With": "XMLHttpRequest"}
        async with browser.get(proxy.url + "/api", headers=xhr, allow_redirects=False) as r:
            assert r.status == 401
        async with browser.post(proxy.url + "/form", data=b"x", allow_redirects=False) as r:
            assert r.status == 401  # a redirect would lose the body
        async with browser.get(proxy.url + "/page?q=1", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/oauth/start?rd=%2Fpage%3Fq%3D1"


async def test_provider_down_at_start_up(make_proxy: ProxyFactory, upstream: str) -> None:
    proxy = await make_proxy(
        issuer=f"http://127.0.0.1:{free_port()}/realms/x", upstream=upstream, wait_discovery=False
    )
    async with new_browser() as browser:
        async with browser.get(proxy.url + "/ready") as r:
            assert r.status == 503 and (await r.json())["provider"] != "ok"
        page = await navigate(browser, proxy.url + "/")
        assert page.status == 503 and "could not be reached" in page.text
        async with browser.get(proxy.url + "/ping") as r:
            assert r.status == 200
