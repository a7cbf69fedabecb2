"""After sign-out, the browser's back button must not show the signed-in page again: with
headers.no_store the proxy's answers to signed-in requests are never kept in the browser's cache."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, expect

from tests.conftest import Keycloak, ProxyFactory, RunningProxy
from tests.e2e.conftest import Shot
from tests.support.keycloak_admin import logout_user

pytestmark = [pytest.mark.keycloak, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session")
async def no_store_proxy(
    make_proxy: ProxyFactory, keycloak: Keycloak, sample_app: str, redis_url: str
) -> RunningProxy:
    return await make_proxy(
        issuer=keycloak.issuer, upstream=sample_app, session={"store": "redis", "redis_url": redis_url},
        headers={"no_store": True},
    )  # fmt: skip


@pytest_asyncio.fixture(loop_scope="session")
async def context(chromium: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await chromium.new_context()
    yield ctx
    await ctx.close()


async def test_back_button_after_sign_out_shows_no_protected_content(
    no_store_proxy: RunningProxy, keycloak: Keycloak, context: BrowserContext, shot: Shot
) -> None:
    await logout_user(keycloak.url, keycloak.realm, "alice")
    page = await context.new_page()
    await page.goto(no_store_proxy.url + "/")
    await page.locator("#username").fill("alice")
    await page.locator("#password").fill("alice-password")
    await page.locator("#kc-login").click()
    await expect(page.locator("h1")).to_have_text("Hello, alice")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("h1")).to_have_text("Signed out")
    await page.go_back()
    await page.wait_for_load_state()
    await shot(page, "after-back")
    assert await page.get_by_text("Hello, alice").count() == 0
    await expect(page.locator("#kc-form-login")).to_be_visible()  # refetched: sign in again
