"""Pending logins: sealed in the browser's login cookie, never stored (proxy/login_state.py).

Each case runs /start and the (fake) provider, then the callback with the Cookie header the case
names; "refused" is a 400 page with no session cookie (never a 500), "signed in" a 302 with one.

The sealed state at the callback:

  the login cookie as /start set it                                   → signed in, login cookie cleared
  started 599 s ago / 30 s in the future (clock skew)                 → signed in
  no login cookie (the callback opened in another browser: login CSRF)→ refused
  sealed under another secret (forged), one character flipped at the
  start / middle / end, truncated by one / to half, empty, not base64,
  non-ASCII, 9 kB long                                                 → refused
  another pending login's cookie under this login's name (swapped)     → refused (state differs)
  this login's cookie under another login's name (slot)                → refused
  a valid cookie, another state in the query                           → refused
  started 601 s ago / 120 s in the future                              → refused ("expired")
  a session cookie's value as the login cookie                         → refused
  the provider's error answer (error=access_denied)                   → refused, login cookie cleared

Replay:

  the callback again in the same browser after signing in              → refused (cookie was cleared)
  the callback again with a saved copy of the login cookie             → refused (the provider's code
                                                                         is single-use), no session
  the same, from a provider that accepts a code twice                  → refused by the state's
                                                                         single-use mark, no session
  the same, both at once                                               → exactly one session

rd (the return address): 1024 bytes → 302 and a cookie of at most 2000 bytes; 1025 bytes, a 3 kB
X-Original-URL, 1000 bytes that JSON escapes (``"``) → 400 "Address too long", no login cookie.

Parallel starts (login cookies are MAX_PENDING = 3 fixed slots, ``<name>_login_<slot>``; the slot is
the state's first character): 2 tabs both sign in (tests/handlers/test_auth.py); 3 tabs, each start
carrying the cookies of those before → all 3 sign in; 5 starts → the 3 newest sign in, the 2 oldest
are refused; a login whose slot a later start took → refused "Please sign in again" (400, never 500),
and the later login keeps its cookie and signs in; 100 starts, then 4 with the longest rd → at most
3 login cookies kept, 6 kB in all, the newest signs in; 12 starts at once with the longest rd, none
carrying another's cookie (<img> tags from a sibling subdomain) → at most 3 login cookies, a Cookie
header of at most 6 kB, /app and /oauth/start still served, and the browser still signs in (before
slots: 12 cookies, 37 kB, every request refused for 10 minutes); starts made at the same instant
take a random free slot, so they rarely meet, and when they do the earlier one is refused as above;
junk under our login-cookie prefix (or an earlier version's ``_login_<hash>`` name) → expired by the
next /start; login cookies never reach the upstream.

Sibling subdomain (``cookie.secure: true``): the login cookie is ``__Host-<name>_login_<slot>``,
Secure, Path=/, no Domain. The valid sealed value planted under ``_auth_proxy_login_<slot>``,
``__Secure-_auth_proxy_login_<slot>``, ``__host-_auth_proxy_login_<slot>`` or the old names
``__Secure-_auth_proxy_login`` / ``_auth_proxy_login`` → refused; under its ``__Host-`` name → signed in.

Key rotation (``cookie.secret``): started with [old], finished with [new, old] → signed in; with
[new] → refused; started with [new, old], finished with [new] → signed in, with [old] → refused.

The store: 100,000 anonymous /start (2,000 over HTTP, keep-alive; 100,000 through the route's
handler in-process) leave Redis' DBSIZE unchanged and used_memory flat.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request
from redis.asyncio import Redis
from yarl import URL

from proxy.config import CookieConfig
from proxy.cookies import CookieCodec
from proxy.keys import COOKIES
from proxy.login_state import MAX_COOKIE_BYTES, MAX_PENDING, MAX_RD_BYTES, PENDING_BYTES
from proxy.sessions.base import Ticket
from tests.conftest import ProxyFactory, RunningProxy
from tests.support.browser import navigate, new_browser
from tests.support.fake_provider import FakeProvider

OTHER = CookieCodec(CookieConfig.model_validate({"secret": "another-secret-0123456789abcdefghij"}), 60)


@dataclass
class Started:
    callback: str
    name: str
    value: str

    @property
    def state(self) -> str:
        return parse_qs(urlsplit(self.callback).query)["state"][0]


@dataclass
class Answer:
    status: int
    text: str
    cookies: SimpleCookie

    @property
    def signed_in(self) -> bool:
        session = self.cookies.get("_auth_proxy") or self.cookies.get("__Host-_auth_proxy")
        return self.status == 302 and session is not None and bool(session.value)


def anonymous() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())


def login_cookies(cookies: SimpleCookie) -> dict[str, str]:
    return {k: m.value for k, m in cookies.items() if "_login_" in k and m["max-age"] != "0"}


async def begin(proxy: RunningProxy, rd: str = "/oauth/userinfo", *pending: Started) -> Started:
    """/start (carrying the cookies of ``pending`` logins, so this one takes another slot) and the
    provider's approval: the callback URL and the login cookie."""
    headers = {"Cookie": "; ".join(f"{p.name}={p.value}" for p in pending)} if pending else {}
    async with anonymous() as client:
        url = proxy.url + "/oauth/start?rd=" + quote(rd)
        async with client.get(url, headers=headers, allow_redirects=False) as r:
            assert r.status == 302, await r.text()
            ((name, value),) = login_cookies(r.cookies).items()
            authorize = r.headers["Location"]
        async with client.get(authorize, allow_redirects=False) as r:
            return Started(r.headers["Location"], name, value)


