"""A lean HTTP/1.1 client for the commonest upstream request: a GET without a body to a plain-http
upstream. Everything else (bodies, HEAD, https, WebSockets) goes through aiohttp's client.

Why: aiohttp's ``ClientSession.request`` spends ~65 us of CPU per request on machinery a proxy
doesn't use (redirects, cookie jars, auto headers, traces, request/response objects), a third of a
proxied request. Here a request is one ``write`` of bytes built from the already-filtered headers
on a pooled keep-alive connection, and the answer is parsed by httptools (llhttp, the parser of
Node.js; the MagicStack package uvicorn uses).

- **Pool**: idle keep-alive connections per upstream (host, port), at most ``max_idle`` kept; a
  connection goes back only after a complete answer that allows keep-alive.
- **Stale connections**: an idle connection the upstream has closed meanwhile is skipped; one that
  closes before the first byte of the answer is retried once on a new connection (GET is
  idempotent), as browsers and aiohttp do.
- **Timeouts**: connecting (``connect_timeout``) and each wait for bytes (``read_timeout``) raise
  :class:`asyncio.TimeoutError`; the connection is then closed, never reused.
- **Flow control**: the body is read as the client takes it; past 1 MiB buffered, reading from the
  upstream pauses until the client has taken it.
- **Errors**: :class:`UpstreamError` for anything broken (refused, reset, malformed); the caller
  answers 502 (or cuts the client's connection when it already streams).
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import cast

import httptools

_HIGH_WATER = 1 << 20
_LOW_WATER = 1 << 18


class UpstreamError(Exception):
    """The upstream refused, reset, or answered something that isn't HTTP/1.1."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one exchange at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._wake: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._paused = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.reason = ""
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.keep_alive = False
        self.complete = False
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.received_any = False

    # --- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's isn't an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        if self.complete:  # nothing was asked: not an answer we can place
            self._fail(UpstreamError("unexpected bytes from the upstream between requests"))
            return
        self.received_any = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"malformed answer: {exc}"))
            return
        if self.buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._notify()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done and not self.complete and not self._has_length():
            self.complete = True  # a body delimited by the end of the connection
        elif not self.complete:
            self._error = self._error or UpstreamError(
                f"connection closed by the upstream{f': {exc}' if exc else ''}"
            )
        self._notify()

    # --- httptools callbacks -----------------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        self.reason = status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        code = self._parser.get_status_code()
        if 100 <= code < 200:  # an interim answer (103 Early Hints): the real one follows
            self.headers = []
            return
        self.status = code
        self.keep_alive = self._parser.should_keep_alive()  # (not reliable once the message is complete)
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        if self.headers_done:
            self.complete = True

    # --- the exchange ------------------------------------------------------------------------------

    def _has_length(self) -> bool:
        for name, value in self.headers:
            low = name.lower()
            if low == b"content-length" or (low == b"transfer-encoding" and b"chunked" in value.lower()):
                return True
        return self.status in (204, 304)

    def _notify(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        self._error = exc
        if self.transport is not None:
            self.transport.close()
        self.closed = True
        self._notify()

    async def _wait(self, timeout: float | None) -> None:
        if self._error is not None:
            raise self._error
        self._wake = self._loop.create_future()
        timer = self._loop.call_later(timeout, self._timed_out) if timeout is not None else None
        try:
            await self._wake
        finally:
            self._wake = None
            if timer is not None:
                timer.cancel()
        if self._error is not None:
            raise self._error

    def _timed_out(self) -> None:
        self._fail(asyncio.TimeoutError())

    async def exchange(self, head: bytes, read_timeout: float | None) -> None:
        """Send ``head`` (a request without a body) and wait for the answer's headers."""
        self._reset()
        assert self.transport is not None
        self.transport.write(head)
        while not self.headers_done:
            await self._wait(read_timeout)

    async def chunks(self, read_timeout: float | None) -> AsyncIterator[bytes]:
        while True:
            while self.body:
                chunk = self.body.popleft()
                self.buffered -= len(chunk)
                if self._paused and self.buffered < _LOW_WATER and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                yield chunk
            if self.complete:
                return
            await self._wait(read_timeout)

    @property
    def reusable(self) -> bool:
        return self.complete and not self.closed and not self.body and self.keep_alive

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class FastResponse:
    """An upstream's answer: status, reason, headers; the body by :meth:`read` or :meth:`chunks`;
    :meth:`release` hands the connection back (or closes it) and must always be called."""

    def __init__(self, pool: FastPool, key: tuple[str, int], conn: _Connection, read_timeout: float | None):
        self._pool, self._key, self._conn, self._timeout = pool, key, conn, read_timeout
        self._released = False
        self.status = conn.status
        self.reason = conn.reason
        self.raw_headers = conn.headers
        self.content_length: int | None = None
        for name, value in conn.headers:
            if name.lower() == b"content-length":
                try:
                    self.content_length = int(value)
                except ValueError:
                    raise UpstreamError("malformed Content-Length") from None

    def header_items(self) -> Iterable[tuple[str, str]]:
        return ((n.decode("latin-1"), v.decode("latin-1")) for n, v in self.raw_headers)

    def chunks(self) -> AsyncIterator[bytes]:
        return self._conn.chunks(self._timeout)

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._pool.give_back(self._key, self._conn)


class FastPool:
    """Keep-alive connections to plain-http upstreams (see the module's docstring)."""

    def __init__(self, max_idle: int = 64) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._max_idle = max_idle

    async def get(
        self, host: str, port: int, head: bytes, *, connect_timeout: float, read_timeout: float | None
    ) -> FastResponse:
        """Send ``head`` (a complete request without a body) and return the answer once its headers
        are in. Raises :class:`UpstreamError` or :class:`asyncio.TimeoutError`."""
        key = (host, port)
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.closed:
                continue
            try:
                await conn.exchange(head, read_timeout)
            except UpstreamError:
                if conn.received_any:
                    raise  # it had started answering: not a stale connection, a broken answer
                conn.close()  # closed by the upstream while idle: once more on a new connection
                break
            except BaseException:
                conn.close()
                raise
            return FastResponse(self, key, conn, read_timeout)
        conn = await self._connect(host, port, connect_timeout)
        try:
            await conn.exchange(head, read_timeout)
        except BaseException:
            conn.close()
            raise
        return FastResponse(self, key, conn, read_timeout)

    async def _connect(self, host: str, port: int, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(lambda: _Connection(loop), host, port)
        except OSError as exc:
            raise UpstreamError(f"cannot connect: {exc}") from exc
        return conn

    def give_back(self, key: tuple[str, int], conn: _Connection) -> None:
        idle = self._idle.setdefault(key, [])
        if conn.reusable and len(idle) < self._max_idle:
            idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


_TARGET = re.compile(r"/[\x21-\x7e]*")


def plain_target(target: str) -> bool:
    """An origin-form target of printable ASCII (what this client sends; anything else, such as
    raw UTF-8 a lax client put in its path, is left to aiohttp's client)."""
    return _TARGET.fullmatch(target) is not None


def request_head(method: str, target: str, host: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """The request line and headers (``Host`` added unless given), UTF-8 as aiohttp sends them.
    Raises :class:`UpstreamError` rather than send a target that isn't :func:`plain_target` or a
    header with a line break (request smuggling), as aiohttp's client refuses them."""
    if not plain_target(target):
        raise UpstreamError("refusing to send a request target with spaces or control characters")
    lines = [f"{method} {target} HTTP/1.1"]
    has_host = False
    for name, value in headers:
        if not has_host and name.lower() == "host":
            has_host = True
        lines.append(f"{name}: {value}")
    if not has_host:
        lines.insert(1, f"Host: {host}")
    text = "\r\n".join(lines)
    breaks = len(lines) - 1  # exactly the separators: a CR, LF or NUL in a name or value shows up here
    if text.count("\r") != breaks or text.count("\n") != breaks or "\x00" in text:
        raise UpstreamError("refusing to send a header with a line break")
    return (text + "\r\n\r\n").encode()
