"""CORS on the proxy path: preflights answered before sign-in, the policy's headers on proxied
answers (whole and streamed) and on the proxy's own 302/401/403/404/400, the upstream's own CORS
headers replaced, per-upstream blocks, and nothing changed where no policy applies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from tests.conftest import ProxyFactory, RunningProxy
from tests.support.fake_provider import FakeProvider
from tests.support.login import signed_in_browser

SPA = "https://spa.example.com"
OTHER = "https://other.example.com"


async def own_cors(request: web.Request) -> web.Response:
    """An upstream that sets CORS headers of its own (too permissive ones)."""
    return web.json_response(
        {"method": request.method, "origin": request.headers.get("Origin")},
        headers={"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": "true",
                 "Access-Control-Allow-Methods": "DELETE", "Vary": "Accept-Encoding", "X-Total": "3"},
    )  # fmt: skip


async def streamed(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Access-Control-Allow-Origin": "https://evil.example"})
    await resp.prepare(request)
    for _ in range(3):
        await resp.write(b"x" * 100_000)
    await resp.write_eof()
    return resp


@pytest.fixture
async def app_url(aiohttp_server: Any) -> str:
    app = web.Application()
    app.router.add_get("/stream", streamed)
    app.router.add_route("*", "/{tail:.*}", own_cors)
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, fake_provider: FakeProvider, app_url: str) -> RunningProxy:
    return await make_proxy(
        issuer=fake_provider.issuer,
        cors={
            "allowed_origins": [SPA],
            "allow_credentials": True,
            "allowed_methods": ["GET", "POST", "PUT"],
            "allowed_headers": ["Content-Type", "X-Requested-With"],
            "expose_headers": ["X-Total"],
            "max_age": 300,
        },  # fmt: skip
        upstreams=[
            {"prefix": "/", "url": app_url},
            {"prefix": "/admin/", "url": app_url, "allowed_groups": ["admins"]},
            {"prefix": "/public/", "url": app_url, "cors": {"allowed_origins": ["*"]}},
            {"prefix": "/nocors/", "url": app_url, "cors": {"allowed_origins": []}},
        ],
    )


@pytest.fixture
async def browser(proxy: RunningProxy) -> AsyncIterator[aiohttp.ClientSession]:
    async with await signed_in_browser(proxy.url) as b:
        yield b


def preflight(origin: str, method: str = "PUT", headers: str | None = None) -> dict[str, str]:
    out = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        out["Access-Control-Request-Headers"] = headers
    return out


def vary(r: aiohttp.ClientResponse) -> set[str]:
    return {v.strip().lower() for value in r.headers.getall("Vary", []) for v in value.split(",")}


async def test_preflight_is_answered_without_a_session(proxy: RunningProxy) -> None:
    async with aiohttp.ClientSession() as anon:
        async with anon.options(proxy.url + "/api/items", headers=preflight(SPA, "PUT", "content-type")) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == SPA
            assert r.headers["Access-Control-Allow-Credentials"] == "true"
            assert r.headers["Access-Control-Allow-Methods"] == "GET, POST, PUT"
            assert r.headers["Access-Control-Allow-Headers"] == "content-type"
            assert r.headers["Access-Control-Max-Age"] == "300"
            assert {"origin", "access-control-request-method", "access-control-request-headers"} <= vary(r)
            assert "method" not in await r.text()  # never reached the upstream


@pytest.mark.parametrize(
    "headers",
    [
        preflight(OTHER),
        preflight("null"),
        preflight(SPA, "DELETE"),
        preflight(SPA, "put"),  # methods are case-sensitive
        preflight(SPA, "PUT", "Content-Type, Authorization"),
        preflight(SPA.upper() + ".evil.com"),
    ],
)
async def test_a_preflight_the_policy_refuses_gets_no_cors_headers(
    proxy: RunningProxy, headers: dict[str, str]
) -> None:
    async with aiohttp.ClientSession() as anon, anon.options(proxy.url + "/api/items", headers=headers) as r:
        assert r.status == 403
        assert not [h for h in r.headers if h.lower().startswith("access-control-")]
        assert "origin" in vary(r)


async def test_two_origin_headers_are_no_origin(proxy: RunningProxy) -> None:
    async with aiohttp.ClientSession() as anon:
        headers = [("Origin", SPA), ("Origin", SPA), ("Access-Control-Request-Method", "GET")]
        async with anon.options(proxy.url + "/x", headers=headers) as r:
            assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers


async def test_proxied_answers_carry_the_policy_not_the_upstreams(
    proxy: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    async with browser.get(proxy.url + "/api/items", headers={"Origin": SPA}) as r:
        assert r.status == 200 and (await r.json())["origin"] == SPA  # Origin passed on
        assert r.headers["Access-Control-Allow-Origin"] == SPA
        assert r.headers["Access-Control-Allow-Credentials"] == "true"
        assert r.headers["Access-Control-Expose-Headers"] == "X-Total"
        assert "Access-Control-Allow-Methods" not in r.headers  # the upstream's own, dropped
        assert {"origin", "accept-encoding"} <= vary(r)
        assert len(r.headers.getall("Vary")) == 1
    async with browser.get(proxy.url + "/api/items", headers={"Origin": OTHER}) as r:
        assert r.status == 200  # CORS is the browser's to enforce: the answer just lacks the headers
        assert not [h for h in r.headers if h.lower().startswith("access-control-")]
        assert "origin" in vary(r)


async def test_streamed_answers_get_them_before_the_headers_go(
    proxy: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    async with browser.get(proxy.url + "/stream", headers={"Origin": SPA}) as r:
        assert len(await r.read()) == 300_000
        assert r.headers["Access-Control-Allow-Origin"] == SPA


async def test_the_proxys_own_answers_carry_them(proxy: RunningProxy, browser: aiohttp.ClientSession) -> None:
    async with aiohttp.ClientSession() as anon:
        async with anon.get(proxy.url + "/page", headers={"Origin": SPA, "Accept": "text/html"},
                            allow_redirects=False) as r:  # fmt: skip
            assert r.status == 302 and r.headers["Access-Control-Allow-Origin"] == SPA
        async with anon.post(proxy.url + "/api", headers={"Origin": SPA, "Accept": "application/json"}) as r:
            assert r.status == 401 and r.headers["Access-Control-Allow-Origin"] == SPA
            assert r.headers["Access-Control-Allow-Credentials"] == "true" and "origin" in vary(r)
        async with anon.get(URL(proxy.url + "/a/..;/admin/", encoded=True), headers={"Origin": SPA}) as r:
            assert r.status == 400 and r.headers["Access-Control-Allow-Origin"] == SPA
    async with browser.get(
        proxy.url + "/admin/x", headers={"Origin": SPA, "Accept": "application/json"}
    ) as r:
        assert r.status == 403 and r.headers["Access-Control-Allow-Origin"] == SPA


async def test_any_origin_without_credentials_is_a_star(proxy: RunningProxy) -> None:
    async with aiohttp.ClientSession() as anon:
        async with anon.options(proxy.url + "/public/x", headers=preflight(OTHER, "GET")) as r:
            assert r.status == 204 and r.headers["Access-Control-Allow-Origin"] == "*"
            assert "Access-Control-Allow-Credentials" not in r.headers


async def test_without_a_policy_nothing_changes(proxy: RunningProxy, browser: aiohttp.ClientSession) -> None:
    async with browser.get(proxy.url + "/nocors/x", headers={"Origin": SPA}) as r:
        assert r.headers["Access-Control-Allow-Origin"] == "*"  # the upstream's own, as it sent it
        assert "origin" not in vary(r)
    async with aiohttp.ClientSession() as anon:
        headers = {**preflight(SPA), "Accept": "application/json"}
        async with anon.options(proxy.url + "/nocors/x", headers=headers) as r:
            assert r.status == 401  # a preflight needs a session there (or skip_auth_preflight)
