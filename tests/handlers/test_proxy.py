"""The data path: a signed-in browser's requests reach the upstream streamed, filtered and labelled."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from tests.conftest import ProxyFactory, RunningProxy
from tests.support.fake_provider import FakeProvider
from tests.support.login import signed_in_browser
from tests.support.servers import free_port
from tests.support.upstream_app import HOLD, make_upstream


@pytest.fixture
async def upstream_app(aiohttp_server: object) -> tuple[web.Application, str]:
    app = make_upstream()
    server = await aiohttp_server(app, host="127.0.0.1")  # type: ignore[operator]
    return app, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def proxy(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream_app: tuple[web.Application, str]
) -> RunningProxy:
    return await make_proxy(
        issuer=fake_provider.issuer,
        upstreams=[
            {"prefix": "/", "url": upstream_app[1]},
            {"prefix": "/slow", "url": upstream_app[1], "timeout": "300ms"},
            {"prefix": "/down", "url": f"http://127.0.0.1:{free_port()}"},
            {"prefix": "/mounted/", "url": upstream_app[1] + "/base/"},
        ],
    )


@pytest.fixture
async def browser(proxy: RunningProxy) -> AsyncIterator[aiohttp.ClientSession]:
    async with await signed_in_browser(proxy.url) as b:
        yield b


async def test_upload_is_streamed_intact(proxy: RunningProxy, browser: aiohttp.ClientSession) -> None:
    body = os.urandom(3 * 1024 * 1024 + 17)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 100_000):
            yield body[i : i + 100_000]

    async with browser.post(proxy.url + "/upload", data=chunks()) as r:
        seen = await r.json()
    assert seen["body_size"] == len(body)
    assert seen["body_sha256"] == hashlib.sha256(body).hexdigest()
    async with browser.put(proxy.url + "/upload", data=body[:1000]) as r:
        seen = await r.json()
    assert seen["method"] == "PUT" and seen["body_size"] == 1000
    assert dict(seen["headers"])["Content-Length"] == "1000" and not seen["chunked"]


async def test_download_is_streamed_not_buffered(
    proxy: RunningProxy, browser: aiohttp.ClientSession, upstream_app: tuple[web.Application, str]
) -> None:
    async with browser.get(proxy.url + "/held") as r:
        # The upstream is holding back its second chunk until we say so: the first must arrive now.
        first = await asyncio.wait_for(r.content.readexactly(len(b"first-chunk;")), timeout=10)
        assert first == b"first-chunk;"
        upstream_app[0][HOLD].set()
        assert await r.content.read() == b"second-chunk"


async def test_large_streamed_response(proxy: RunningProxy, browser: aiohttp.ClientSession) -> None:
    async with browser.get(proxy.url + "/stream?chunks=64&size=65536") as r:
        data = await r.read()
        assert r.headers["X-Upstream"] == "yes"
    assert len(data) == 64 * 65536 and data[:1] == b"\x00" and data[-1:] == bytes([63])


@pytest.mark.parametrize("size", [0, 1, 65536, 65537, 300_000])
async def test_answers_of_declared_length_arrive_whole_either_way(
    proxy: RunningProxy, browser: aiohttp.ClientSession, size: int
) -> None:
    """Up to 64 KiB they are relayed in one piece, above that streamed: the client can't tell."""
    async with browser.get(proxy.url + f"/sized?size={size}") as r:
        body = await r.read()
        assert r.status == 200 and r.headers["Content-Length"] == str(size) and r.headers["ETag"] == '"v1"'
    assert body == b"s" * size
    async with browser.head(proxy.url + f"/sized?size={size}") as r:
        assert r.status == 200 and r.headers["Content-Length"] == str(size)
        assert await r.read() == b""


