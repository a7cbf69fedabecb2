"""Request size and time limits, and keeping the bytes of refused requests out of the logs.

Each limit is enforced where the answer can be most precise:

- **aiohttp's HTTP parser** (:func:`runner_options`, given to the ``AppRunner``): a single header field
  longer than ``server.max_header_bytes``, a request line over 8190 bytes or more than 128 header
  fields is refused with **400** and the connection closed, before any handler runs. aiohttp answers
  every parse error with 400 and offers no hook to choose the status, so 431 can't be had there.
- **the** ``limits`` **middleware** (``proxy.middlewares``): header fields adding up to more than
  ``server.max_header_bytes`` → **431**; a ``Content-Length`` over the body limit → **413**, before a
  byte of the body is read. The body limit is ``server.max_body_bytes`` for proxied requests (``None``:
  none) and :data:`OWN_MAX_BODY` for the proxy's own endpoints, whatever the configuration.
- **bodies without a length** (chunked): the proxy's own endpoints read them with aiohttp's
  ``client_max_size`` set to :data:`OWN_MAX_BODY` (413); proxied uploads stream through
  :class:`CappedBody`, which breaks the upload off at the limit, so the upstream sees an unfinished
  body (never one cut short and passed off as complete), and the client gets 413.

Times (slow clients: a connection is held only while it is used):

- **the request head**: from its first byte, a request's line and headers must all arrive within
  ``server.header_read_timeout``, else the connection is closed without an answer (slowloris: a head
  sent a byte at a time). aiohttp has no such timeout, and its only one for the head is its
  keep-alive timer, which starts when the connection opens or the last answer ends and is not reset by
  bytes arriving. :func:`guarded_protocols` adds it with public APIs only: ``web.Server`` is the
  protocol factory aiohttp documents for ``loop.create_server``, and this wraps each protocol it makes
  in a :class:`HeadGuard`, which sees the bytes first. The front layer (``proxy.middlewares``) tells
  the guard when a head is complete (the request reached its handler: :func:`heads_up`) and when
  its handling ends. While a request is handled (its body, a WebSocket, a streamed answer) the
  guard never acts.
- **idle connections**: ``server.keepalive_timeout`` is aiohttp's own (``keepalive_timeout``, given
  to the ``AppRunner``): a connection with no request under way, just opened or after an answer, is
  closed after it.

aiohttp logs a request its parser refuses at ERROR with a traceback quoting the first 100 bytes of
the offending line: for an oversized ``Cookie`` header, that is the session cookie.
:class:`QuietParserErrors` keeps the fact and drops the bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import StreamReader, web
from aiohttp.http_exceptions import HttpProcessingError

from . import pages
from .config import ServerConfig

log = logging.getLogger(__name__)

OWN_MAX_BODY = 64 * 1024
"""The proxy's own POST endpoints (sign-out, back-channel logout) need a few kB at most."""
_CHUNK = 65536


def runner_options(server: ServerConfig) -> dict[str, Any]:
    """Keyword arguments for ``web.AppRunner`` (``proxy.workers.serve``): the parser accepts any
    single field that fits in the total, so that the total can be judged (and answered 431) by the
    front layer; idle connections are closed after ``keepalive_timeout``."""
    return {"max_field_size": server.max_header_bytes, "keepalive_timeout": server.keepalive_timeout}


class HeadGuard(asyncio.Protocol):
    """The protocol of one connection, in front of aiohttp's (``inner``): closes the connection when
    a request's head has been arriving for ``timeout`` seconds (from its first byte) and is still not
    complete. Every event is passed on to ``inner`` unchanged."""

    __slots__ = ("_inner", "_transport", "_timeout", "_timer", "_busy")

    def __init__(self, inner: asyncio.Protocol, timeout: float) -> None:
        self._inner, self._timeout = inner, timeout
        self._transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is None and not self._busy and data:  # the first byte of a head
            self._timer = asyncio.get_running_loop().call_later(self._timeout, self._expired)
        self._inner.data_received(data)

    def head_complete(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._busy = True

    def request_done(self) -> None:
        self._busy = False

    def _expired(self) -> None:
        self._timer = None
        if not self._busy and self._transport is not None:
            log.info(
                "closed a connection whose request head was still incomplete", extra={"event": "slow_head"}
            )
            self._transport.close()

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


def guarded_protocols(server: web.Server, timeout: float) -> Callable[[], HeadGuard]:
    """A protocol factory for ``loop.create_server``: each connection gets ``server``'s protocol
    behind a :class:`HeadGuard`."""
    return lambda: HeadGuard(server(), timeout)


def heads_up(request: web.BaseRequest) -> HeadGuard | None:
    """Tell the request's connection guard (if it has one) that the request's head is complete: its
    handling starts. The caller calls ``request_done()`` on what this returns when it ends."""
    transport = request.transport
    guard = transport.get_protocol() if transport is not None else None
    if not isinstance(guard, HeadGuard):
        return None
    guard.head_complete()
    return guard


def header_bytes(request: web.BaseRequest) -> int:
    """The size of the request's header fields as sent: ``name: value`` and CRLF for each."""
    size = 0
    for name, value in request.raw_headers:  # twice as fast as sum(map(len, chain(...))) here
        size += len(name) + len(value) + 4
    return size


def refusal(request: web.BaseRequest, status: int) -> web.Response:
    """431 or 413 as a page (or JSON); the connection is closed rather than drained."""
    if status == 431:
        title, message = (
            "Request headers too large",
            "This request's headers are larger than this site accepts: usually too many or too large "
            "cookies. Clearing this site's cookies should help.",
        )
    else:
        title, message = (
            "Request too large",
            "The data sent with this request is larger than this site accepts.",
        )
    response = pages.error(request, status, title, message)
    response.force_close()
    return response


class CappedBody:
    """A request body streamed to the upstream, broken off (by raising) past ``limit`` bytes.

    Raising, not stopping, matters: a generator that simply ended would let the client library
    finish the chunked encoding, and the upstream would take a truncated upload for a whole one.
    """

    def __init__(self, content: StreamReader, limit: int) -> None:
        self._content = content
        self.limit = limit
        self.cut = False
        """Set when the body went past the limit (the upstream request then fails)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self._content.iter_chunked(_CHUNK):
            seen += len(chunk)
            if seen > self.limit:
                self.cut = True
                raise BodyTooLarge(f"request body over {self.limit} bytes")
            yield chunk


class BodyTooLarge(Exception):
    """A streamed request body went past ``server.max_body_bytes``."""


class QuietParserErrors(logging.Filter):
    """For records of ``aiohttp.server`` about a request its parser refused: a warning naming the
    error, without the traceback that quotes the request's bytes (cookies included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "-"
            record.msg = "refused a request from %s that HTTP parsing rejected: %s (%s)"
            record.args = (remote, type(exc).__name__, exc.code)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_parser_errors() -> None:
    """Install :class:`QuietParserErrors` on aiohttp's server logger (once)."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, QuietParserErrors) for f in logger.filters):
        logger.addFilter(QuietParserErrors())
