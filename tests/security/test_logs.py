"""Nothing secret in the logs: a whole life of sessions, with every record captured at DEBUG (caplog,
and the proxy's JSON formatter over the same records, extras and tracebacks included), searched for
every secret that went by:

  the authorization codes, the states, the nonces, the PKCE verifiers, the ID tokens, the access
  tokens and refresh tokens (first and refreshed), the session cookie values, the login binding
  cookie values, the sign-out CSRF token, the back-channel logout token, the client secret and the
  cookie secret

The life: a login (proxy as deployed: its access log, parser limits; sessions in the real Redis),
proxied requests that refresh the tokens, a sign-out, a second login ended by back-channel logout, a
login the provider spoils (wrong nonce), and a request whose Cookie header the HTTP parser refuses.
Each secret is looked for whole and, when long, as two 24-character pieces (a truncated leak counts).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from proxy.keys import COOKIES, STORE
from proxy.limits import QuietParserErrors, quiet_parser_errors
from proxy.logs import JsonFormatter
from proxy.sessions.base import Session
from tests.conftest import COOKIE_SECRET, ProxyFactory, RunningProxy
from tests.security.conftest import KEY
from tests.support.browser import Page, navigate, new_browser
from tests.support.fake_provider import FakeProvider
from tests.support.upstream_app import make_upstream


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[tuple[pytest.LogCaptureFixture, io.StringIO]]:
    """caplog at DEBUG, plus the same records through JsonFormatter; aiohttp's parser errors quieted
    as ``python -m proxy`` quiets them."""
    quiet_parser_errors()
    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    yield caplog, stream
    root.removeHandler(handler)
    server_logger = logging.getLogger("aiohttp.server")
    for f in [f for f in server_logger.filters if isinstance(f, QuietParserErrors)]:
        server_logger.removeFilter(f)


@pytest.fixture
async def fake_provider(aiohttp_server: Any) -> FakeProvider:
    """The provider and the upstream log nothing (aiohttp's access log would show the codes in their
    query strings): every record captured is the proxy's."""
    provider = FakeProvider(key=KEY)
    server = await aiohttp_server(provider.app(), host="127.0.0.1", access_log=None)
    provider.issuer = str(server.make_url("")).rstrip("/")
    return provider


@pytest.fixture
async def quiet_upstream(aiohttp_server: Any) -> str:
    server = await aiohttp_server(make_upstream(), host="127.0.0.1", access_log=None)
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def proxy(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, quiet_upstream: str, redis_url: str
) -> RunningProxy:
    return await make_proxy(
        issuer=fake_provider.issuer,
        upstream=quiet_upstream,
        as_deployed=True,
        session={"store": "redis", "redis_url": redis_url, "refresh_skew": "400s"},  # every request refreshes
        server={"max_header_bytes": 4096},
    )


def query_values(page: Page, *names: str) -> list[str]:
    """Values of these query parameters in every URL the browser went through."""
    found = []
    for _, url in page.history:
        q = parse_qs(urlsplit(url).query)
        found += [v for name in names for v in q.get(name, [])]
    return found


async def session_of(proxy: RunningProxy, cookie: str) -> Session:
    ticket = proxy.app[COOKIES].decode(cookie)
    assert ticket is not None
    session = await proxy.app[STORE].load(ticket)
    assert session is not None
    return session


async def test_a_whole_life_of_sessions_logs_no_secret(
    proxy: RunningProxy,
    fake_provider: FakeProvider,
    captured: tuple[pytest.LogCaptureFixture, io.StringIO],
) -> None:
    secrets_seen: set[str] = {"proxy-secret", COOKIE_SECRET}
    sessions: list[Session] = []

    async def sign_in(browser: aiohttp.ClientSession) -> str:
        page = await navigate(browser, proxy.url + "/app?x=1")
        assert page.status == 200
        secrets_seen.update(query_values(page, "state", "nonce", "code"))
        cookies = {c.key: c.value for c in browser.cookie_jar}
        secrets_seen.update(cookies.values())
        sessions.append(await session_of(proxy, cookies["_auth_proxy"]))
        return cookies["_auth_proxy"]

    async with new_browser() as browser:
        cookie = await sign_in(browser)
        for _ in range(2):  # proxied requests, each refreshing the tokens
            async with browser.get(proxy.url + "/app/again") as r:
                assert r.status == 200
            sessions.append(await session_of(proxy, cookie))
        async with browser.get(proxy.url + "/oauth/userinfo") as r:
            secrets_seen.add((await r.json())["csrf_token"])
        async with browser.post(proxy.url + "/oauth/sign_out", allow_redirects=False) as r:
            assert r.status == 302

    async with new_browser() as browser:
        await sign_in(browser)
        logout_token = fake_provider.logout_token()
        secrets_seen.add(logout_token)
        async with browser.post(
            proxy.url + "/oauth/backchannel_logout", data={"logout_token": logout_token}
        ) as r:
            assert r.status == 200

    fake_provider.token_mode = "wrong_nonce"
    async with new_browser() as browser:
        page = await navigate(browser, proxy.url + "/app")
        assert page.status == 401
        secrets_seen.update(query_values(page, "state", "nonce", "code"))
        secrets_seen.update(c.value for c in browser.cookie_jar)

    async with aiohttp.ClientSession() as client:
        oversized = {"Cookie": f"_auth_proxy={cookie}; big={'b' * 5000}"}
        async with client.get(proxy.url + "/app", headers=oversized) as r:
            assert r.status == 400  # one field over max_header_bytes: the parser refuses it

    for session in sessions:
        secrets_seen.update(t for t in (session.id_token, session.access_token, session.refresh_token) if t)
    secrets_seen.update(r["code_verifier"] for r in fake_provider.token_requests if "code_verifier" in r)
    secrets_seen.update(r["refresh_token"] for r in fake_provider.token_requests if "refresh_token" in r)
    assert len(sessions) == 4 and fake_provider.refreshes >= 2

    caplog, stream = captured
    text = caplog.text + "\n" + stream.getvalue()
    text += "\n".join(repr(r.__dict__) for r in caplog.records)
    assert "login" in text and "logout" in text  # the logs did record the life
    leaks = {s for s in secrets_seen for piece in pieces(s) if piece in text}

    assert leaks == set()


def pieces(secret: str) -> list[str]:
    if len(secret) <= 48:
        return [secret]
    middle = len(secret) // 2
    return [secret, secret[middle - 12 : middle + 12], secret[-24:]]
