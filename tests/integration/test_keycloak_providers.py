"""Two Keycloak realms as two providers behind one proxy: ``demo`` and ``demo2`` (each with its own
alice), and step-up sign-in with ``demo2``'s "acr to LoA mapping" (silver = 1, gold = 2) and its
browser flow with conditional levels (level 2 asks for the password again).

``demo2`` comes from config/keycloak-realm-demo2.json: scripts/keycloak.sh imports it at start;
on a Keycloak that is already running (``KEYCLOAK_URL``) the fixture creates it through the admin
API when it is missing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from proxy.keys import COOKIES, STORE
from proxy.sessions.base import Session
from tests.conftest import Keycloak, ProxyFactory, RunningProxy
from tests.support.browser import Page, navigate, new_browser, submit_login
from tests.support.keycloak_admin import logout_user, user_sessions
from tests.support.keycloak_realms import demo2_realm  # noqa: F401  (the fixture "demo2")

pytestmark = pytest.mark.keycloak


@pytest.fixture
async def proxy(
    make_proxy: ProxyFactory,
    keycloak: Keycloak,
    demo2: Keycloak,
    upstream: str,
    redis_url: str,
) -> RunningProxy:
    common = {"client_id": "proxy", "client_secret": "proxy-secret"}
    providers = [
        {"id": "staff", "display_name": "Staff", "issuer_url": keycloak.issuer, **common},
        {"id": "partners", "display_name": "Partners", "issuer_url": demo2.issuer, **common},
    ]
    upstreams = [
        {"prefix": "/", "url": upstream},
        {"prefix": "/staff", "url": upstream, "providers": ["staff"]},
        {"prefix": "/gold", "url": upstream, "acr": ["gold"]},
    ]
    return await make_proxy(
        issuer="unused", upstream=upstream, providers=providers, upstreams=upstreams,
        session={"store": "redis", "redis_url": redis_url},
    )  # fmt: skip


@pytest.fixture
async def clean(keycloak: Keycloak, demo2: Keycloak) -> AsyncIterator[None]:
    await logout_user(keycloak.url, "demo", "alice")
    await logout_user(keycloak.url, "demo2", "alice")
    yield


async def sign_in(browser: aiohttp.ClientSession, proxy: RunningProxy, provider: str) -> dict[str, Any]:
    page = await navigate(browser, proxy.url + "/hello")
    assert page.status == 200 and f"provider={provider}" in page.text  # the chooser
    page = await navigate(browser, f"{proxy.url}/oauth/start?rd=/hello&provider={provider}")
    page = await submit_login(browser, page, "alice", "alice-password")
    assert page.status == 200 and page.url == proxy.url + "/hello", page.text[:500]
    return dict(json.loads(page.text)["headers"])


async def stored(proxy: RunningProxy, browser: aiohttp.ClientSession) -> Session | None:
    cookie = next(c.value for c in browser.cookie_jar if c.key == "_auth_proxy")
    ticket = proxy.app[COOKIES].decode(cookie)
    assert ticket is not None
    return await proxy.app[STORE].load(ticket)


async def test_two_realms_two_users_each_signed_out_at_its_own_realm(
    proxy: RunningProxy, keycloak: Keycloak, clean: None
) -> None:
    async with new_browser(keycloak.url) as staff, new_browser(keycloak.url) as partner:
        staff_headers = await sign_in(staff, proxy, "staff")
        partner_headers = await sign_in(partner, proxy, "partners")
        assert staff_headers["X-Forwarded-Email"] == "alice@example.test"
        assert partner_headers["X-Forwarded-Email"] == "alice@partners.example.test"
        staff_session, partner_session = await stored(proxy, staff), await stored(proxy, partner)
        assert staff_session is not None and staff_session.provider == "staff"
        assert partner_session is not None and partner_session.provider == "partners"
        assert (await navigate(partner, proxy.url + "/staff/x")).status == 403
        assert (await navigate(staff, proxy.url + "/staff/x")).status == 200

        page = await navigate(partner, proxy.url + "/oauth/sign_out")
        assert page.status < 500
        assert page.history[1][1].startswith(f"{keycloak.url}/realms/demo2/protocol/openid-connect/logout")
        assert await user_sessions(keycloak.url, "demo2", "alice") == []
        assert len(await user_sessions(keycloak.url, "demo", "alice")) == 1
        assert await stored(proxy, staff) is not None


async def test_step_up_to_gold_asks_keycloak_for_the_password_again(
    proxy: RunningProxy, keycloak: Keycloak, clean: None
) -> None:
    async with new_browser(keycloak.url) as browser:
        await sign_in(browser, proxy, "partners")
        before = await stored(proxy, browser)
        assert before is not None and before.acr != "gold"
        page: Page = await navigate(browser, proxy.url + "/gold/x")
        assert page.is_keycloak_login, f"expected Keycloak's password form, got {page.status} at {page.url}"
        assert "acr_values=gold" in " ".join(url for _, url in page.history)
        _, action = page.form("kc-form-login")
        page = await navigate(browser, action, method="POST", data={"password": "alice-password"})
        assert page.status == 200 and page.url == proxy.url + "/gold/x", page.text[:500]
        after = await stored(proxy, browser)
        assert after is not None and after.acr == "gold" and after.acr_requested == "gold"
