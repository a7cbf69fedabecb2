"""Session cookies: what the browser is given, what the proxy accepts, and what it treats as nobody.

tests/unit/test_cookies.py fuzzes the codec (hypothesis) and checks tampering, truncation and garbage
value by value. Here, through the running proxy, every one of these is treated as no session: a
browser is sent to sign in, an API client gets 401, /oauth/userinfo and /oauth/auth say 401, and
nothing answers 500:

  tampered payload, tampered MAC, another format version, truncated (1 byte, half), empty,
  4 kB oversized, signed with another secret, signed right but naming no session, the login cookie's
  value, replayed after sign-out, replayed after a back-channel logout, unbalanced quote, non-ASCII,
  separators only, duplicate names with the forged copy last, and (secure: true) the same valid value
  under the unprefixed, __Secure- or lower-case __host- name a sibling subdomain could plant

Names: secure and no domain → ``__Host-<name>`` (Path=/, no Domain, Secure); secure with a domain →
``__Secure-<name>``; each login cookie → ``__Host-<name>_login_<slot>`` (Path=/, no Domain, even with a
domain; tests/security/test_login_state.py); not secure → plain.

Rotation: ``cookie.secret: [new, old]`` keeps old cookies working and signs new ones with ``new``;
dropping ``old`` ends them; ``secret_file`` lines work the same; a short secret anywhere in the list is
refused at start-up, by position, without echoing it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from proxy.config import ConfigError, CookieConfig, load_settings
from proxy.cookies import CookieCodec
from proxy.keys import COOKIES
from proxy.sessions.base import Ticket
from tests.conftest import COOKIE_SECRET, ProxyFactory, RunningProxy
from tests.security.conftest import is_live, treated_as_nobody
from tests.support.browser import navigate, new_browser
from tests.support.fake_provider import FakeProvider
from tests.support.login import session_cookie, signed_in_browser

OTHER = CookieCodec(CookieConfig.model_validate({"secret": "another-secret-0123456789abcdefghij"}), 3600)


def flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def _tampered_payload(v: str) -> str:
    prefix, payload, mac = v.split(".")
    return f"{prefix}.{flip(payload, 10)}.{mac}"


def _tampered_mac(v: str) -> str:
    prefix, payload, mac = v.split(".")
    return f"{prefix}.{payload}.{flip(mac, 3)}"


# Each case: the valid cookie value → the Cookie header to send.
BAD_COOKIES: dict[str, Callable[[str], str]] = {
    "tampered payload": lambda v: f"_auth_proxy={_tampered_payload(v)}",
    "tampered MAC": lambda v: f"_auth_proxy={_tampered_mac(v)}",
    "another format version": lambda v: f"_auth_proxy=2{v[1:]}",
    "truncated by one byte": lambda v: f"_auth_proxy={v[:-1]}",
    "truncated to half": lambda v: f"_auth_proxy={v[: len(v) // 2]}",
    "empty": lambda v: "_auth_proxy=",
    "4 kB oversized": lambda v: f"_auth_proxy={v}{'A' * 4000}",
    "signed with another secret": lambda v: f"_auth_proxy={OTHER.encode(Ticket.new())}",
    "unbalanced quote": lambda v: f'_auth_proxy="{v}',
    "non-ASCII": lambda v: f"_auth_proxy={v[:20]}é{v[21:]}",
    "separators only": lambda v: "_auth_proxy;;=;=",
    "duplicate names, forged last": lambda v: f"_auth_proxy={v}; _auth_proxy={_tampered_mac(v)}",
}


@pytest.mark.parametrize("case", list(BAD_COOKIES))
async def test_bad_cookie_is_nobody(proxy: RunningProxy, case: str) -> None:
    async with await signed_in_browser(proxy.url) as browser:
        valid = session_cookie(browser)

        await treated_as_nobody(proxy, BAD_COOKIES[case](valid))

        assert await is_live(proxy, valid)  # the real session is untouched


async def test_correctly_signed_ticket_of_no_session_is_nobody(proxy: RunningProxy) -> None:
    await treated_as_nobody(proxy, f"_auth_proxy={proxy.app[COOKIES].encode(Ticket.new())}")


async def test_login_cookie_value_is_not_a_session(proxy: RunningProxy) -> None:
    async with new_browser() as browser:
        async with browser.get(proxy.url + "/oauth/start", allow_redirects=False) as r:
            login = next(c.value for c in r.cookies.values() if c.key.startswith("_auth_proxy_login_"))

    await treated_as_nobody(proxy, f"_auth_proxy={login}")


async def test_replayed_after_sign_out_is_nobody(proxy: RunningProxy) -> None:
    async with await signed_in_browser(proxy.url) as browser:
        valid = session_cookie(browser)
        async with browser.post(proxy.url + "/oauth/sign_out", allow_redirects=False) as r:
            assert r.status == 302

    await treated_as_nobody(proxy, f"_auth_proxy={valid}")


async def test_replayed_after_back_channel_logout_is_nobody(
    proxy: RunningProxy, fake_provider: FakeProvider
) -> None:
    async with await signed_in_browser(proxy.url) as browser:
        valid = session_cookie(browser)
    async with aiohttp.ClientSession() as provider:
        url = proxy.url + "/oauth/backchannel_logout"
        async with provider.post(url, data={"logout_token": fake_provider.logout_token()}) as r:
            assert r.status == 200

    await treated_as_nobody(proxy, f"_auth_proxy={valid}")


# --- prefixes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "session_name", "login_name"),
    [
        ({"secure": True}, "__Host-sid", "__Host-sid_login"),
        ({"secure": True, "domain": "example.com"}, "__Secure-sid", "__Host-sid_login"),
        ({"secure": False}, "sid", "sid_login"),
        ({"secure": False, "domain": "example.com"}, "sid", "sid_login"),
    ],
    ids=["secure", "secure-with-domain", "insecure", "insecure-with-domain"],
)
def test_cookie_names(config: dict[str, Any], session_name: str, login_name: str) -> None:
    codec = CookieCodec(CookieConfig.model_validate({"secret": COOKIE_SECRET, "name": "sid", **config}), 60)

    assert (codec.name, codec.login_name) == (session_name, login_name)
    assert codec.login_cookie("0.s") == login_name + "_0"
    old = {"sid_login", "__Secure-sid_login"}  # the login binding cookie of earlier versions
    assert {"sid", session_name, login_name, *old} == codec.names  # all kept from upstreams
    assert all(slot in codec.names for slot in codec.login_slots) and "sid_login_x" in codec.names
    assert "sid_other" not in codec.names


@pytest.mark.parametrize("name", ["__Host-x", "__secure-x", "__HOST-x"])
def test_a_configured_prefix_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="cookie.name: must not start with __Host- or __Secure-"):
        load_settings(
            provider={"issuer_url": "http://x/r", "client_id": "p", "client_secret": "s"},
            cookie={"secret": COOKIE_SECRET, "name": name},
        )


@pytest.fixture
async def secure_proxy(make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str) -> RunningProxy:
    return await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream, as_deployed=True, cookie={"secure": True}
    )


async def test_secure_login_sets_host_prefixed_cookies(secure_proxy: RunningProxy) -> None:
    async with new_browser(secure_proxy.url) as browser:  # treats this http origin as secure
        async with browser.get(secure_proxy.url + "/oauth/start", allow_redirects=False) as r:
            login = r.headers["Set-Cookie"]
            authorize = r.headers["Location"]
        async with browser.get(authorize, allow_redirects=False) as r:
            callback = r.headers["Location"]
        async with browser.get(callback, allow_redirects=False) as r:
            session = next(h for h in r.headers.getall("Set-Cookie") if h.startswith("__Host-_auth_proxy="))

    assert login.startswith("__Host-_auth_proxy_login_") and "Path=/;" in login and "Secure" in login
    assert "Domain" not in login
    assert "Path=/;" in session and "Secure" in session and "Domain" not in session


@pytest.mark.parametrize("name", ["_auth_proxy", "__Secure-_auth_proxy", "__host-_auth_proxy"])
async def test_a_planted_cookie_without_the_host_prefix_is_nobody(
    secure_proxy: RunningProxy, name: str
) -> None:
    """A sibling subdomain (or a plain-http page) can set ``_auth_proxy`` for our host, never
    ``__Host-_auth_proxy``: only the prefixed name is read."""
    async with new_browser(secure_proxy.url) as browser:
        await navigate(browser, secure_proxy.url + "/oauth/start?rd=/oauth/userinfo")
        valid = next(c.value for c in browser.cookie_jar if c.key == "__Host-_auth_proxy")

    await treated_as_nobody(secure_proxy, f"{name}={valid}")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as client:
        headers = {"Cookie": f"__Host-_auth_proxy={valid}"}
        async with client.get(secure_proxy.url + "/oauth/userinfo", headers=headers) as r:
            assert r.status == 200  # the same value under its real name is a session


# --- rotation ------------------------------------------------------------------------------------

OLD = "old-cookie-secret-0123456789abcdefghij"
NEW = "new-cookie-secret-0123456789abcdefghij"


@pytest.fixture
def shared_store(redis_url: str) -> dict[str, Any]:
    """Proxies with different secrets, one Redis: a rolling secret change across replicas."""
    return {"session": {"store": "redis", "redis_url": redis_url}}


async def test_rotation_keeps_old_cookies_and_signs_new_ones_with_the_first(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str, shared_store: dict[str, Any]
) -> None:
    before = await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream, cookie={"secret": OLD}, **shared_store
    )
    rotated = await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream, cookie={"secret": [NEW, OLD]}, **shared_store
    )
    retired = await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream, cookie={"secret": NEW}, **shared_store
    )
    async with await signed_in_browser(before.url) as browser:
        old_value = session_cookie(browser)
    async with await signed_in_browser(rotated.url) as browser:
        new_value = session_cookie(browser)

    assert await is_live(rotated, old_value)  # accepted by [new, old]
    await treated_as_nobody(retired, f"_auth_proxy={old_value}")  # refused once old is dropped
    assert await is_live(retired, new_value)  # the rotated proxy signed with the first: new
    await treated_as_nobody(before, f"_auth_proxy={new_value}")


async def test_rotation_from_secret_file_lines(
    make_proxy: ProxyFactory,
    fake_provider: FakeProvider,
    upstream: str,
    shared_store: dict[str, Any],
    tmp_path: Path,
) -> None:
    secret_file = tmp_path / "cookie_secret"
    secret_file.write_text(f"{NEW}\n\n  {OLD}  \n", encoding="utf-8")
    before = await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream, cookie={"secret": OLD}, **shared_store
    )
    rotated = await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream,
        cookie={"secret": None, "secret_file": str(secret_file)}, **shared_store,
    )  # fmt: skip
    async with await signed_in_browser(before.url) as browser:
        old_value = session_cookie(browser)

    assert rotated.settings.cookie.secrets_bytes == (NEW.encode(), OLD.encode())
    assert await is_live(rotated, old_value)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ([NEW, "short"], "cookie: secret[1] of at least 32 bytes is required"),
        (["short", NEW], "cookie: secret[0] of at least 32 bytes is required"),
        ([], "cookie: secret (or secret_file) of at least 32 bytes is required"),
        (["short"], "cookie: secret (or secret_file) of at least 32 bytes is required"),
    ],
    ids=["second-short", "first-short", "empty-list", "one-short"],
)
def test_every_secret_of_a_list_is_checked(secret: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            provider={"issuer_url": "http://x/r", "client_id": "p", "client_secret": "s"},
            cookie={"secret": secret},
        )

    assert message in str(caught.value)
    assert "short" not in str(caught.value).replace("secret", "")


def test_an_environment_secret_is_taken_literally(monkeypatch: pytest.MonkeyPatch) -> None:
    """No JSON decoding from the environment: '["a","b"]' or '12345...' are one secret, as before."""
    literal = '["not-a-list-0123456789abcdefghij", "x"]'
    monkeypatch.setenv("AUTH_PROXY_COOKIE__SECRET", literal)
    settings = load_settings(provider={"issuer_url": "http://x/r", "client_id": "p", "client_secret": "s"})

    assert settings.cookie.secrets_bytes == (literal.encode(),)
