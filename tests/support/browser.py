"""A scripted browser: an aiohttp client with a cookie jar that follows redirects one by one and can
fill in Keycloak's login form, the way a person would (no password grant, no shortcuts)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from urllib.parse import urljoin

import aiohttp
from yarl import URL

_FORM = re.compile(r"<form\b[^>]*>", re.I)
_ATTR = re.compile(r'(\w[\w-]*)\s*=\s*"([^"]*)"')


@dataclass
class Page:
    url: str
    status: int
    headers: dict[str, str]
    text: str
    history: list[tuple[int, str]] = field(default_factory=list)

    def form(self, form_id: str) -> tuple[str, str]:
        """(method, absolute action URL) of the form with this id."""
        for tag in _FORM.findall(self.text):
            attrs = {k.lower(): html.unescape(v) for k, v in _ATTR.findall(tag)}
            if attrs.get("id") == form_id:
                return attrs.get("method", "get").upper(), urljoin(self.url, attrs["action"])
        raise AssertionError(f"no form #{form_id} on {self.url} (status {self.status})")

    @property
    def is_keycloak_login(self) -> bool:
        return 'id="kc-form-login"' in self.text


def new_browser(*secure_origins: str) -> aiohttp.ClientSession:
    """Keycloak marks its cookies Secure even over http; like Chromium, treat loopback as secure."""
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[URL(o) for o in secure_origins])
    return aiohttp.ClientSession(cookie_jar=jar, headers={"Accept": "text/html,*/*;q=0.8"})


async def navigate(
    browser: aiohttp.ClientSession, url: str, *, method: str = "GET", data: dict[str, str] | None = None,
    max_hops: int = 15,
) -> Page:  # fmt: skip
    """Follow redirects by hand (keeping the history) until a page that is not a redirect."""
    history: list[tuple[int, str]] = []
    for _ in range(max_hops):
        # encoded=True: send the URL as given, like a browser (yarl would re-quote "%2F" to "/")
        async with browser.request(method, URL(url, encoded=True), data=data, allow_redirects=False) as resp:
            text = await resp.text(errors="replace")
            headers = {k: v for k, v in resp.headers.items()}
            if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                history.append((resp.status, url))
                url = urljoin(url, resp.headers["Location"])
                if resp.status in (301, 302, 303):
                    method, data = "GET", None
                continue
            return Page(url, resp.status, headers, text, history)
    raise AssertionError(f"more than {max_hops} redirects, last {url}")


async def submit_login(browser: aiohttp.ClientSession, page: Page, username: str, password: str) -> Page:
    """Fill in and submit Keycloak's login form; follow where it leads."""
    assert page.is_keycloak_login, f"expected Keycloak's login form at {page.url}, got status {page.status}"
    _, action = page.form("kc-form-login")
    return await navigate(
        browser, action, method="POST", data={"username": username, "password": password, "credentialId": ""}
    )


_INPUT = re.compile(r"<input\b[^>]*>", re.I)


async def submit_form(browser: aiohttp.ClientSession, page: Page, form_id: str) -> Page:
    """Submit a form as a browser would with its hidden fields (e.g. the end-session POST form)."""
    method, action = page.form(form_id)
    start = page.text.index(f'id="{form_id}"')
    end = page.text.index("</form>", start)
    fields = {}
    for tag in _INPUT.findall(page.text[start:end]):
        attrs = {k.lower(): html.unescape(v) for k, v in _ATTR.findall(tag)}
        if "name" in attrs:
            fields[attrs["name"]] = attrs.get("value", "")
    return await navigate(browser, action, method=method, data=fields)
