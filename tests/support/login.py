"""Signing a scripted browser in through the fake provider (which approves at once)."""

from __future__ import annotations

import aiohttp

from tests.support.browser import navigate, new_browser


async def signed_in_browser(proxy_url: str) -> aiohttp.ClientSession:
    browser = new_browser()
    try:
        page = await navigate(browser, proxy_url + "/oauth/start?rd=/oauth/userinfo")
        assert page.status == 200, page.text[:300]
        assert any(c.key == "_auth_proxy" for c in browser.cookie_jar)
    except BaseException:
        await browser.close()
        raise
    return browser


def session_cookie(browser: aiohttp.ClientSession) -> str:
    return next(c.value for c in browser.cookie_jar if c.key == "_auth_proxy")