async def finish(callback: str, cookie: str) -> Answer:
    async with anonymous() as client:
        headers = {"Cookie": cookie} if cookie else {}
        async with client.get(callback, headers=headers, allow_redirects=False) as r:
            return Answer(r.status, await r.text(), r.cookies)


def flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def resealed(proxy: RunningProxy, s: Started, **changes: Any) -> str:
    logins = proxy.app[COOKIES].logins
    login = logins.open(s.value)
    assert login is not None
    return logins.seal(replace(login, **changes))


# --- the sealed state at the callback ----------------------------------------------------------

Case = Callable[[RunningProxy, Started, Started], tuple[str, str]]
"""(proxy, this login, another pending login) → (callback URL, Cookie header)."""

REFUSED: dict[str, Case] = {
    "no login cookie (another browser)": lambda p, s, o: (s.callback, ""),
    "sealed under another secret": lambda p, s, o: (
        s.callback, f"{s.name}={OTHER.logins.seal(p.app[COOKIES].logins.open(s.value))}"  # type: ignore[arg-type]
    ),
    "flipped at the start": lambda p, s, o: (s.callback, f"{s.name}={flip(s.value, 2)}"),
    "flipped in the middle": lambda p, s, o: (s.callback, f"{s.name}={flip(s.value, len(s.value) // 2)}"),
    "flipped at the end": lambda p, s, o: (s.callback, f"{s.name}={flip(s.value, len(s.value) - 2)}"),
    "truncated by one": lambda p, s, o: (s.callback, f"{s.name}={s.value[:-1]}"),
    "truncated to half": lambda p, s, o: (s.callback, f"{s.name}={s.value[: len(s.value) // 2]}"),
    "empty": lambda p, s, o: (s.callback, f"{s.name}="),
    "not base64": lambda p, s, o: (s.callback, f"{s.name}=!!{s.value[2:]}"),
    "non-ASCII": lambda p, s, o: (s.callback, f"{s.name}={s.value[:10]}é{s.value[11:]}"),
    "9 kB long": lambda p, s, o: (s.callback, f"{s.name}={s.value}{'A' * 9000}"),
    "another login's cookie under this name": lambda p, s, o: (s.callback, f"{s.name}={o.value}"),
    "this login's cookie under another name": lambda p, s, o: (s.callback, f"{o.name}={s.value}"),
    "another state in the query": lambda p, s, o: (
        s.callback.replace(s.state, o.state), f"{s.name}={s.value}"
    ),
    "started 601 s ago": lambda p, s, o: (
        s.callback, f"{s.name}={resealed(p, s, started_at=time.time() - 601)}"
    ),
    "120 s in the future": lambda p, s, o: (
        s.callback, f"{s.name}={resealed(p, s, started_at=time.time() + 120)}"
    ),
    "a session cookie's value": lambda p, s, o: (
        s.callback, f"{s.name}={p.app[COOKIES].encode(Ticket.new())}"
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSED))
async def test_a_bad_sealed_state_is_refused(proxy: RunningProxy, case: str) -> None:
    this = await begin(proxy)
    other = await begin(proxy, "/oauth/userinfo", this)
    assert other.name != this.name
    answer = await finish(*REFUSED[case](proxy, this, other))

    assert answer.status == 400, answer.text[:300]
    assert "Sign-in did not complete" in answer.text and "Traceback" not in answer.text
    assert not answer.signed_in
    assert (await finish(this.callback, f"{this.name}={this.value}")).signed_in  # the real one still works


