"""Request size limits, and keeping the bytes of refused requests out of the logs.

Each limit is enforced where the answer can be most precise:

- **aiohttp's HTTP parser** (:func:`parser_options`, given to the ``AppRunner``): a single header field
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

aiohttp logs a request its parser refuses at ERROR with a traceback quoting the first 100 bytes of
the offending line: for an oversized ``Cookie`` header, that is the session cookie.
:class:`QuietParserErrors` keeps the fact and drops the bytes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import StreamReader, web
from aiohttp.http_exceptions import HttpProcessingError

from . import pages
from .config import ServerConfig

OWN_MAX_BODY = 64 * 1024
"""The proxy's own POST endpoints (sign-out, back-channel logout) need a few kB at most."""
_CHUNK = 65536


def parser_options(server: ServerConfig) -> dict[str, Any]:
    """Keyword arguments for ``web.AppRunner`` (``proxy.workers.serve``): the parser accepts any
    single field that fits in the total, so that the total can be judged (and answered 431) by the
    front layer."""
    return {"max_field_size": server.max_header_bytes}


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
