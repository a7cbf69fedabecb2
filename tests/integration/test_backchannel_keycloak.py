"""A logout anywhere ends the sessions here: Keycloak's back-channel logout, for real."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest

from proxy.keys import COOKIES, STORE
from tests.conftest import Keycloak, ProxyFactory, RunningProxy
from tests.support.browser import navigate, new_browser, submit_login
from tests.support.keycloak_admin import admin_token, backchannel_url, logout_user

pytestmark = pytest.mark.keycloak


@pytest.fixture
async def proxy(
    make_proxy: ProxyFactory, keycloak: Keycloak, upstream: str, redis_url: str
) -> AsyncIterator[RunningProxy]:
    running = await make_proxy(
        issuer=keycloak.issuer, upstream=upstream, session={"store": "redis", "redis_url": redis_url}
    )
    url = running.url + "/oauth/backchannel_logout"
    async with backchannel_url(keycloak.url, keycloak.realm, url):
        yield running


@pytest.fixture
async def browser(keycloak: Keycloak) -> AsyncIterator[aiohttp.ClientSession]:
    async with new_browser(keycloak.url) as b:
        yield b


async def sign_in(browser: aiohttp.ClientSession, proxy: RunningProxy, user: str) -> None:
    page = await submit_login(browser, await navigate(browser, proxy.url + "/app"), user, f"{user}-password")
    assert page.status == 200 and json.loads(page.text)["path_qs"] == "/app"


async def gone_within(proxy: RunningProxy, browser: aiohttp.ClientSession, seconds: float) -> float:
    """How long until the browser's session is gone from the store (fails after ``seconds``)."""
    ticket = proxy.app[COOKIES].decode(next(c.value for c in browser.cookie_jar if c.key == "_auth_proxy"))
    assert ticket is not None
    started = time.monotonic()
    while await proxy.app[STORE].load(ticket) is not None:
        assert time.monotonic() - started < seconds, f"session still alive after {seconds}s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_admin_ending_the_users_sessions(
    proxy: RunningProxy, browser: aiohttp.ClientSession, keycloak: Keycloak
) -> None:
    await logout_user(keycloak.url, keycloak.realm, "alice")
    await sign_in(browser, proxy, "alice")
    await logout_user(keycloak.url, keycloak.realm, "alice")  # POST /admin/realms/demo/users/{id}/logout
    took = await gone_within(proxy, browser, 1.0)
    print(f"session gone {took * 1000:.0f} ms after the logout call returned")
    page = await navigate(browser, proxy.url + "/app")
    assert page.is_keycloak_login


async def test_signing_out_of_another_client_of_the_realm(
    proxy: RunningProxy, browser: aiohttp.ClientSession, keycloak: Keycloak
) -> None:
    await logout_user(keycloak.url, keycloak.realm, "bob")
    await sign_in(browser, proxy, "bob")
    # The same browser opens another app of the realm: single sign-on, no login form.
    endpoint = f"{keycloak.issuer}/protocol/openid-connect"
    redirect_uri = "http://127.0.0.1:9/other-app/callback"
    query = urlencode({"client_id": "other-app", "response_type": "code", "scope": "openid",
                       "redirect_uri": redirect_uri, "state": "s", "nonce": "n"})  # fmt: skip
    async with browser.get(f"{endpoint}/auth?{query}", allow_redirects=False) as r:
        assert r.status == 302, "expected single sign-on into other-app"
        code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": "other-app", "client_secret": "other-app-secret"}  # fmt: skip
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{endpoint}/token", data=form) as r:
            assert r.status == 200, await r.text()
            refresh_token = (await r.json())["refresh_token"]
        # The other app signs the user out (server-side, as Keycloak's adapters do).
        form = {"client_id": "other-app", "client_secret": "other-app-secret", "refresh_token": refresh_token}
        async with http.post(f"{endpoint}/logout", data=form) as r:
            assert r.status == 204, await r.text()
    took = await gone_within(proxy, browser, 1.0)
    print(f"session gone {took * 1000:.0f} ms after the logout call returned")
    page = await navigate(browser, proxy.url + "/app")
    assert page.is_keycloak_login


async def test_keycloak_logout_token_is_accepted_once(proxy: RunningProxy, keycloak: Keycloak) -> None:
    """Keycloak's admin token is not a logout token: posting it is refused (sanity of the receiver)."""
    async with aiohttp.ClientSession() as http:
        token = await admin_token(keycloak.url)
        async with http.post(proxy.url + "/oauth/backchannel_logout", data={"logout_token": token}) as r:
            assert r.status == 400
