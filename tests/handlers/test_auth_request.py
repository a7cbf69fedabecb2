"""/oauth/auth as nginx, ingress-nginx and Traefik call it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from yarl import URL

from proxy.app import create_app
from proxy.config import load_settings
from proxy.keys import METRICS, PROVIDERS
from tests.conftest import COOKIE_SECRET, ProxyFactory, RunningProxy
from tests.support.fake_provider import FakeProvider
from tests.support.login import signed_in_browser
from tests.support.servers import free_port


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, fake_provider: FakeProvider) -> RunningProxy:
    return await make_proxy(
        issuer=fake_provider.issuer, headers={"pass_access_token": True}, auth_request={"front": "traefik"}
    )


@pytest.fixture
async def browser(proxy: RunningProxy) -> AsyncIterator[aiohttp.ClientSession]:
    async with await signed_in_browser(proxy.url) as b:
        yield b


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE"])
async def test_signed_in_is_202_with_identity(
    proxy: RunningProxy, browser: aiohttp.ClientSession, method: str
) -> None:
    async with browser.request(method, proxy.url + "/oauth/auth") as r:
        assert r.status == 202
        assert r.headers["X-Auth-Request-User"] == "user1"
        assert r.headers["X-Auth-Request-Email"] == "user1@example.test"
        assert r.headers["X-Auth-Request-Preferred-Username"] == "user1"
        assert r.headers["X-Auth-Request-Groups"] == "staff,dev"
        assert r.headers["X-Auth-Request-Access-Token"]
        assert await r.read() == b""


async def test_not_signed_in_is_401_without_redirect(proxy: RunningProxy) -> None:
    async with aiohttp.ClientSession() as anon:
        for headers in ({}, {"Accept": "text/html"}, {"Cookie": "_auth_proxy=forged.value"}):
            async with anon.get(proxy.url + "/oauth/auth", headers=headers, allow_redirects=False) as r:
                assert r.status == 401 and "X-Auth-Request-User" not in r.headers


async def test_traefik_can_ask_for_a_redirect_to_the_original_page(proxy: RunningProxy) -> None:
    host = proxy.url.removeprefix("http://")
    traefik = {"X-Forwarded-Method": "GET", "X-Forwarded-Proto": "http", "X-Forwarded-Host": host,
               "X-Forwarded-Uri": "/app/page?a=1&b=2"}  # fmt: skip
    async with aiohttp.ClientSession() as anon:
        async with anon.get(
            proxy.url + "/oauth/auth?redirect=1", headers=traefik, allow_redirects=False
        ) as r:
            assert r.status == 302
            location = r.headers["Location"]
        # absolute, on the browser's origin (Traefik would resolve a relative one against its own address)
        assert location == proxy.url + "/oauth/start?rd=" + quote(proxy.url + "/app/page?a=1&b=2", safe="")
        async with anon.get(location, allow_redirects=False) as r:
            assert r.status == 302  # on to the provider; the login state remembers the original URL
        traefik["X-Forwarded-Method"] = "POST"
        async with anon.get(
            proxy.url + "/oauth/auth?redirect=1", headers=traefik, allow_redirects=False
        ) as r:
            assert r.status == 401


@pytest.mark.parametrize(
    "query, status",
    [
        ("allowed_groups=dev", 202),
        ("allowed_groups=admins,staff", 202),
        ("allowed_groups=admins", 403),
        ("allowed_emails=user1@example.test", 202),
        ("allowed_emails=other@example.test", 403),
        ("allowed_email_domains=example.test", 202),
        ("allowed_email_domains=example.org", 403),
        ("allowed_groups=dev&allowed_email_domains=example.org", 403),
    ],
)
async def test_per_location_narrowing(
    proxy: RunningProxy, browser: aiohttp.ClientSession, query: str, status: int
) -> None:
    async with browser.get(proxy.url + "/oauth/auth?" + query) as r:
        assert r.status == status
        if status == 403:
            assert "X-Auth-Request-User" not in r.headers


async def test_store_down_is_503_never_202(make_proxy: ProxyFactory, fake_provider: FakeProvider) -> None:
    proxy = await make_proxy(
        issuer=fake_provider.issuer,
        session={"store": "redis", "redis_url": f"redis://127.0.0.1:{free_port()}/0"},
    )
    async with aiohttp.ClientSession() as client:
        # A well-formed cookie makes the proxy ask the store, which is down.
        from proxy.keys import COOKIES
        from proxy.sessions.base import Ticket

        cookie = proxy.app[COOKIES].encode(Ticket.new())
        async with client.get(proxy.url + "/oauth/auth", headers={"Cookie": f"_auth_proxy={cookie}"}) as r:
            assert r.status == 503
        async with client.get(proxy.url + "/ready") as r:
            assert r.status == 503 and (await r.json())["store"] == "unavailable"


async def test_a_check_is_answered_alike_however_the_path_is_spelled(
    make_proxy: ProxyFactory, fake_provider: FakeProvider
) -> None:
    """/oauth/auth goes through aiohttp's router like every path (no route ahead of it): a spelling
    the router reads as the same path gets the same answer, counted as an auth request, with its
    request id."""
    proxy = await make_proxy(issuer=fake_provider.issuer, as_deployed=True)
    async with aiohttp.ClientSession() as client:
        for target in ("/oauth/auth", "/oauth/%61uth", "/oauth/auth?redirect=0"):
            url = URL(proxy.url + target, encoded=True)
            async with client.get(url, headers={"X-Request-ID": "r-" + str(len(target))}) as r:
                assert r.status == 401, target
                assert r.headers["X-Request-ID"] == "r-" + str(len(target))
                assert r.headers["Cache-Control"] == "no-store"
    metrics = proxy.app[METRICS]
    metrics.flush()
    assert metrics.requests.labels("auth_request", "401")._value.get() == 3


async def test_the_applications_middlewares_see_auth_checks(
    aiohttp_server: Any, fake_provider: FakeProvider
) -> None:
    """Nothing answers /oauth/auth behind the application's back: a middleware added to it runs."""
    settings = load_settings(
        None,
        provider={"issuer_url": fake_provider.issuer, "client_id": "proxy", "client_secret": "proxy-secret"},
        cookie={"secret": COOKIE_SECRET, "secure": False},
        session={"store": "memory"},
    )
    app = create_app(settings)
    seen: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        seen.append(request.path)
        return await handler(request)

    app.middlewares.append(record)
    server = await aiohttp_server(app, host="127.0.0.1")
    await app[PROVIDERS].default.discovery.discover()
    async with aiohttp.ClientSession() as client, client.get(server.make_url("/oauth/auth")) as r:
        assert r.status == 401
    assert seen == ["/oauth/auth"]
