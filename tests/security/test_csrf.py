"""Sign-out CSRF: a page of another site must not be able to sign a user out.

With ``logout.allow_get: false``, each of these leaves the user signed in:

  GET  /oauth/sign_out (a cross-site link or <img>)        → 200 "Sign out?" page, nothing ended
  GET  by an API client                                    → 403
  POST without a token (a cross-site form)                 → 403
  POST with an empty, wrong, truncated, padded, non-ASCII
       or lower-cased token                                → 403
  POST with another session's token                        → 403
  POST with the token in the query string                  → 403 (tokens don't go in URLs)
  POST with the token in a JSON body                       → 403 (only the form field or the header)
  POST with a 100 kB form                                  → 413

and these sign out: the form field ``csrf`` (urlencoded or multipart), the header ``X-CSRF-Token``,
the confirmation page's own button, the "Access denied" page's button, the demo app's button.
Without a (validly signed) session cookie there is nothing to protect: the redirect happens as
before. With the default ``allow_get: true`` a plain GET signs out: the documented trade-off.

Where apps get the token: ``X-Auth-Request-Csrf-Token`` on every proxied signed-in request (a copy
sent by the client is dropped), ``csrf_token`` in ``/oauth/userinfo``, and the demo app's form.
Login CSRF (the state bound to the browser) is tests/handlers/test_auth.py
::test_callback_from_another_browser_is_refused.
"""

from __future__ import annotations

import html
import importlib.util
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from proxy.keys import COOKIES
from tests.conftest import ROOT, ProxyFactory, RunningProxy
from tests.security.conftest import is_live
from tests.support.browser import navigate
from tests.support.fake_provider import FakeProvider
from tests.support.login import session_cookie, signed_in_browser

SIGN_OUT = "/oauth/sign_out?rd=/bye"


@pytest.fixture
async def strict(make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str) -> RunningProxy:
    return await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream, as_deployed=True, logout={"allow_get": False}
    )


@pytest.fixture
async def browser(strict: RunningProxy) -> AsyncIterator[aiohttp.ClientSession]:
    async with await signed_in_browser(strict.url) as b:
        yield b


def token_of(proxy: RunningProxy, browser: aiohttp.ClientSession) -> str:
    ticket = proxy.app[COOKIES].decode(session_cookie(browser))
    assert ticket is not None
    return proxy.app[COOKIES].csrf_token(ticket)


REFUSED_POSTS: dict[str, Any] = {
    "no token": lambda t: {"data": {"other": "x"}},
    "no body": lambda t: {},
    "empty token": lambda t: {"data": {"csrf": ""}},
    "wrong token": lambda t: {"data": {"csrf": "A" * 43}},
    "truncated token": lambda t: {"data": {"csrf": t[:-1]}},
    "padded token": lambda t: {"data": {"csrf": t + "="}},
    "upper-cased token": lambda t: {"data": {"csrf": t.upper()}},
    "non-ASCII token": lambda t: {"data": {"csrf": "é" * 43}},
    "token in the query": lambda t: {"params": {"csrf": t}},
    "token in a JSON body": lambda t: {"json": {"csrf": t}},
    "empty header": lambda t: {"headers": {"X-CSRF-Token": ""}},
    "wrong header": lambda t: {"headers": {"X-CSRF-Token": t[::-1]}},
}


@pytest.mark.parametrize("case", list(REFUSED_POSTS))
async def test_post_without_the_right_token_is_refused(
    strict: RunningProxy, browser: aiohttp.ClientSession, case: str
) -> None:
    kwargs = REFUSED_POSTS[case](token_of(strict, browser))
    async with browser.post(strict.url + SIGN_OUT, allow_redirects=False, **kwargs) as r:
        assert r.status == 403, await r.text()
        assert "Sign-out refused" in await r.text()
        assert "Set-Cookie" not in r.headers

    assert await is_live(strict, session_cookie(browser))


