"""What a user does, against the real Keycloak and the real Redis: sign in through Keycloak's own
login form, reach the app with identity headers, sign out and stay signed out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from redis.asyncio import Redis

from proxy.keys import COOKIES, STORE
from proxy.sessions.base import Session
from tests.conftest import Keycloak, ProxyFactory, RunningProxy
from tests.support.browser import navigate, new_browser, submit_form, submit_login
from tests.support.keycloak_admin import logout_user, refresh, user_sessions

pytestmark = pytest.mark.keycloak


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, keycloak: Keycloak, upstream: str, redis_url: str) -> RunningProxy:
    return await make_proxy(
        issuer=keycloak.issuer, upstream=upstream, session={"store": "redis", "redis_url": redis_url}
    )


@pytest.fixture
async def browser(keycloak: Keycloak) -> AsyncIterator[aiohttp.ClientSession]:
    async with new_browser(keycloak.url) as b:
        yield b


async def sign_in(
    browser: aiohttp.ClientSession, proxy: RunningProxy, user: str, path: str = "/hello"
) -> dict:
    page = await navigate(browser, proxy.url + path)
    assert page.is_keycloak_login, f"expected Keycloak's login form, got {page.status} at {page.url}"
    page = await submit_login(browser, page, user, f"{user}-password")
    assert page.status == 200 and page.url == proxy.url + path, page.text[:500]
    return json.loads(page.text)


async def stored_session(proxy: RunningProxy, browser: aiohttp.ClientSession) -> tuple[str, Session]:
    ticket = proxy.app[COOKIES].decode(next(c.value for c in browser.cookie_jar if c.key == "_auth_proxy"))
    assert ticket is not None
    session = await proxy.app[STORE].load(ticket)
    assert session is not None
    return ticket.key, session


async def test_sign_in_through_keycloak_reaches_the_app_as_the_user(
    proxy: RunningProxy, browser: aiohttp.ClientSession, redis_client: Redis
) -> None:
    seen = await sign_in(browser, proxy, "alice", "/hello?x=1")
    headers = dict(seen["headers"])
    assert headers["X-Forwarded-User"] == "alice"
    assert headers["X-Forwarded-Email"] == "alice@example.test"
    assert headers["X-Forwarded-Preferred-Username"] == "alice"
    assert "engineering" in headers["X-Forwarded-Groups"].split(",")
    cookie = next(c for c in browser.cookie_jar if c.key == "_auth_proxy")
    assert len(cookie.value) < 200
    key, session = await stored_session(proxy, browser)
    assert session.sid and session.refresh_token
    blob = await redis_client.get(key)
    assert blob is not None and session.id_token.encode() not in blob and b"alice" not in blob
    assert 0 < await redis_client.ttl(key) <= 8 * 3600
    async with browser.get(proxy.url + "/oauth/userinfo") as r:
        assert (await r.json())["email"] == "alice@example.test"


async def test_sign_out_ends_the_keycloak_session_too(
    proxy: RunningProxy, browser: aiohttp.ClientSession, keycloak: Keycloak, redis_client: Redis
) -> None:
    await logout_user(keycloak.url, keycloak.realm, "bob")
    await sign_in(browser, proxy, "bob")
    key, session = await stored_session(proxy, browser)
    assert len(await user_sessions(keycloak.url, keycloak.realm, "bob")) == 1
    assert session.refresh_token is not None

    page = await navigate(browser, proxy.url + "/oauth/sign_out?rd=/hello")
    # Keycloak ended its session and sent the browser back to /hello, which asks for a login again:
    assert page.is_keycloak_login, f"signed straight back in? {page.status} {page.url}"
    assert await redis_client.exists(key) == 0
    status, body = await refresh(keycloak.issuer, session.refresh_token)
    assert status == 400 and body["error"] == "invalid_grant"
    assert await user_sessions(keycloak.url, keycloak.realm, "bob") == []


async def test_user_with_hundreds_of_groups(
    proxy: RunningProxy, browser: aiohttp.ClientSession, keycloak: Keycloak, redis_client: Redis
) -> None:
    """The users whose cookies broke nginx: a 20 kB ID token, a small cookie, and a sign-out that works."""
    await logout_user(keycloak.url, keycloak.realm, "bigtoken")
    seen = await sign_in(browser, proxy, "bigtoken")
    key, session = await stored_session(proxy, browser)
    assert len(session.id_token) > 20000
    assert len(next(c for c in browser.cookie_jar if c.key == "_auth_proxy").value) < 200
    headers = dict(seen["headers"])
    assert headers["X-Forwarded-Groups-Truncated"] == "true" and len(headers["X-Forwarded-Groups"]) <= 4096

    page = await navigate(browser, proxy.url + "/oauth/sign_out?rd=/hello")
    assert page.status == 200 and 'id="end-session"' in page.text  # too long for a URL: a POST form
    page = await submit_form(browser, page, "end-session")
    assert page.is_keycloak_login, f"signed straight back in? {page.status} {page.url}"
    assert await redis_client.exists(key) == 0
    assert session.refresh_token is not None
    status, body = await refresh(keycloak.issuer, session.refresh_token)
    assert status == 400 and body["error"] == "invalid_grant"


@pytest.mark.parametrize("mode", ["backend", "redirect+revoke"])
async def test_server_side_logout_modes(
    make_proxy: ProxyFactory,
    keycloak: Keycloak,
    upstream: str,
    redis_url: str,
    browser: aiohttp.ClientSession,
    mode: str,
) -> None:
    logout = {"mode": "backend"} if mode == "backend" else {"revoke_tokens": True}
    proxy = await make_proxy(
        issuer=keycloak.issuer,
        upstream=upstream,
        session={"store": "redis", "redis_url": redis_url},
        logout=logout,
    )
    await logout_user(keycloak.url, keycloak.realm, "bob")
    await sign_in(browser, proxy, "bob")
    _, session = await stored_session(proxy, browser)
    assert session.refresh_token is not None
    async with browser.get(proxy.url + "/oauth/sign_out?rd=/hello", allow_redirects=False) as r:
        location = r.headers["Location"]
    if mode == "backend":
        assert location == proxy.url + "/hello"  # straight back: Keycloak was told by the proxy itself
        assert await user_sessions(keycloak.url, keycloak.realm, "bob") == []
    status, body = await refresh(keycloak.issuer, session.refresh_token)
    assert status == 400 and body["error"] == "invalid_grant"
    page = await navigate(browser, location)
    assert page.is_keycloak_login