ACCEPTED: dict[str, Callable[[RunningProxy, Started], str]] = {
    "as /start set it": lambda p, s: s.value,
    "started 599 s ago": lambda p, s: resealed(p, s, started_at=time.time() - 599),
    "30 s in the future": lambda p, s: resealed(p, s, started_at=time.time() + 30),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
async def test_a_good_sealed_state_signs_in_and_is_cleared(proxy: RunningProxy, case: str) -> None:
    started = await begin(proxy)
    answer = await finish(started.callback, f"{started.name}={ACCEPTED[case](proxy, started)}")

    assert answer.signed_in, answer.text[:300]
    assert answer.cookies[started.name]["max-age"] == "0"


async def test_the_providers_error_answer_clears_the_login(proxy: RunningProxy) -> None:
    started = await begin(proxy)
    url = f"{proxy.url}/oauth/callback?error=access_denied&state={started.state}"
    answer = await finish(url, f"{started.name}={started.value}")

    assert answer.status == 400 and "access_denied" in answer.text
    assert answer.cookies[started.name]["max-age"] == "0"


# --- replay ------------------------------------------------------------------------------------


async def test_replay_in_the_same_browser_is_refused(proxy: RunningProxy) -> None:
    async with new_browser() as browser:
        page = await navigate(browser, proxy.url + "/oauth/start?rd=/oauth/userinfo")
        assert page.status == 200
        callback = next(url for _, url in page.history if "/oauth/callback" in url)
        assert not any("_login_" in c.key for c in browser.cookie_jar)  # cleared by the callback
        again = await navigate(browser, callback)
        assert again.status == 400 and "expired or was already used" in again.text


@pytest.mark.parametrize("provider_reuses_codes", [False, True], ids=["single-use code", "reusable code"])
async def test_replay_with_a_saved_cookie_is_refused(
    proxy: RunningProxy, fake_provider: FakeProvider, provider_reuses_codes: bool
) -> None:
    started = await begin(proxy)
    codes = dict(fake_provider.codes)
    assert (await finish(started.callback, f"{started.name}={started.value}")).signed_in
    if provider_reuses_codes:
        fake_provider.codes.update(codes)

    again = await finish(started.callback, f"{started.name}={started.value}")

    assert again.status == 400 and not again.signed_in


async def test_concurrent_replays_make_one_session(proxy: RunningProxy, fake_provider: FakeProvider) -> None:
    started = await begin(proxy)
    code = parse_qs(urlsplit(started.callback).query)["code"][0]
    grant = fake_provider.codes[code]

    class Reusable(dict[str, dict[str, str]]):  # the provider's code table, never forgetting the code
        def pop(self, key: str, default: Any = None) -> Any:
            return grant if key == code else super().pop(key, default)

    fake_provider.codes = Reusable(fake_provider.codes)
    answers = await asyncio.gather(
        *(finish(started.callback, f"{started.name}={started.value}") for _ in range(5))
    )

    assert sum(a.signed_in for a in answers) == 1
    assert sorted(a.status for a in answers) == [302, 400, 400, 400, 400]


# --- rd --------------------------------------------------------------------------------------------


async def test_the_longest_rd_fits_in_one_cookie(proxy: RunningProxy) -> None:
    started = await begin(proxy, "/" + "a" * (MAX_RD_BYTES - 1))

    assert len(started.name) + len(started.value) <= MAX_COOKIE_BYTES
    assert (await finish(started.callback, f"{started.name}={started.value}")).signed_in


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("?rd=/" + "a" * MAX_RD_BYTES, {}),
        ("", {"X-Original-URI": "/" + "a" * 3000, "X-Forwarded-Host": "h", "X-Forwarded-Proto": "http"}),
        ("?rd=/" + quote('"' * 1000), {}),
    ],
    ids=["rd of 1025 bytes", "nginx front's original URI of 3 kB", "1000 bytes JSON escapes"],
)
async def test_a_too_long_rd_is_a_clear_400(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str, query: str, headers: dict[str, str]
) -> None:
    """Behind the nginx recipe (auth_request.front: nginx), /oauth/start takes the page to return to
    from the front's headers when there is no rd."""
    proxy = await make_proxy(issuer=fake_provider.issuer, upstream=upstream, auth_request={"front": "nginx"})
    async with anonymous() as client:
        async with client.get(
            proxy.url + "/oauth/start" + query, headers=headers, allow_redirects=False
        ) as r:
            assert r.status == 400
            assert "Address too long" in await r.text()
            assert not login_cookies(r.cookies)


