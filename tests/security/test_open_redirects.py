"""Open redirects: encoded and Unicode spellings of "somewhere else", at every door a target comes in.

tests/unit/test_redirects.py holds the plain table (``//evil``, ``/\\evil``, ``https:evil``,
``javascript:``, userinfo, CR/LF, other hosts and ports, Cyrillic ``а``, fullwidth ``ｅ``). This file
adds the spellings a browser reads differently from Python, and proves the guard at each door:

  percent-encoded   %2F%2Fevil   %5C%5Cevil   %68ttps://evil   https%3A//evil   https:%2F%2Fevil
                    //%65vil     a host with %2E, %2F, %23, %40 or %00 in it
  Unicode           fullwidth solidus ／ before and after the scheme, fullwidth full stop ．,
                    ideographic full stop 。, one-dot leader ․, division slash ∕, set minus ∖,
                    zero-width space before //, IDN homographs (Cyrillic, Greek, punycode of one),
                    fullwidth and Arabic-Indic port digits
  whitespace        tab, CR or LF inside the scheme or the host, CRLF before ://, a leading space
  stays here        /%2F%2Fevil, /%5Cevil, /／evil, /∕evil, /%09/evil, /\\u200b/evil: paths on the
                    proxy, always returned prefixed with its own origin
  doors             /oauth/start?rd=, /oauth/sign_out?rd= (signed in: the post-logout target the
                    provider is given; signed out: the redirect itself), X-Original-URL on /oauth/start

Plus a property: for any string, the guard never raises and never returns a URL whose host (read by
urllib and by yarl) is neither the proxy's own nor an allowed one.
"""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from proxy.redirects import safe_redirect
from tests.conftest import RunningProxy
from tests.support.browser import new_browser
from tests.support.login import signed_in_browser

ORIGIN = "https://proxy.example.com"
ALLOWED = [".example.org", "app.example.net"]

REJECTED = [
    # percent-encoded
    pytest.param("%2F%2Fevil.com", id="pct-2F2F"),
    pytest.param("%5C%5Cevil.com", id="pct-5C5C"),
    pytest.param("%68ttps://evil.com", id="pct-in-scheme"),
    pytest.param("https%3A//evil.com", id="pct-colon"),
    pytest.param("https:%2F%2Fevil.com", id="pct-slashes-after-scheme"),
    pytest.param("//%65vil.com", id="pct-host-protocol-relative"),
    pytest.param("https://evil%2Ecom.example.org/", id="pct-2E-in-allowed-host"),
    pytest.param("https://evil.com%2F.example.org/", id="pct-2F-in-host"),
    pytest.param("https://evil.com%23.example.org/", id="pct-23-in-host"),
    pytest.param("https://evil.com%40app.example.net/", id="pct-40-in-host"),
    pytest.param("https://a.example.org%00.evil.com/", id="pct-00-in-host"),
    pytest.param("https://proxy.example.com%2F%2F@evil.com", id="pct-slashes-then-userinfo"),
    # Unicode
    pytest.param("\uff0f\uff0fevil.com", id="fullwidth-solidus-x2"),
    pytest.param("https:\uff0f\uff0fevil.com", id="fullwidth-solidus-after-scheme"),
    pytest.param("https://evil.com\uff0f.example.org", id="fullwidth-solidus-in-host"),
    pytest.param("https://evil.com\uff0eexample.org", id="fullwidth-full-stop"),
    pytest.param("https://evil.com\u3002example.org", id="ideographic-full-stop"),
    pytest.param("https://app.example.net\u2024evil.com", id="one-dot-leader"),
    pytest.param("https://ex\u0430mple.org/", id="idn-cyrillic-a"),
    pytest.param("https://\u03bfexample.org/", id="idn-greek-omicron"),
    pytest.param("https://xn--exmple-cua.org/", id="idn-punycode-homograph"),
    pytest.param("https://app.example.net:\uff14\uff14\uff13/", id="fullwidth-port"),
    pytest.param("https://proxy.example.com:\u0664\u0664\u0663/", id="arabic-indic-port"),
    pytest.param("\u200b//evil.com", id="zero-width-space-first"),
    # whitespace and control characters
    pytest.param("ht\ttps://evil.com", id="tab-in-scheme"),
    pytest.param("java\nscript:alert(1)", id="lf-in-javascript"),
    pytest.param("jav\tascript:alert(1)", id="tab-in-javascript"),
    pytest.param("https\r\n://evil.com", id="crlf-before-colon"),
    pytest.param("http://app.example.net\t.evil.com/", id="tab-in-host"),
    pytest.param("https://app.example.\nnet/", id="lf-in-allowed-host"),
    pytest.param(" //evil.com", id="leading-space"),
    pytest.param("/\t/evil.com", id="tab-between-slashes"),
]

STAYS_HERE = [
    pytest.param("/%2F%2Fevil.com", id="pct-2F2F-path"),
    pytest.param("/%5Cevil.com", id="pct-5C-path"),
    pytest.param("/%5C/evil.com", id="pct-5C-slash-path"),
    pytest.param("/%09/evil.com", id="pct-tab-path"),
    pytest.param("/\uff0fevil.com", id="fullwidth-solidus-path"),
    pytest.param("/\u2215evil.com", id="division-slash-path"),
    pytest.param("/\u2216evil.com", id="set-minus-path"),
    pytest.param("/\u200b/evil.com", id="zero-width-space-path"),
    pytest.param("/%2e%2e/%2e%2e/evil", id="pct-dot-segments"),
]


@pytest.mark.parametrize("target", REJECTED)
def test_rejected(target: str) -> None:
    assert safe_redirect(target, ORIGIN, ALLOWED) is None


