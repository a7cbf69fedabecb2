"""Forwarding to upstreams: send to the one ``proxy.routing`` chose (headers:
``proxy.forward_headers``), relay the answer.

The request body is never read into memory (``request.content`` is handed to the client as the
upload), nor is the response (chunks are written as they arrive). 502/504 are answered only before
the response has started; after that a failure cuts the connection, which is what the client must see.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from . import pages
from .forward_headers import response_headers
from .keys import METRICS
from .limits import CappedBody, refusal
from .logs import stamp_request_id
from .routing import Upstream

log = logging.getLogger(__name__)

_CHUNK = 65536


WHOLE_MAX = 64 * 1024
"""Answers up to this size (by their Content-Length) are relayed in one piece, larger or unknown
ones are streamed."""


def _whole(request: web.BaseRequest, up: aiohttp.ClientResponse) -> bool:
    length = up.content_length
    return (
        length is not None
        and length <= WHOLE_MAX
        and request.method != "HEAD"
        and up.status >= 200
        and up.status not in (204, 304)
    )


async def forward_http(
    request: web.Request,
    http: aiohttp.ClientSession,
    upstream: Upstream,
    headers: CIMultiDict[str],
    max_body: int | None = None,
    no_store: bool = False,
    on_headers: Callable[[CIMultiDict[str]], None] | None = None,
) -> web.StreamResponse:
    """``max_body``: a chunked upload is broken off past it (a Content-Length over it never gets here).
    ``no_store``: the answer must not be cached by the browser (signed-in content). ``on_headers``:
    called with the answer's headers before they are sent (CORS)."""
    metrics = request.app[METRICS]
    metrics.upstream_opened()
    try:
        started = time.perf_counter()
        try:
            up = await _send(request, http, upstream, headers, max_body)
        except asyncio.TimeoutError:
            log.warning("upstream timed out", extra={"upstream": str(upstream.url)})
            return pages.error(request, 504, "The application did not answer in time", "Please try again.")
        except _BodyCut:
            log.warning("request body cut at %d bytes", max_body, extra={"event": "refused", "status": 413})
            return refusal(request, 413)
        except aiohttp.ClientSSLError as exc:
            log.warning(
                "upstream TLS failed (certificate not trusted, wrong name, client certificate refused): %s",
                exc, extra={"event": "upstream_tls", "upstream": str(upstream.url)},
            )  # fmt: skip
            return pages.error(request, 502, "The application is unreachable", _TRY_AGAIN)
        except _BROKEN as exc:
            log.warning("upstream unreachable: %s", type(exc).__name__, extra={"upstream": str(upstream.url)})
            return pages.error(
                request, 502, "The application is unreachable", "Please try again in a moment."
            )
        metrics.upstream_answered(time.perf_counter() - started)
        if up.status < 200:  # 101: no upgrade was asked for (aiohttp's client skips the other 1xx)
            up.close()
            log.warning("upstream switched protocols unasked", extra={"upstream": str(upstream.url)})
            return pages.error(request, 502, "The application answered wrongly", _TRY_AGAIN)
        try:
            return await _relay(request, up, no_store, on_headers)
        finally:
            up.release()
    finally:
        metrics.upstream_closed()


_TRY_AGAIN = "Please try again in a moment."


class _BodyCut(Exception):
    """The client's chunked upload went past ``server.max_body_bytes``."""


_BROKEN = (aiohttp.ClientError, OSError)


async def _send(
    request: web.Request,
    http: aiohttp.ClientSession,
    upstream: Upstream,
    headers: CIMultiDict[str],
    max_body: int | None,
) -> aiohttp.ClientResponse:
    url = upstream.target(request.raw_path)
    capped = None
    if request.body_exists and max_body is not None and request.content_length is None:
        capped = CappedBody(request.content, max_body)
    data = capped or (request.content if request.body_exists else None)
    try:
        up = await http.request(
            request.method, url, headers=headers, data=data, allow_redirects=False,
            timeout=upstream.client_timeout, ssl=upstream.ssl,
        )  # fmt: skip
    except (aiohttp.ClientError, OSError):
        if capped is not None and capped.cut:
            raise _BodyCut() from None
        raise
    return up


async def _relay(
    request: web.Request,
    up: aiohttp.ClientResponse,
    no_store: bool,
    on_headers: Callable[[CIMultiDict[str]], None] | None,
) -> web.StreamResponse:
    out_headers = response_headers(up.headers.items())
    if on_headers is not None:
        on_headers(out_headers)
    if no_store:
        for name in ("Cache-Control", "Expires", "Pragma", "ETag", "Last-Modified"):
            out_headers.popall(name, None)
        out_headers["Cache-Control"] = "no-store"
    if _whole(request, up):
        # A small answer of declared length: read it whole and send it with the headers in one
        # write (streaming it costs two or three, ~20% of a proxied request's CPU), and an
        # upstream that fails before its last byte can still get a proper 502.
        try:
            body = await up.read()
        except (*_BROKEN, asyncio.TimeoutError) as exc:
            log.warning("upstream failed mid-response: %s", type(exc).__name__)
            return pages.error(request, 502, "The application's answer broke off", "Please try again.")
        whole = web.Response(status=up.status, reason=up.reason, headers=out_headers, body=body)
        stamp_request_id(request, whole)
        return whole
    resp = web.StreamResponse(status=up.status, reason=up.reason, headers=out_headers)
    stamp_request_id(request, resp)
    await resp.prepare(request)
    try:
        async for chunk in up.content.iter_chunked(_CHUNK):
            await resp.write(chunk)
    except (*_BROKEN, asyncio.TimeoutError) as exc:
        # Too late for a 502: cut the connection so the client sees an incomplete response.
        log.warning("upstream failed mid-response: %s", type(exc).__name__)
        if request.transport is not None:
            request.transport.close()
        return resp
    await resp.write_eof()
    return resp
