"""A real browser (Debian's headless Chromium, driven by Playwright) against the real Keycloak and Redis,
with ``demo/sample_app.py`` behind the proxy: sign in on Keycloak's own login page, see the identity
headers, press the app's "Sign out" button, and stay signed out, the way a person would.

Where the sign-out ends: the app's button asks Keycloak to send the browser back to the proxy's own
``/oauth/signed_out`` page, which needs no session; opening the app again then shows Keycloak's login
form, because Keycloak's session ended too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Locator, Page, Response, expect

from tests.conftest import Keycloak, RunningProxy
from tests.e2e.conftest import Shot
from tests.support.keycloak_admin import logout_user, user_sessions

pytestmark = [pytest.mark.keycloak, pytest.mark.asyncio(loop_scope="session")]

COOKIE = "_auth_proxy"
KEYCLOAK_SSO_COOKIE = "KEYCLOAK_IDENTITY"


@pytest_asyncio.fixture(loop_scope="session")
async def context(chromium: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (cookies, storage) per test; the Chromium process is shared."""
    ctx = await chromium.new_context()
    yield ctx
    await ctx.close()


async def cookie_names(context: BrowserContext) -> set[str]:
    return {c.get("name", "") for c in await context.cookies()}


class Navigations:
    """The top-level navigations of a page as ``(method, status, URL without query)``, redirects too."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.responses: list[Response] = []
        page.on("response", self._seen)

    def _seen(self, response: Response) -> None:
        if response.request.is_navigation_request() and response.frame == self.page.main_frame:
            self.responses.append(response)

    def steps(self) -> list[tuple[str, int, str]]:
        return [(r.request.method, r.status, r.url.partition("?")[0]) for r in self.responses]

    def stop(self) -> None:
        self.page.remove_listener("response", self._seen)


async def expect_keycloak_login(page: Page, issuer: str) -> None:
    """Keycloak's own login form, on Keycloak (not a page of the proxy or the app)."""
    await expect(page.locator("form#kc-form-login")).to_be_visible()
    assert page.url.startswith(issuer + "/"), page.url


async def sign_in(page: Page, proxy: RunningProxy, user: str, shot: Shot | None = None) -> None:
    """Open the app, meet Keycloak's login form, sign in, and land on the app as ``user``."""
    await page.goto(proxy.url + "/")
    await expect_keycloak_login(page, proxy.settings.provider.issuer_url)
    if shot:
        await shot(page, "1-keycloak-login")
    await page.locator("#username").fill(user)
    await page.locator("#password").fill(f"{user}-password")
    await page.locator("#kc-login").click()
    await expect(page).to_have_url(proxy.url + "/")
    await expect(page.locator("h1")).to_have_text(f"Hello, {user}")


def header_cell(page: Page, name: str) -> Locator:
    """The value cell of the sample app's row for header ``name``."""
    return page.locator("tr", has=page.locator("td", has_text=name)).locator("td").nth(1)


def sign_out_steps(proxy: RunningProxy, keycloak: Keycloak, *, form: bool) -> list[tuple[str, int, str]]:
    """What the browser goes through after pressing "Sign out" (``form``: the POST-form variant)."""
    oidc = keycloak.issuer + "/protocol/openid-connect"
    return [
        ("POST", 200 if form else 302, proxy.url + "/oauth/sign_out"),  # the app's button
        ("POST" if form else "GET", 302, oidc + "/logout"),  # Keycloak ends its session…
        ("GET", 200, proxy.url + "/oauth/signed_out"),  # …and sends the browser back to the proxy's page
    ]


async def sign_out(page: Page, proxy: RunningProxy, keycloak: Keycloak) -> Navigations:
    """Press the sample app's button (a POST to /oauth/sign_out?rd=/oauth/signed_out) and follow it
    through to the proxy's "Signed out" page."""
    navigations = Navigations(page)
    await page.get_by_role("button", name="Sign out").click()
    await expect_signed_out_page(page, proxy)
    navigations.stop()
    return navigations


async def expect_signed_out_page(page: Page, proxy: RunningProxy) -> None:
    await expect(page.locator("h1")).to_have_text("Signed out")
    assert page.url == proxy.url + "/oauth/signed_out", page.url


