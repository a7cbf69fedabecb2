"""Signing out somewhere else: in Keycloak's own account console. Keycloak then calls the proxy's
back-channel logout, and the app, open in another tab, asks for a login on its next request."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, expect

from proxy.keys import COOKIES, STORE
from tests.conftest import Keycloak, RunningProxy
from tests.e2e.conftest import Shot
from tests.support.keycloak_admin import backchannel_url, create_user, delete_user, user_sessions

pytestmark = [pytest.mark.keycloak, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session")
async def user(keycloak: Keycloak) -> AsyncIterator[str]:
    name = "frank-" + secrets.token_hex(3)
    user_id = await create_user(keycloak.url, keycloak.realm, name, f"{name}-password")
    yield name
    await delete_user(keycloak.url, keycloak.realm, user_id)


@pytest_asyncio.fixture(loop_scope="session")
async def backchannel_to(app_proxy: RunningProxy, keycloak: Keycloak) -> AsyncIterator[RunningProxy]:
    url = app_proxy.url + "/oauth/backchannel_logout"
    async with backchannel_url(keycloak.url, keycloak.realm, url):
        yield app_proxy


@pytest_asyncio.fixture(loop_scope="session")
async def context(chromium: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await chromium.new_context()
    yield ctx
    await ctx.close()


async def test_signing_out_of_the_account_console_ends_the_proxy_session(
    backchannel_to: RunningProxy, keycloak: Keycloak, context: BrowserContext, user: str, shot: Shot
) -> None:
    proxy = backchannel_to
    app = await context.new_page()
    await app.goto(proxy.url + "/")
    await app.locator("#username").fill(user)
    await app.locator("#password").fill(f"{user}-password")
    await app.locator("#kc-login").click()
    await expect(app.locator("h1")).to_have_text(f"Hello, {user}")
    await shot(app, "1-app")
    cookie = next(c["value"] for c in await context.cookies() if c.get("name") == "_auth_proxy")
    ticket = proxy.app[COOKIES].decode(cookie)
    assert ticket is not None and await proxy.app[STORE].load(ticket) is not None

    console = await context.new_page()
    await console.goto(f"{keycloak.issuer}/account")  # single sign-on: no login form
    account_menu = console.get_by_role("button", name=f"{user.capitalize()} Test")
    await expect(account_menu).to_be_visible(timeout=20_000)
    await shot(console, "2-account-console")
    await account_menu.click()
    await console.get_by_role("menuitem", name="Sign out").click()
    await expect(console.locator("#kc-form-login")).to_be_visible()
    await shot(console, "3-account-console-signed-out")

    assert await user_sessions(keycloak.url, keycloak.realm, user) == []
    assert await proxy.app[STORE].load(ticket, cached=False) is None  # Keycloak told the proxy
    await app.reload()
    await expect(app.locator("#kc-form-login")).to_be_visible()  # the app asks for a login again
    await shot(app, "4-app-login-again")