# --- parallel starts -------------------------------------------------------------------------------


async def start_in(browser: aiohttp.ClientSession, proxy: RunningProxy, rd: str) -> str:
    async with browser.get(proxy.url + "/oauth/start?rd=" + quote(rd), allow_redirects=False) as r:
        authorize = r.headers["Location"]
    async with browser.get(authorize, allow_redirects=False) as r:
        return r.headers["Location"]


def jar_logins(browser: aiohttp.ClientSession) -> dict[str, str]:
    return {c.key: c.value for c in browser.cookie_jar if "_login_" in c.key}


async def test_as_many_tabs_as_slots_all_sign_in(proxy: RunningProxy) -> None:
    async with new_browser() as browser:
        callbacks = [await start_in(browser, proxy, f"/oauth/userinfo?tab={i}") for i in range(MAX_PENDING)]
        assert len(jar_logins(browser)) == MAX_PENDING
        statuses = [(await navigate(browser, url)).status for url in callbacks]

    assert statuses == [200] * MAX_PENDING


async def test_more_starts_than_slots_keep_the_newest(proxy: RunningProxy) -> None:
    async with new_browser() as browser:
        callbacks = [await start_in(browser, proxy, f"/oauth/userinfo?t={i}") for i in range(MAX_PENDING + 2)]
        assert len(jar_logins(browser)) == MAX_PENDING
        statuses = [(await navigate(browser, url)).status for url in callbacks]

    assert statuses == [400, 400] + [200] * MAX_PENDING


async def test_a_login_whose_slot_was_taken_is_refused_cleanly(proxy: RunningProxy) -> None:
    first = await begin(proxy)
    held = [first]
    while len(held) < MAX_PENDING:
        held.append(await begin(proxy, "/oauth/userinfo", *held))
    later = await begin(proxy, "/oauth/userinfo", *held)  # every slot held: takes the oldest's
    assert later.name == first.name
    cookies = "; ".join(f"{s.name}={s.value}" for s in [*held[1:], later])

    answer = await finish(first.callback, cookies)

    assert answer.status == 400 and not answer.signed_in
    assert "Please sign in again" in answer.text and "Traceback" not in answer.text
    assert later.name not in answer.cookies  # the later login keeps the slot
    assert (await finish(later.callback, f"{later.name}={later.value}")).signed_in