async def assert_signed_out(context: BrowserContext, keycloak: Keycloak, user: str) -> None:
    """Both sessions really ended: Keycloak has none for the user, and the browser has neither cookie."""
    assert await user_sessions(keycloak.url, keycloak.realm, user) == []
    assert not {COOKIE, KEYCLOAK_SSO_COOKIE} & await cookie_names(context)


async def test_sign_in_and_sign_out(
    app_proxy: RunningProxy, keycloak: Keycloak, context: BrowserContext, shot: Shot
) -> None:
    await logout_user(keycloak.url, keycloak.realm, "alice")
    page = await context.new_page()

    await sign_in(page, app_proxy, "alice", shot)
    await expect(header_cell(page, "X-Forwarded-Email")).to_have_text("alice@example.test")
    await expect(header_cell(page, "X-Forwarded-User")).to_have_text("alice")
    await shot(page, "2-app-signed-in")
    assert len(await user_sessions(keycloak.url, keycloak.realm, "alice")) == 1
    # Keycloak's SSO cookie really is in the browser, so being signed straight back in is possible:
    assert {COOKIE, KEYCLOAK_SSO_COOKIE} <= await cookie_names(context)

    navigations = await sign_out(page, app_proxy, keycloak)
    assert navigations.steps() == sign_out_steps(app_proxy, keycloak, form=False)
    await shot(page, "3-signed-out-page")
    await assert_signed_out(context, keycloak, "alice")

    await page.goto(app_proxy.url + "/")
    await expect_keycloak_login(page, keycloak.issuer)  # still not signed straight back in
    await shot(page, "4-login-again")


async def test_without_sign_out_keycloak_signs_you_straight_back_in(
    app_proxy: RunningProxy, keycloak: Keycloak, context: BrowserContext, shot: Shot
) -> None:
    """The control for the test above: losing only the proxy's cookie is no sign-out at all."""
    await logout_user(keycloak.url, keycloak.realm, "alice")
    page = await context.new_page()
    await sign_in(page, app_proxy, "alice")
    await context.clear_cookies(name=COOKIE)

    navigations = Navigations(page)
    await page.goto(app_proxy.url + "/")
    await expect(page.locator("h1")).to_have_text("Hello, alice")
    assert page.url == app_proxy.url + "/"
    assert [status for _, status, _ in navigations.steps()] == [302, 302, 302, 302, 200]  # via Keycloak
    await shot(page, "1-back-in-without-login-form")
    await logout_user(keycloak.url, keycloak.realm, "alice")


async def test_sign_out_in_one_tab_signs_out_the_other(
    app_proxy: RunningProxy, keycloak: Keycloak, context: BrowserContext, shot: Shot
) -> None:
    await logout_user(keycloak.url, keycloak.realm, "bob")
    tab1 = await context.new_page()
    await sign_in(tab1, app_proxy, "bob")
    await shot(tab1, "1-tab1-signed-in")

    tab2 = await context.new_page()
    await tab2.goto(app_proxy.url + "/")
    await expect(tab2.locator("h1")).to_have_text("Hello, bob")  # the same session, no second login
    await shot(tab2, "2-tab2-signed-in")
    assert len(await user_sessions(keycloak.url, keycloak.realm, "bob")) == 1

    navigations = await sign_out(tab1, app_proxy, keycloak)
    assert navigations.steps() == sign_out_steps(app_proxy, keycloak, form=False)
    await shot(tab1, "3-tab1-signed-out-page")
    await assert_signed_out(context, keycloak, "bob")

    await expect(tab2.locator("h1")).to_have_text("Hello, bob")  # a stale page, until it navigates
    await tab2.reload()
    await expect_keycloak_login(tab2, keycloak.issuer)
    await shot(tab2, "4-tab2-login-again")