@pytest.mark.parametrize("target", STAYS_HERE)
def test_paths_stay_on_the_proxy(target: str) -> None:
    result = safe_redirect(target, ORIGIN, ALLOWED)

    assert result == ORIGIN + target
    assert URL(result).host == "proxy.example.com"


# --- the property ----------------------------------------------------------------------------

_SCHEMES = st.sampled_from(["https", "http", "HTTPS", "javascript", "data", "ht\ttps", "\uff48ttps", ""])
_SEPARATORS = st.sampled_from(
    ["://", ":", ":/", ":///", "//", "/", "\\\\", "/\\", ":\\\\", "\uff0f\uff0f", ""]
)
_HOSTS = st.sampled_from(
    ["proxy.example.com", "app.example.net", "example.org", "a.example.org", "evil.com",
     "example.org.evil.com", "evil.com\\.example.org", "evil%2Ecom.example.org", "ex\u0430mple.org",
     "evil.com\uff0eexample.org", "good@evil.com", "[::1]", "127.0.0.1", "proxy.example.com:443",
     "proxy.example.com:0", ""]
)  # fmt: skip
_TAILS = st.text(alphabet=st.sampled_from("/\\@?#%.:;\t\r\n \x00\u200b\uff0fabcAZ09-_~"), max_size=12)


@st.composite
def url_like(draw: st.DrawFn) -> str:
    """Strings built like URLs from the pieces attacks are made of."""
    parts = [draw(_SCHEMES), draw(_SEPARATORS), draw(_HOSTS), draw(_TAILS)]
    return "".join(parts)


def lands_on_own_or_allowed(result: str) -> bool:
    """Both urllib and yarl read a host that is the proxy's or an allowed one."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in result) or "\\" in result:
        return False
    parts = urlsplit(result)
    if parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc or "%" in parts.netloc:
        return False
    host = (parts.hostname or "").lower()
    if URL(result).host != host:
        return False
    if host == "proxy.example.com":
        return parts.port is None
    return host == "app.example.net" or host == "example.org" or host.endswith(".example.org")


@given(st.one_of(st.text(), url_like()))
def test_the_guard_never_raises_and_never_leaves(target: str) -> None:
    result = safe_redirect(target, ORIGIN, ALLOWED)

    assert result is None or lands_on_own_or_allowed(result), result


# --- the doors, through the running proxy ----------------------------------------------------

THROUGH_THE_APP = [
    "%2F%2Fevil.com",
    "/%2F%2Fevil.com",
    "https:%2F%2Fevil.com",
    "https://evil%2Ecom.example.org/",
    "https://evil.com%2F.example.org/",
    "\uff0f\uff0fevil.com",
    "/\uff0fevil.com",
    "https://evil.com\uff0eexample.org",
    "https://ex\u0430mple.org/",
    "https://xn--exmple-cua.org/",
    "ht\ttps://evil.com",
    "https\r\n://evil.com",
    "/\u200b/evil.com",
]
_HEADER_SAFE = [t for t in THROUGH_THE_APP if "\r" not in t and "\n" not in t]
"""X-Original-URL comes from nginx: a header can't hold CR or LF."""


def on_proxy(proxy: RunningProxy, location: str) -> bool:
    return URL(location, encoded=True).host == "127.0.0.1" and location.startswith(proxy.url + "/")


async def login_lands_at(proxy: RunningProxy, start: str, headers: dict[str, str] | None = None) -> str:
    """Sign in through the fake provider from ``start``; where the callback sends the browser."""
    async with new_browser() as browser:
        async with browser.get(URL(start, encoded=True), headers=headers, allow_redirects=False) as r:
            assert r.status == 302, await r.text()
            authorize = r.headers["Location"]
        async with browser.get(authorize, allow_redirects=False) as r:
            callback = r.headers["Location"]
        async with browser.get(callback, allow_redirects=False) as r:
            assert r.status == 302, await r.text()
            return r.headers["Location"]


@pytest.mark.parametrize("target", THROUGH_THE_APP, ids=ascii)
async def test_start_rd(proxy: RunningProxy, target: str) -> None:
    landing = await login_lands_at(proxy, f"{proxy.url}/oauth/start?rd={quote(target, safe='')}")

    assert on_proxy(proxy, landing), landing


@pytest.mark.parametrize("target", _HEADER_SAFE, ids=ascii)
async def test_start_x_original_url(proxy: RunningProxy, target: str) -> None:
    landing = await login_lands_at(proxy, f"{proxy.url}/oauth/start", headers={"X-Original-URL": target})

    assert on_proxy(proxy, landing), landing


@pytest.mark.parametrize("target", THROUGH_THE_APP, ids=ascii)
async def test_sign_out_rd_signed_in(proxy: RunningProxy, target: str) -> None:
    async with await signed_in_browser(proxy.url) as browser:
        url = URL(f"{proxy.url}/oauth/sign_out?rd={quote(target, safe='')}", encoded=True)
        async with browser.get(url, allow_redirects=False) as r:
            assert r.status == 302
            to_provider = parse_qs(urlsplit(r.headers["Location"]).query)

    assert on_proxy(proxy, to_provider["post_logout_redirect_uri"][0])


@pytest.mark.parametrize("target", THROUGH_THE_APP, ids=ascii)
async def test_sign_out_rd_signed_out(proxy: RunningProxy, target: str) -> None:
    async with aiohttp.ClientSession() as client:
        url = URL(f"{proxy.url}/oauth/sign_out?rd={quote(target, safe='')}", encoded=True)
        async with client.get(url, allow_redirects=False) as r:
            assert r.status == 302

            assert on_proxy(proxy, r.headers["Location"]), r.headers["Location"]