async def test_many_starts_stay_within_the_budget(proxy: RunningProxy) -> None:
    async with new_browser() as browser:
        for i in range(100):
            await start_in(browser, proxy, f"/page/{i}")
        kept = jar_logins(browser)
        assert len(kept) <= MAX_PENDING
        assert sum(len(k) + len(v) for k, v in kept.items()) <= PENDING_BYTES
        big = [await start_in(browser, proxy, "/" + "b" * (MAX_RD_BYTES - 1)) for _ in range(MAX_PENDING + 1)]
        kept = jar_logins(browser)
        assert len(kept) == MAX_PENDING
        assert sum(len(k) + len(v) + len("=; ") for k, v in kept.items()) <= PENDING_BYTES
        assert (await navigate(browser, big[-1])).status == 200  # signed in, landed on /bbb…


async def test_concurrent_starts_keep_the_cookie_header_bounded(proxy: RunningProxy) -> None:
    """12 starts at once from one browser, each with the longest rd (what <img> tags on a sibling
    subdomain can make a victim's browser do): each response is judged against a Cookie header that
    holds none of the others, yet the browser ends with at most MAX_PENDING login cookies within
    PENDING_BYTES, its requests are still served, and it can still sign in."""
    rd = "/" + "a" * (MAX_RD_BYTES - 1)

    async def one_start() -> dict[str, str]:
        async with anonymous() as client:
            async with client.get(proxy.url + "/oauth/start?rd=" + quote(rd), allow_redirects=False) as r:
                assert r.status == 302, r.status
                return login_cookies(r.cookies)

    jar: dict[str, str] = {}
    for got in await asyncio.gather(*(one_start() for _ in range(12))):
        jar.update(got)  # what a browser keeps: every cookie it was given, by name
    header = "; ".join(f"{k}={v}" for k, v in jar.items())

    assert 1 <= len(jar) <= MAX_PENDING
    assert len(header) <= PENDING_BYTES
    async with anonymous() as client:
        for path in ("/app", "/oauth/start?rd=/"):
            headers = {"Cookie": header, "Accept": "text/html"}
            async with client.get(proxy.url + path, headers=headers, allow_redirects=False) as r:
                assert r.status == 302, (path, r.status)  # to sign in; not 400 or 431
    async with new_browser() as browser:
        browser.cookie_jar.update_cookies(jar, URL(proxy.url))
        page = await navigate(browser, proxy.url + "/oauth/start?rd=/oauth/userinfo")
        assert page.status == 200 and json.loads(page.text)["email"], page.text[:300]


async def test_junk_under_the_login_prefix_is_expired_by_the_next_start(proxy: RunningProxy) -> None:
    async with anonymous() as client:
        headers = {"Cookie": "_auth_proxy_login_0123456789ab=junk; other=1"}
        async with client.get(proxy.url + "/oauth/start", headers=headers, allow_redirects=False) as r:
            assert r.cookies["_auth_proxy_login_0123456789ab"]["max-age"] == "0"
            assert "other" not in r.cookies


async def test_login_cookies_never_reach_the_upstream(proxy: RunningProxy) -> None:
    async with new_browser() as browser:
        await navigate(browser, proxy.url + "/oauth/start?rd=/oauth/userinfo")  # signed in
        await start_in(browser, proxy, "/pending")  # and a login pending
        browser.cookie_jar.update_cookies({"app": "1"})
        assert jar_logins(browser)
        page = await navigate(browser, proxy.url + "/app")

    assert page.status == 200
    assert [v for k, v in json.loads(page.text)["headers"] if k == "Cookie"] == ["app=1"]


# --- a sibling subdomain ---------------------------------------------------------------------------


@pytest.fixture
async def secure_proxy(make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str) -> RunningProxy:
    return await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream, as_deployed=True, cookie={"secure": True}
    )