async def test_a_small_answer_that_breaks_off_is_a_502(
    proxy: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    async with browser.get(proxy.url + "/sized?size=1000&sent=10", headers={"Accept": "text/html"}) as r:
        assert r.status == 502
        assert "broke off" in await r.text()


async def test_a_large_answer_that_breaks_off_is_cut_for_the_client_too(
    proxy: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    """Too late for a 502 once streaming: the client must see an incomplete answer, never a whole one."""
    with pytest.raises(aiohttp.ClientPayloadError):
        async with browser.get(proxy.url + "/sized?size=200000&sent=70000") as r:
            assert r.status == 200
            await r.read()


async def test_compressed_bodies_pass_untouched(proxy: RunningProxy, browser: aiohttp.ClientSession) -> None:
    async with browser.get(proxy.url + "/gzip", auto_decompress=False) as r:
        raw = await r.read()
        assert r.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(raw) == b"hello compressed world" * 100


async def test_headers_both_ways(proxy: RunningProxy, browser: aiohttp.ClientSession) -> None:
    spoof = {
        "X-Forwarded-User": "admin", "X-Forwarded-Email": "admin@corp", "X-Forwarded-Groups": "admins",
        "X-Auth-Request-User": "admin", "X-Forwarded-For": "6.6.6.6", "Connection": "keep-alive, X-Drop-Me",
        "X-Drop-Me": "1", "X-Keep-Me": "2", "Cookie": "app=1",
    }  # fmt: skip
    async with browser.get(proxy.url + "/echo?q=1", headers=spoof) as r:
        seen = await r.json()
    headers = dict(seen["headers"])
    assert headers["X-Forwarded-User"] == "user1"
    assert headers["X-Forwarded-Email"] == "user1@example.test"
    assert headers["X-Forwarded-Groups"] == "staff,dev"
    assert "X-Auth-Request-User" not in headers and "X-Drop-Me" not in headers
    assert headers["X-Keep-Me"] == "2"
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["Host"] == proxy.url.removeprefix("http://")
    assert "_auth_proxy" not in headers["Cookie"] and "app=1" in headers["Cookie"]
    assert [v for k, v in seen["headers"] if k == "X-Forwarded-User"] == ["user1"]
    async with browser.get(proxy.url + "/cookie") as r:
        assert r.cookies["app_cookie"].value == "v1"
        assert "X-Secret-Hop" not in r.headers


async def test_upstream_path_mapping(proxy: RunningProxy, browser: aiohttp.ClientSession) -> None:
    async with browser.get(URL(proxy.url + "/mounted/a%20b/c?x=%2F", encoded=True)) as r:
        assert (await r.json())["path_qs"] == "/base/a%20b/c?x=%2F"


async def test_websocket_is_relayed_with_identity(
    proxy: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    async with browser.ws_connect(proxy.url + "/ws", protocols=("chat",), origin=proxy.url) as ws:
        assert ws.protocol == "chat"
        assert json.loads(await ws.receive_str(timeout=5)) == {"user": "user1"}
        await ws.send_str("hi")
        assert await ws.receive_str(timeout=5) == "echo:hi"
        await ws.send_bytes(b"\x01\x02\x03")
        assert await ws.receive_bytes(timeout=5) == b"\x03\x02\x01"


async def test_websocket_needs_a_session(proxy: RunningProxy) -> None:
    async with aiohttp.ClientSession() as anon:
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            await anon.ws_connect(proxy.url + "/ws")
        assert exc.value.status == 401


async def test_upstream_down_is_502_and_slow_is_504(
    proxy: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    async with browser.get(proxy.url + "/down/x") as r:
        assert r.status == 502 and "unreachable" in await r.text()
    async with browser.get(proxy.url + "/slow?delay=5") as r:
        assert r.status == 504


async def test_own_paths_are_not_proxied(proxy: RunningProxy, browser: aiohttp.ClientSession) -> None:
    async with browser.get(proxy.url + "/oauth/nope") as r:
        assert r.status == 404
    async with browser.get(proxy.url + "/oauth/userinfo") as r:
        assert (await r.json())["preferred_username"] == "user1"


async def test_userinfo_without_session_is_401(proxy: RunningProxy) -> None:
    async with aiohttp.ClientSession() as anon, anon.get(proxy.url + "/oauth/userinfo") as r:
        assert r.status == 401


async def test_big_group_lists_are_cut_to_fit(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    fake_provider.claims["groups"] = [
        f"team-{i:04d}-platform-engineering-observability-squad" for i in range(300)
    ]
    proxy = await make_proxy(issuer=fake_provider.issuer, upstream=upstream)
    async with await signed_in_browser(proxy.url) as browser, browser.get(proxy.url + "/echo") as r:
        headers = dict((await r.json())["headers"])
    assert len(headers["X-Forwarded-Groups"]) <= 2048
    assert headers["X-Forwarded-Groups"].split(",")[0] == "team-0000-platform-engineering-observability-squad"
    assert all(g.endswith("squad") for g in headers["X-Forwarded-Groups"].split(","))
    assert headers["X-Forwarded-Groups-Truncated"] == "true"


async def test_no_store_keeps_signed_in_answers_out_of_the_browser_cache(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    proxy = await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream, headers={"no_store": True},
        authorization={"skip_auth_routes": ["GET=^/public"]},
    )  # fmt: skip
    async with await signed_in_browser(proxy.url) as browser:
        async with browser.get(proxy.url + "/cookie") as r:
            assert r.headers.getall("Cache-Control") == ["no-store"]
    async with aiohttp.ClientSession() as anon, anon.get(proxy.url + "/public") as r:
        assert r.status == 200 and "no-store" not in r.headers.get("Cache-Control", "")  # public: untouched
