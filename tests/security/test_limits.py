"""Request size limits: oversized headers and bodies are refused before any work is done on them.

The proxy runs as deployed (``server.max_header_bytes`` sets aiohttp's per-field limit). Headers:

  fields adding up to more than max_header_bytes (many cookies)  → 431, on own and proxied paths
  exactly max_header_bytes                                        → served
  one field longer than max_header_bytes                          → 400 from aiohttp's parser (it
      answers every parse error 400 and can't be told otherwise); its bytes stay out of the logs
  more than 128 fields                                            → 400 (parser)
  a request line over 8190 bytes                                  → 400 (parser)

Bodies (``server.max_body_bytes``, proxied; the proxy's own endpoints: 64 kB whatever it says):

  Content-Length over the limit                  → 413, the upstream never contacted
  Content-Length of 10^15 and no body at all     → 413 at once (nothing is waited for)
  Content-Length at the limit                    → passed through whole
  chunked, over the limit in the first burst     → 413, the upstream never contacted
  chunked, trickled past the limit               → 413; the upstream's read of the body fails (the
                                                   connection is closed mid-body): never a "complete"
                                                   truncated body
  chunked, under the limit                       → passed through whole
  max_body_bytes: null (default)                 → no limit (tests/handlers/test_proxy.py streams 5 MB)
  back-channel logout or sign-out over 64 kB, by Content-Length or chunked → 413, nothing ended

A 413 is answered at once; aiohttp then reads and discards what the client still sends for up to
10 s before closing (a "lingering close", so that the client gets to read the answer).

Times (``server.header_read_timeout``, default 10 s; ``server.keepalive_timeout``, default 75 s; here
0.6 s and 1.5 s, on real sockets):

  a request head trickled a byte at a time            → the connection closed, no answer, once the
                                                        head has taken header_read_timeout (before
                                                        keepalive_timeout)
  the same on a kept-alive connection (2nd request)   → closed the same way
  a head sent in pieces, all within the limit         → served
  a connection idle after an answer                   → closed after keepalive_timeout, not before
  a connection opened and never used                  → closed after keepalive_timeout
  a WebSocket idle for longer than both               → still open and echoing
  an answer streamed for longer than both             → every chunk arrives
  an upload trickled for longer than both             → passed through whole (bodies aren't timed)
  either timeout 0, negative or not a duration        → refused at start-up, naming the key
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from proxy.config import ConfigError, load_settings
from proxy.limits import OWN_MAX_BODY, QuietParserErrors, quiet_parser_errors
from tests.conftest import ProxyFactory, RunningProxy
from tests.security.conftest import is_live
from tests.support.fake_provider import FakeProvider
from tests.support.login import session_cookie, signed_in_browser

LIMIT = 4096
BODY_LIMIT = 1000

SEEN = web.AppKey("seen", list)


async def record(request: web.Request) -> web.StreamResponse:
    """An upstream that notes whether each body arrived complete (and its size) or not."""
    try:
        body = await request.read()
    except BaseException as exc:  # cut off: the handler fails or is cancelled
        request.app[SEEN].append(type(exc).__name__)
        raise
    request.app[SEEN].append(len(body))
    return web.json_response({"size": len(body)})


@pytest.fixture
async def recorder(aiohttp_server: Any) -> tuple[list[Any], str]:
    app = web.Application(client_max_size=10 * 1024 * 1024)
    app[SEEN] = []
    app.router.add_route("*", "/{tail:.*}", record)
    server = await aiohttp_server(app, host="127.0.0.1")
    return app[SEEN], str(server.make_url("")).rstrip("/")


@pytest.fixture
async def limited(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, recorder: tuple[list[Any], str]
) -> RunningProxy:
    return await make_proxy(
        issuer=fake_provider.issuer,
        upstream=recorder[1],
        as_deployed=True,
        server={"max_header_bytes": LIMIT, "max_body_bytes": BODY_LIMIT},
    )


@pytest.fixture
async def browser(limited: RunningProxy) -> AsyncIterator[aiohttp.ClientSession]:
    async with await signed_in_browser(limited.url) as b:
        yield b


async def raw(proxy: RunningProxy, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes as they are; the status and the head of the answer, which must come within 5 s."""
    host, _, port = proxy.url.removeprefix("http://").partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    finally:
        writer.close()
    return int(answer.split(b" ", 2)[1]), answer