async def test_the_login_cookie_is_host_prefixed(secure_proxy: RunningProxy) -> None:
    async with anonymous() as client:
        async with client.get(secure_proxy.url + "/oauth/start", allow_redirects=False) as r:
            (header,) = [h for h in r.headers.getall("Set-Cookie") if "_login_" in h]

    assert header.startswith("__Host-_auth_proxy_login_")
    assert "; Path=/;" in header and "; Secure" in header and "Domain" not in header


@pytest.mark.parametrize(
    "planted",
    [
        "_auth_proxy_login_{h}",
        "__Secure-_auth_proxy_login_{h}",
        "__host-_auth_proxy_login_{h}",
        "__Secure-_auth_proxy_login",
        "_auth_proxy_login",
    ],
)
async def test_a_login_cookie_without_the_host_prefix_is_ignored(
    secure_proxy: RunningProxy, planted: str
) -> None:
    """What a sibling subdomain (or a plain-http page) can set for our host: never ``__Host-``."""
    started = await begin(secure_proxy)
    suffix = started.name.rpartition("_")[2]

    answer = await finish(started.callback, f"{planted.format(h=suffix)}={started.value}")

    assert answer.status == 400 and not answer.signed_in
    assert (await finish(started.callback, f"{started.name}={started.value}")).signed_in


# --- key rotation ----------------------------------------------------------------------------------

OLD = "old-cookie-secret-0123456789abcdefghij"
NEW = "new-cookie-secret-0123456789abcdefghij"


@pytest.mark.parametrize(
    ("started_with", "finished_with", "signed_in"),
    [([OLD], [NEW, OLD], True), ([OLD], [NEW], False), ([NEW, OLD], [NEW], True), ([NEW, OLD], [OLD], False)],
    ids=["old→rotated", "old→new-only", "rotated→new-only", "rotated→old-only"],
)
async def test_rotation_keeps_pending_logins(
    make_proxy: ProxyFactory,
    fake_provider: FakeProvider,
    started_with: list[str],
    finished_with: list[str],
    signed_in: bool,
) -> None:
    first = await make_proxy(issuer=fake_provider.issuer, cookie={"secret": started_with})
    second = await make_proxy(issuer=fake_provider.issuer, cookie={"secret": finished_with})
    started = await begin(first)

    answer = await finish(started.callback.replace(first.url, second.url), f"{started.name}={started.value}")

    assert answer.signed_in is signed_in
    assert answer.status == (302 if signed_in else 400)


# --- the store -------------------------------------------------------------------------------------

HTTP_STARTS = 2_000
STARTS = 100_000


async def test_anonymous_starts_leave_redis_flat(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, redis_url: str, redis_client: Redis
) -> None:
    proxy = await make_proxy(
        issuer=fake_provider.issuer, as_deployed=True, session={"store": "redis", "redis_url": redis_url}
    )
    keys_before = await redis_client.dbsize()
    memory_before = (await redis_client.info("memory"))["used_memory"]

    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=8), cookie_jar=aiohttp.DummyCookieJar()
    ) as client:  # the real server, keep-alive

        async def starts(n: int) -> None:
            for _ in range(n):
                async with client.get(proxy.url + "/oauth/start?rd=/x", allow_redirects=False) as r:
                    assert r.status == 302

        await asyncio.gather(*(starts(HTTP_STARTS // 8) for _ in range(8)))
    # The route's handler as the server calls it (front layer included), in a tight loop.
    request = make_mocked_request("GET", "/oauth/start?rd=/x", headers={"Host": "p.example"}, app=proxy.app)
    handler = (await proxy.app.router.resolve(request)).handler
    for _ in range(STARTS):
        response = await handler(request)
    assert response.status == 302 and "state=" in response.headers["Location"]

    assert await redis_client.dbsize() == keys_before
    grown = (await redis_client.info("memory"))["used_memory"] - memory_before
    assert grown < 256 * 1024, f"Redis grew by {grown} bytes"