async def test_another_sessions_token_is_refused(
    strict: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    async with await signed_in_browser(strict.url) as other:
        async with browser.post(strict.url + SIGN_OUT, data={"csrf": token_of(strict, other)}) as r:
            assert r.status == 403

    assert await is_live(strict, session_cookie(browser))


async def test_cross_site_get_shows_a_confirmation_and_ends_nothing(
    strict: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    async with browser.get(strict.url + SIGN_OUT, allow_redirects=False) as r:
        assert r.status == 200
        assert r.headers["X-Frame-Options"] == "DENY"  # the button can't be clickjacked
        assert "Sign out?" in await r.text()

    assert await is_live(strict, session_cookie(browser))


async def test_api_client_get_is_refused(strict: RunningProxy, browser: aiohttp.ClientSession) -> None:
    async with browser.get(strict.url + SIGN_OUT, headers={"Accept": "application/json"}) as r:
        assert r.status == 403 and (await r.json())["error"] == "Sign-out refused"

    assert await is_live(strict, session_cookie(browser))


async def test_oversized_sign_out_form_is_413(strict: RunningProxy, browser: aiohttp.ClientSession) -> None:
    async with browser.post(strict.url + SIGN_OUT, data={"csrf": "x", "pad": "p" * 100_000}) as r:
        assert r.status == 413

    assert await is_live(strict, session_cookie(browser))


def multipart(token: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("csrf", token)
    form.add_field("file", b"x", filename="x.bin")  # forces multipart/form-data
    return form


ACCEPTED_POSTS: dict[str, Any] = {
    "form field": lambda t: {"data": {"csrf": t}},
    "multipart form field": lambda t: {"data": multipart(t)},
    "X-CSRF-Token header": lambda t: {"headers": {"X-CSRF-Token": t}},
    "header, JSON body": lambda t: {"headers": {"X-CSRF-Token": t}, "json": {}},
}


@pytest.mark.parametrize("case", list(ACCEPTED_POSTS))
async def test_post_with_the_token_signs_out(
    strict: RunningProxy, browser: aiohttp.ClientSession, fake_provider: FakeProvider, case: str
) -> None:
    cookie = session_cookie(browser)
    kwargs = ACCEPTED_POSTS[case](token_of(strict, browser))
    async with browser.post(strict.url + SIGN_OUT, allow_redirects=False, **kwargs) as r:
        assert r.status == 302 and r.headers["Location"].startswith(fake_provider.issuer + "/logout")

    assert not await is_live(strict, cookie)


async def test_the_confirmation_page_button_signs_out(
    strict: RunningProxy, browser: aiohttp.ClientSession, fake_provider: FakeProvider
) -> None:
    cookie = session_cookie(browser)
    page = await navigate(browser, strict.url + SIGN_OUT)
    # the provider's end-session endpoint is a POST-only fake: stop at its redirect
    method, action = page.form("sign-out")
    assert method == "POST" and action == strict.url + SIGN_OUT

    token = html.unescape(re.search(r'name="csrf" value="([^"]+)"', page.text)[1])  # type: ignore[index]
    async with browser.post(action, data={"csrf": token}, allow_redirects=False) as r:
        assert r.status == 302

    assert not await is_live(strict, cookie)


async def test_the_403_page_leads_to_the_confirmation(
    strict: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    async with browser.post(strict.url + SIGN_OUT) as r:
        assert r.status == 403
        assert f'href="{html.escape(SIGN_OUT)}"' in await r.text()


async def test_without_a_session_there_is_nothing_to_protect(strict: RunningProxy) -> None:
    async with aiohttp.ClientSession() as anon:
        async with anon.get(strict.url + SIGN_OUT, allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == strict.url + "/bye"
        async with anon.post(
            strict.url + SIGN_OUT, headers={"Cookie": "_auth_proxy=forged"}, allow_redirects=False
        ) as r:
            assert r.status == 302 and r.headers["Location"] == strict.url + "/bye"


async def test_rotated_secret_keeps_tokens_valid(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    old = "old-cookie-secret-0123456789abcdefghij"
    before = await make_proxy(issuer=fake_provider.issuer, upstream=upstream, cookie={"secret": old})
    async with await signed_in_browser(before.url) as browser:
        cookie, token = session_cookie(browser), token_of(before, browser)
        after = await make_proxy(
            issuer=fake_provider.issuer, upstream=upstream,
            cookie={"secret": ["new-cookie-secret-0123456789abcdefghij", old]}, logout={"allow_get": False},
        )  # fmt: skip
        ticket = after.app[COOKIES].decode(cookie)
        assert ticket is not None and after.app[COOKIES].csrf_token(ticket) != token  # new ones: new key
        assert after.app[COOKIES].csrf_valid(ticket, token)  # the page rendered before still works


# --- the default: GET signs out ------------------------------------------------------------


async def test_by_default_a_get_signs_out(proxy: RunningProxy) -> None:
    """logout.allow_get: true (the default, for plain "Sign out" links): a cross-site GET signs the
    user out. The trade-off is documented in README and config/proxy.example.yaml."""
    async with await signed_in_browser(proxy.url) as browser:
        cookie = session_cookie(browser)
        async with browser.get(proxy.url + SIGN_OUT, allow_redirects=False) as r:
            assert r.status == 302

        assert not await is_live(proxy, cookie)


# --- how apps get the token --------------------------------------------------------------------


async def test_upstream_gets_the_token_and_a_forged_copy_is_dropped(
    strict: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    async with browser.get(strict.url + "/app", headers={"X-Auth-Request-Csrf-Token": "forged"}) as r:
        seen = [v for k, v in (await r.json())["headers"] if k.lower() == "x-auth-request-csrf-token"]

    assert seen == [token_of(strict, browser)]


async def test_userinfo_carries_the_token(strict: RunningProxy, browser: aiohttp.ClientSession) -> None:
    async with browser.get(strict.url + "/oauth/userinfo") as r:
        assert (await r.json())["csrf_token"] == token_of(strict, browser)


def demo_app() -> web.Application:
    spec = importlib.util.spec_from_file_location("demo_sample_app", ROOT / "demo" / "sample_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app: web.Application = module.make_app()
    return app


async def test_the_demo_apps_sign_out_button_works_with_allow_get_false(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, aiohttp_server: Any
) -> None:
    demo = await aiohttp_server(demo_app(), host="127.0.0.1")
    proxy = await make_proxy(
        issuer=fake_provider.issuer, upstream=str(demo.make_url("")).rstrip("/"), logout={"allow_get": False}
    )
    async with await signed_in_browser(proxy.url) as browser:
        cookie = session_cookie(browser)
        page = await navigate(browser, proxy.url + "/")
        assert 'name="csrf" value="' + token_of(proxy, browser) in page.text
        status = await submit_form_no_follow(browser, page.text, proxy.url)

        assert status == 302
        assert not await is_live(proxy, cookie)


async def submit_form_no_follow(browser: aiohttp.ClientSession, text: str, base: str) -> int:
    """POST the demo page's sign-out form with its hidden fields; the status of the answer."""
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', text)[1])  # type: ignore[index]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', text))
    async with browser.post(base + action, data=fields, allow_redirects=False) as r:
        return r.status


async def test_the_access_denied_pages_sign_out_button_works_with_allow_get_false(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    proxy = await make_proxy(
        issuer=fake_provider.issuer,
        upstreams=[{"prefix": "/", "url": upstream, "allowed_groups": ["nobody-has-this"]}],
        logout={"allow_get": False},
    )
    async with await signed_in_browser(proxy.url) as browser:
        cookie = session_cookie(browser)
        page = await navigate(browser, proxy.url + "/app")
        assert page.status == 403
        _, action = page.form("sign-out")
        token = html.unescape(re.search(r'name="csrf" value="([^"]+)"', page.text)[1])  # type: ignore[index]
        assert token == token_of(proxy, browser)
        async with browser.post(action, data={"csrf": token}, allow_redirects=False) as r:
            assert r.status == 302

        assert not await is_live(proxy, cookie)