def request_head(path: str = "/app", extra: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extra + b"\r\n"


# --- headers -------------------------------------------------------------------------------------


def cookies_of(total: int) -> dict[str, str]:
    """Cookie headers' worth of ``total`` bytes, in 1000-byte cookies (each field well under the limit)."""
    return {"Cookie": "; ".join(f"c{i}={'v' * 1000}" for i in range(total // 1000))}


@pytest.mark.parametrize("path", ["/app", "/oauth/start", "/oauth/userinfo", "/ping"])
async def test_headers_over_the_total_are_431(limited: RunningProxy, path: str) -> None:
    async with aiohttp.ClientSession() as client:
        headers = {"Accept": "text/html", "X-One": "a" * 2000, "X-Two": "b" * 2000}
        async with client.get(limited.url + path, headers=headers, allow_redirects=False) as r:
            assert r.status == 431
            assert "Request headers too large" in await r.text()
            assert r.headers["Connection"] == "close"


async def test_cookies_and_headers_over_the_total_are_431_for_api_clients_too(
    limited: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    headers = {"Accept": "application/json", "X-Other": "o" * 2000, **cookies_of(3000)}
    async with browser.get(limited.url + "/app", headers=headers) as r:
        assert r.status == 431 and (await r.json())["status"] == 431


async def test_headers_of_exactly_the_limit_are_served(limited: RunningProxy) -> None:
    base = request_head("/ping")
    used = sum(len(line) + 2 for line in base.split(b"\r\n")[1:-2])  # Host, Connection
    filler_name = b"X-Fill"
    filler = filler_name + b": " + b"f" * (LIMIT - used - len(filler_name) - 4)
    status, _ = await raw(limited, request_head("/ping", filler + b"\r\n"))
    assert status == 200
    status, _ = await raw(limited, request_head("/ping", filler + b"f\r\n"))
    assert status == 431


@pytest.fixture
def quiet(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    quiet_parser_errors()
    caplog.set_level(logging.DEBUG)
    yield caplog
    logger = logging.getLogger("aiohttp.server")
    for f in [f for f in logger.filters if isinstance(f, QuietParserErrors)]:
        logger.removeFilter(f)


async def test_one_field_over_the_limit_is_400_and_stays_out_of_the_logs(
    limited: RunningProxy, quiet: pytest.LogCaptureFixture
) -> None:
    secret = "ticket-payload-that-must-not-be-logged"
    status, _ = await raw(
        limited, request_head("/app", f"Cookie: _auth_proxy=1.{secret}{'x' * LIMIT}\r\n".encode())
    )

    assert status == 400
    assert secret not in quiet.text and not any(secret in str(r.exc_info) for r in quiet.records)
    refused = [r for r in quiet.records if r.name == "aiohttp.server"]
    assert refused and refused[0].levelname == "WARNING" and "LineTooLong" in refused[0].getMessage()


async def test_too_many_fields_is_400(limited: RunningProxy) -> None:
    status, _ = await raw(limited, request_head("/ping", b"".join(b"X-%d: 1\r\n" % i for i in range(130))))
    assert status == 400


async def test_request_line_over_8190_bytes_is_400(limited: RunningProxy) -> None:
    status, _ = await raw(limited, request_head("/ping?" + "q" * 9000))
    assert status == 400


# --- bodies --------------------------------------------------------------------------------------


async def chunks(total: int, size: int = 256, pause: float = 0.0) -> AsyncIterator[bytes]:
    """A chunked upload; with ``pause``, trickled (so the proxy forwards it piece by piece)."""
    for start in range(0, total, size):
        yield b"u" * min(size, total - start)
        if pause:
            await asyncio.sleep(pause)


async def finished(seen: list[Any]) -> Any:
    """What the upstream made of the last body, once its handler is done."""
    for _ in range(200):
        if seen:
            return seen[-1]
        await asyncio.sleep(0.01)
    return None


async def test_content_length_over_the_limit_is_413_and_never_reaches_the_upstream(
    limited: RunningProxy, browser: aiohttp.ClientSession, recorder: tuple[list[Any], str]
) -> None:
    async with browser.post(limited.url + "/app", data=b"u" * (BODY_LIMIT + 1)) as r:
        assert r.status == 413 and r.headers["Connection"] == "close"

    assert recorder[0] == []


async def test_a_huge_content_length_is_413_at_once(
    limited: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    cookie = f"_auth_proxy={session_cookie(browser)}"
    head = request_head("/app", f"Cookie: {cookie}\r\nContent-Length: {10**15}\r\n".encode()).replace(
        b"GET", b"PUT"
    )
    status, _ = await raw(limited, head)  # no body follows: a proxy waiting for it would hang here
    assert status == 413


async def test_content_length_at_the_limit_passes_whole(
    limited: RunningProxy, browser: aiohttp.ClientSession, recorder: tuple[list[Any], str]
) -> None:
    async with browser.post(limited.url + "/app", data=b"u" * BODY_LIMIT) as r:
        assert r.status == 200 and (await r.json())["size"] == BODY_LIMIT


async def test_chunked_over_the_limit_in_one_burst_is_413_before_the_upstream_hears_of_it(
    limited: RunningProxy, browser: aiohttp.ClientSession, recorder: tuple[list[Any], str]
) -> None:
    async with browser.post(limited.url + "/app", data=chunks(5 * BODY_LIMIT)) as r:
        assert r.status == 413

    assert recorder[0] == []


async def test_chunked_over_the_limit_trickled_is_broken_off_and_413(
    limited: RunningProxy, browser: aiohttp.ClientSession, recorder: tuple[list[Any], str]
) -> None:
    async with browser.post(limited.url + "/app", data=chunks(5 * BODY_LIMIT, size=100, pause=0.005)) as r:
        assert r.status == 413

    outcome = await finished(recorder[0])  # the upstream's handler ends: its connection was closed
    assert outcome is not None and not isinstance(outcome, int), outcome  # no body, whole or truncated


async def test_chunked_under_the_limit_passes_whole(
    limited: RunningProxy, browser: aiohttp.ClientSession, recorder: tuple[list[Any], str]
) -> None:
    async with browser.post(limited.url + "/app", data=chunks(BODY_LIMIT)) as r:
        assert r.status == 200 and (await r.json())["size"] == BODY_LIMIT


OWN_ENDPOINTS = ["/oauth/backchannel_logout", "/oauth/sign_out"]


@pytest.mark.parametrize("path", OWN_ENDPOINTS)
@pytest.mark.parametrize("how", ["content-length", "chunked"])
async def test_own_endpoints_take_64_kb_whatever_the_config(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str, path: str, how: str
) -> None:
    """max_body_bytes is null here. (Sign-out reads a body only to find its CSRF token: allow_get false.)"""
    proxy = await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream, as_deployed=True, logout={"allow_get": False}
    )
    assert proxy.settings.server.max_body_bytes is None
    async with await signed_in_browser(proxy.url) as browser:
        form = f"logout_token={'t' * OWN_MAX_BODY}".encode()
        data: Any = form if how == "content-length" else chunks(len(form))
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        async with browser.post(proxy.url + path, data=data, headers=headers, allow_redirects=False) as r:
            assert r.status == 413

        assert await is_live(proxy, session_cookie(browser))


# --- times ---------------------------------------------------------------------------------------

HEAD_TIMEOUT = 0.6
IDLE_TIMEOUT = 1.5


@pytest.fixture
async def timed(make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str) -> RunningProxy:
    return await make_proxy(
        issuer=fake_provider.issuer,
        upstream=upstream,
        as_deployed=True,
        server={"header_read_timeout": "600ms", "keepalive_timeout": "1500ms"},
    )


async def connect(proxy: RunningProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, _, port = proxy.url.removeprefix("http://").partition(":")
    return await asyncio.open_connection(host, int(port))


async def closed_after(reader: asyncio.StreamReader, limit: float = 5.0) -> tuple[float, bytes]:
    """Seconds until the proxy closes the connection, and what it sent before."""
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(), limit)
    return time.monotonic() - started, data


async def trickle(writer: asyncio.StreamWriter, data: bytes, gap: float) -> None:
    """Send ``data`` a byte every ``gap`` seconds, until done or the proxy closes."""
    for i in range(len(data)):
        writer.write(data[i : i + 1])
        try:
            await writer.drain()
        except ConnectionError:
            return
        await asyncio.sleep(gap)


async def test_a_trickled_head_is_cut_off_after_the_header_timeout(timed: RunningProxy) -> None:
    reader, writer = await connect(timed)
    started = time.monotonic()
    sender = asyncio.ensure_future(
        trickle(writer, request_head("/ping", b"X-Slow: " + b"s" * 200 + b"\r\n"), 0.05)
    )
    try:
        _, data = await closed_after(reader)
    finally:
        sender.cancel()
        writer.close()
    took = time.monotonic() - started
    assert data == b""  # no answer at all
    assert HEAD_TIMEOUT - 0.1 < took < IDLE_TIMEOUT, took


async def test_a_trickled_second_head_on_a_kept_alive_connection_is_cut_off(timed: RunningProxy) -> None:
    reader, writer = await connect(timed)
    try:
        writer.write(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(next(v for k, v in (line.split(b": ", 1) for line in head.split(b"\r\n")[1:] if line)
                          if k.lower() == b"content-length"))  # fmt: skip
        await reader.readexactly(length)
        started = time.monotonic()
        sender = asyncio.ensure_future(
            trickle(writer, request_head("/ping", b"X-Slow: " + b"s" * 200 + b"\r\n"), 0.05)
        )
        _, data = await closed_after(reader)
        sender.cancel()
    finally:
        writer.close()
    took = time.monotonic() - started
    assert data == b"" and HEAD_TIMEOUT - 0.1 < took < IDLE_TIMEOUT, (took, data)


async def test_a_head_sent_in_pieces_within_the_limit_is_served(timed: RunningProxy) -> None:
    reader, writer = await connect(timed)
    try:
        head = request_head("/ping")
        for piece in (head[:10], head[10:20], head[20:]):
            writer.write(piece)
            await asyncio.sleep(HEAD_TIMEOUT / 4)
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200")


async def test_an_idle_kept_alive_connection_is_closed_after_the_keepalive_timeout(
    timed: RunningProxy,
) -> None:
    reader, writer = await connect(timed)
    try:
        writer.write(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        await asyncio.sleep(0.05)
        await reader.read(65536)  # the body
        took, data = await closed_after(reader)
    finally:
        writer.close()
    assert data == b"" and IDLE_TIMEOUT - 0.3 < took < IDLE_TIMEOUT + 1.5, took


async def test_a_connection_never_used_is_closed_after_the_keepalive_timeout(timed: RunningProxy) -> None:
    reader, writer = await connect(timed)
    try:
        took, data = await closed_after(reader)
    finally:
        writer.close()
    assert data == b"" and IDLE_TIMEOUT - 0.3 < took < IDLE_TIMEOUT + 1.5, took


async def test_a_websocket_outlives_both_timeouts(timed: RunningProxy) -> None:
    async with await signed_in_browser(timed.url) as browser:
        async with browser.ws_connect(timed.url + "/ws", origin=timed.url) as ws:
            assert (await ws.receive(timeout=5)).data == '{"user": "user1"}'
            await ws.send_str("before")
            assert (await ws.receive(timeout=5)).data == "echo:before"
            await asyncio.sleep(IDLE_TIMEOUT + HEAD_TIMEOUT + 0.5)  # silent both ways
            await ws.send_str("after")
            assert (await ws.receive(timeout=5)).data == "echo:after"


async def test_a_long_streamed_answer_outlives_both_timeouts(timed: RunningProxy) -> None:
    chunks, gap = 6, (IDLE_TIMEOUT + HEAD_TIMEOUT) / 4  # ~3 s in all, 0.5 s between chunks
    async with await signed_in_browser(timed.url) as browser:
        async with browser.get(f"{timed.url}/stream?chunks={chunks}&size=100&gap={gap}") as r:
            assert r.status == 200
            assert len(await r.read()) == chunks * 100


async def test_a_trickled_upload_outlives_both_timeouts(timed: RunningProxy) -> None:
    async with await signed_in_browser(timed.url) as browser:
        data = chunks(2000, size=250, pause=(IDLE_TIMEOUT + HEAD_TIMEOUT) / 6)
        async with browser.post(timed.url + "/echo", data=data) as r:
            assert r.status == 200
            assert (await r.json())["body_size"] == 2000


@pytest.mark.parametrize("key", ["header_read_timeout", "keepalive_timeout"])
@pytest.mark.parametrize("value", [0, -1, "0s", "soon", "inf"])
def test_bad_timeouts_are_refused_at_start_up(key: str, value: Any) -> None:
    base = {
        "provider": {"issuer_url": "https://idp.example", "client_id": "proxy", "client_secret": "s"},
        "cookie": {"secret": "x" * 32, "secure": False},
        "session": {"store": "memory"},
    }
    with pytest.raises(ConfigError, match=key):
        load_settings(None, **{**base, "server": {key: value}})


def test_timeout_defaults() -> None:
    from proxy.config import ServerConfig

    assert (ServerConfig().header_read_timeout, ServerConfig().keepalive_timeout) == (10.0, 75.0)