async def test_big_token_sign_out_posts_a_form_to_keycloak(
    app_proxy: RunningProxy, keycloak: Keycloak, context: BrowserContext, shot: Shot
) -> None:
    """300 groups, a >20 kB ID token: the end-session URL would be too long, so the proxy answers with a
    page whose form POSTs the parameters to Keycloak by itself (a nonce'd script under a strict CSP)."""
    await logout_user(keycloak.url, keycloak.realm, "bigtoken")
    page = await context.new_page()
    await sign_in(page, app_proxy, "bigtoken")
    await expect(header_cell(page, "X-Forwarded-Groups-Truncated")).to_have_text("true")
    await shot(page, "1-app-signed-in")
    assert len(await user_sessions(keycloak.url, keycloak.realm, "bigtoken")) == 1

    console: list[ConsoleMessage] = []
    violations: list[dict[str, Any]] = []
    page.on("console", lambda message: console.append(message))
    await context.expose_binding("reportCspViolation", lambda _source, v: violations.append(v))
    await context.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => window.reportCspViolation("
        "{page: location.href, directive: e.violatedDirective, blocked: e.blockedURI}));"
    )

    navigations = await sign_out(page, app_proxy, keycloak)
    assert navigations.steps() == sign_out_steps(app_proxy, keycloak, form=True)
    form_page, to_keycloak = navigations.responses[0], navigations.responses[1]
    # (its body is gone once the browser has moved on; test_..._without_javascript looks at the form)
    assert (await form_page.header_value("content-type") or "").startswith("text/html")
    policy = await form_page.header_value("content-security-policy") or ""
    assert "script-src 'nonce-" in policy and "form-action" in policy, policy
    # the page's own script submitted the form (nobody clicked): a POST, the parameters in the body
    body = to_keycloak.request.post_data or ""
    assert "id_token_hint=" in body and len(body) > 20000 and "?" not in to_keycloak.url
    await shot(page, "2-signed-out-page")
    await assert_signed_out(context, keycloak, "bigtoken")

    proxy_csp = [
        f"{m.type}: {m.text}"
        for m in console
        if m.location.get("url", "").startswith(app_proxy.url) and "Content Security Policy" in m.text
    ]
    proxy_violations = [v for v in violations if str(v.get("page", "")).startswith(app_proxy.url)]
    assert proxy_csp == [] and proxy_violations == [], (proxy_csp, proxy_violations)

    await page.goto(app_proxy.url + "/")
    await expect_keycloak_login(page, keycloak.issuer)
    await shot(page, "3-login-again")


async def test_big_token_sign_out_without_javascript(
    app_proxy: RunningProxy, keycloak: Keycloak, chromium: Browser, shot: Shot
) -> None:
    """The same POST form with scripts off: the person presses "Continue signing out" themselves."""
    await logout_user(keycloak.url, keycloak.realm, "bigtoken")
    context = await chromium.new_context(java_script_enabled=False)
    try:
        page = await context.new_page()
        await sign_in(page, app_proxy, "bigtoken", shot)  # Keycloak's login form works without scripts
        await shot(page, "2-app-signed-in")

        await page.get_by_role("button", name="Sign out").click()
        await expect(page).to_have_url(app_proxy.url + "/oauth/sign_out?rd=/oauth/signed_out")
        button = page.locator("form#end-session").get_by_role("button", name="Continue signing out")
        await expect(button).to_be_visible()
        await shot(page, "3-continue-signing-out")
        assert COOKIE not in await cookie_names(context)  # our session is already gone…
        assert len(await user_sessions(keycloak.url, keycloak.realm, "bigtoken")) == 1  # …Keycloak's not yet

        navigations = Navigations(page)
        await button.click()
        await expect_signed_out_page(page, app_proxy)
        assert navigations.steps() == sign_out_steps(app_proxy, keycloak, form=True)[1:]
        await shot(page, "4-signed-out-page")
        await assert_signed_out(context, keycloak, "bigtoken")

        await page.goto(app_proxy.url + "/")
        await expect_keycloak_login(page, keycloak.issuer)
        await shot(page, "5-login-again")
    finally:
        await context.close()


async def test_sign_out_lands_on_the_signed_out_page_then_sign_in_asks_again(
    app_proxy: RunningProxy, keycloak: Keycloak, context: BrowserContext, shot: Shot
) -> None:
    await logout_user(keycloak.url, keycloak.realm, "alice")
    page = await context.new_page()
    await sign_in(page, app_proxy, "alice")
    await sign_out(page, app_proxy, keycloak)
    await shot(page, "1-signed-out-page")
    await page.get_by_role("link", name="Sign in again").click()
    await expect_keycloak_login(page, keycloak.issuer)  # a login form, not straight back in
    await shot(page, "2-login-form")
