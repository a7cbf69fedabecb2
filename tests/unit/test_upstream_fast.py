"""The lean upstream client (``proxy.upstream_fast``) against scripted raw-socket upstreams: keep-alive
reuse, stale connections, body framings, timeouts, broken and malformed answers, flow control."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from proxy.upstream_fast import FastPool, UpstreamError, request_head

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Upstream:
    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.script: Script | None = None
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        assert self.script is not None
        try:
            await self.script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        self.requests.append(head)
        return head


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()
    server = await asyncio.start_server(up._serve, "127.0.0.1", 0)
    up.port = server.sockets[0].getsockname()[1]
    yield up
    server.close()
    await server.wait_closed()


def keep_serving(up: Upstream, answer: bytes) -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await up.read_request(reader) is not None:
            writer.write(answer)
            await writer.drain()

    return script


def answer_once(up: Upstream, answer: bytes) -> Script:
    """One request answered with ``answer``, then the connection closed."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await up.read_request(reader)
        writer.write(answer)
        await writer.drain()

    return script


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello"


async def get(
    pool: FastPool, up: Upstream, path: str = "/", timeout: float | None = 5.0
) -> tuple[int, bytes]:
    head = request_head("GET", path, f"127.0.0.1:{up.port}", [("X-Forwarded-User", "alice")])
    answer = await pool.get("127.0.0.1", up.port, head, connect_timeout=2, read_timeout=timeout)
    try:
        return answer.status, await answer.read()
    finally:
        answer.release()


async def test_answers_and_keeps_the_connection_alive(upstream: Upstream) -> None:
    upstream.script = keep_serving(upstream, OK)
    pool = FastPool()
    for _ in range(3):
        assert await get(pool, upstream) == (200, b"hello")
    assert upstream.connections == 1
    assert upstream.requests[0].startswith(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nX-Forwarded-User: alice\r\n" in upstream.requests[0]
    pool.close()


async def test_a_connection_the_upstream_closed_while_idle_is_replaced(upstream: Upstream) -> None:
    upstream.script = answer_once(upstream, OK)
    pool = FastPool()
    assert await get(pool, upstream) == (200, b"hello")
    await asyncio.sleep(0.05)  # the close has arrived: the idle connection is known dead
    assert await get(pool, upstream) == (200, b"hello")
    assert upstream.connections == 2
    pool.close()


async def test_a_pooled_connection_that_dies_unanswered_is_retried_once(upstream: Upstream) -> None:
    async def answer_then_drop_the_next(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if upstream.connections == 1:
            await upstream.read_request(reader)
            writer.write(OK)
            await writer.drain()
            await upstream.read_request(
                reader
            )  # the next request: closed unanswered (a race with idle close)
            return
        await keep_serving(upstream, OK)(reader, writer)

    upstream.script = answer_then_drop_the_next
    pool = FastPool()
    assert await get(pool, upstream) == (200, b"hello")
    assert await get(pool, upstream) == (200, b"hello")
    assert upstream.connections == 2
    pool.close()


@pytest.mark.parametrize(
    ("answer", "body", "reused"),
    [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"abcde",
            True,
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b"", True),
        (b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n", b"", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", b"ok", False),
        (
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"ok",
            True,
        ),
    ],
)
async def test_body_framings(upstream: Upstream, answer: bytes, body: bytes, reused: bool) -> None:
    upstream.script = keep_serving(upstream, answer)
    pool = FastPool()
    status, got = await get(pool, upstream)
    assert got == body and status == int(answer.rsplit(b"HTTP/1.1 ", 1)[1][:3])
    await get(pool, upstream)
    assert upstream.connections == (1 if reused else 2)
    pool.close()


async def test_a_body_delimited_by_the_end_of_the_connection(upstream: Upstream) -> None:
    upstream.script = answer_once(upstream, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
    pool = FastPool()
    assert await get(pool, upstream) == (200, b"all of it")
    pool.close()


async def test_an_answer_cut_short_is_an_error_not_a_short_body(upstream: Upstream) -> None:
    upstream.script = answer_once(upstream, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
    pool = FastPool()
    with pytest.raises(UpstreamError):
        await get(pool, upstream)
    pool.close()


async def test_silence_is_a_timeout_and_the_connection_is_dropped(upstream: Upstream) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await upstream.read_request(reader)
        await asyncio.sleep(5)

    upstream.script = silent
    pool = FastPool()
    with pytest.raises(asyncio.TimeoutError):
        await get(pool, upstream, timeout=0.2)
    upstream.script = keep_serving(upstream, OK)
    assert await get(pool, upstream) == (200, b"hello")
    assert upstream.connections == 2
    pool.close()


async def test_malformed_answers_and_refused_connections_are_upstream_errors(upstream: Upstream) -> None:
    upstream.script = keep_serving(upstream, b"SPDY/9 what\r\n\r\n")
    pool = FastPool()
    with pytest.raises(UpstreamError):
        await get(pool, upstream)
    head = request_head("GET", "/", "127.0.0.1:9", [])
    with pytest.raises(UpstreamError):
        await pool.get("127.0.0.1", 9, head, connect_timeout=2, read_timeout=2)
    pool.close()


async def test_a_large_body_read_slowly_arrives_whole(upstream: Upstream) -> None:
    """Past 1 MiB buffered the client stops reading from the upstream until the reader catches up."""
    size = 5 * 1024 * 1024

    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await upstream.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for i in range(size // 65536):
            writer.write(bytes([i % 256]) * 65536)
            await writer.drain()

    upstream.script = big
    pool = FastPool()
    head = request_head("GET", "/big", "x", [])
    answer = await pool.get("127.0.0.1", upstream.port, head, connect_timeout=2, read_timeout=5)
    got, most = bytearray(), 0
    async for chunk in answer.chunks():
        got += chunk
        most = max(most, answer._conn.buffered)  # what waits in memory for the client
        if len(got) < 2 * 1024 * 1024:
            await asyncio.sleep(0.01)  # a slow client at first: the upstream could send it all meanwhile
    answer.release()
    assert len(got) == size and got[-1] == (size // 65536 - 1) % 256
    assert most < 2 * 1024 * 1024, most  # reading paused past 1 MiB (plus what was in flight)
    pool.close()


def test_the_request_head_keeps_a_given_host_and_is_utf8() -> None:
    head = request_head("GET", "/p?q=1", "up:8080", [("Host", "app.example"), ("X-Forwarded-User", "José")])
    assert head == "GET /p?q=1 HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-User: José\r\n\r\n".encode()
    assert request_head("GET", "/", "up:8080", []) == b"GET / HTTP/1.1\r\nHost: up:8080\r\n\r\n"


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/a b", []),
        ("/a\r\nX-Evil: 1", []),
        ("no-slash", []),
        ("/", [("X-A", "1\r\nX-Evil: 2")]),
        ("/", [("X-A", "1\nX-Evil: 2")]),
        ("/", [("X-A\r\nX-Evil", "2")]),
        ("/", [("X-A", "nul\x00")]),
    ],
)
def test_nothing_that_could_smuggle_a_request_is_sent(target: str, headers: list[tuple[str, str]]) -> None:
    with pytest.raises(UpstreamError):
        request_head("GET", target, "up", headers)
