"""Forwarding to upstreams: choose by longest path prefix, send (headers: ``proxy.forward_headers``),
relay the answer.

The upstream is chosen on the canonical path (``proxy.paths``), and the raw path is forwarded as
written. :meth:`Router.route` refuses (:class:`PathRefused`, 400) a path that some kind of server
would read as another upstream's path (or as no upstream's: ``/api/..;/internal`` with only
``/api/``), or that leaves the upstream URL's base path once mapped onto it: each upstream sees only
paths under its prefix, judged by its rules.

The request body is never read into memory (``request.content`` is handed to the client as the
upload), nor is the response (chunks are written as they arrive). 502/504 are answered only before
the response has started; after that a failure cuts the connection, which is what the client must see.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from . import pages
from .config import UpstreamConfig
from .forward_headers import response_headers
from .keys import METRICS
from .limits import CappedBody, refusal
from .logs import stamp_request_id
from .paths import READERS, fold_case, is_plain, readings
from .upstream_fast import FastPool, UpstreamError, plain_target, request_head

log = logging.getLogger(__name__)

_CHUNK = 65536


CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Upstream:
    prefix: str
    url: URL
    timeout: float
    pass_host_header: bool
    case_insensitive: bool = False
    """The upstream reads paths without regard to case (IIS): the prefix matches case-folded."""

    @classmethod
    def from_config(cls, cfg: UpstreamConfig) -> Upstream:
        return cls(cfg.prefix, URL(cfg.url), cfg.timeout, cfg.pass_host_header, cfg.case_insensitive)

    @functools.cached_property
    def base(self) -> str:
        """The upstream URL's path without its trailing ``/`` (``""``: none)."""
        return self.url.raw_path.rstrip("/")

    @functools.cached_property
    def _folded_prefix(self) -> str:
        return fold_case(self.prefix)

    @functools.cached_property
    def client_timeout(self) -> aiohttp.ClientTimeout:
        """Connect within 5 s, then ``timeout`` between reads; no limit on the whole exchange."""
        return aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=self.timeout)

    def matches(self, path: str, fold: bool = False) -> bool:
        """Whether ``path`` (decoded) is under the prefix; case-folded for a case-insensitive
        upstream, or when ``fold`` asks how one would read it."""
        prefix = self.prefix
        if fold or self.case_insensitive:
            path, prefix = fold_case(path), self._folded_prefix
        if prefix.endswith("/"):
            return path.startswith(prefix)
        return path == prefix or path.startswith(prefix + "/")

    def target(self, raw_path: str) -> URL:
        """The upstream URL for a request's raw (still percent-encoded) path and query.

        An upstream URL with a path (``http://app:8080/base``) replaces the matched prefix with it;
        one without passes the path through unchanged.
        """
        base = self.base
        if base:
            path, sep, query = raw_path.partition("?")
            rest = _after_prefix(path, self.prefix.rstrip("/"))
            raw_path = base + (rest if rest.startswith("/") or not rest else "/" + rest) + sep + query
        return URL(str(self.url.origin()) + raw_path, encoded=True)


def _after_prefix(raw_path: str, prefix: str) -> str:
    """What follows ``prefix`` in ``raw_path``, keeping its encoding. Routing matched the decoded
    path, so the prefix itself may be spelled with escapes (``/%61pp`` for ``/app``)."""
    if raw_path.startswith(prefix):
        return raw_path[len(prefix) :]
    segments = raw_path.split("/")
    for i in range(1, len(segments) + 1):
        head = "/".join(segments[:i])
        if unquote(head) == prefix:
            return raw_path[len(head) :]
    return raw_path


class PathRefused(ValueError):
    """A path some server reads outside the upstream it would be sent to (answered 400)."""

    def __init__(self, why: str, reader: str, reading: str) -> None:
        super().__init__(f"{why}: {reader} servers read it as {reading!r}")
        self.why, self.reader, self.reading = why, reader, reading


def _check_base(upstream: Upstream, raw_path: str) -> None:
    """:class:`PathRefused` if a reading of the forwarded path leaves the upstream's base path."""
    sent = upstream.target(raw_path).raw_path
    if is_plain(sent):
        return
    for reader, base, view in zip(READERS, readings(upstream.base), readings(sent), strict=True):
        if view != base and not view.startswith(base + "/"):
            raise PathRefused("outside the upstream's base path", reader.name, view)


class Router:
    def __init__(self, upstreams: Sequence[UpstreamConfig]) -> None:
        self._routes = sorted(
            (Upstream.from_config(u) for u in upstreams), key=lambda u: len(u.prefix), reverse=True
        )

    def match(self, path: str, fold: bool = False) -> Upstream | None:
        """The upstream of a decoded path (longest prefix first)."""
        return next((u for u in self._routes if u.matches(path, fold)), None)

    def route(self, raw_path: str) -> Upstream | None:
        """The upstream of a request's raw path (query allowed): the one its canonical reading names,
        provided every reading (``proxy.paths.READERS``) names the same one and, mapped onto its
        base path, stays under it. :class:`PathRefused` otherwise."""
        path = raw_path.partition("?")[0]
        if is_plain(path):
            views: tuple[str, ...] = (path,)
            chosen = self.match(path)
        else:
            views = readings(path)
            chosen = self.match(views[0])
            for reader, view in zip(READERS, views, strict=True):
                if "\x00" in view:
                    raise PathRefused("a NUL in the path", reader.name, view)
                if view != views[0] and self.match(view) is not chosen:
                    raise PathRefused("another application's path (or none's)", reader.name, view)
            if chosen is not None and chosen.base:
                _check_base(chosen, raw_path)
        if chosen is not None and chosen.case_insensitive and len(self._routes) > 1:
            for view in set(views):  # /ADMIN/x to a case-insensitive "/" is its /admin/x
                if self.match(view, fold=True) is not chosen:
                    raise PathRefused("another application's path", "case-insensitive", fold_case(view))
        return chosen

    def __bool__(self) -> bool:
        return bool(self._routes)


WHOLE_MAX = 64 * 1024
"""Answers up to this size (by their Content-Length) are relayed in one piece, larger or unknown
ones are streamed."""


def _whole(request: web.BaseRequest, up: _Answer) -> bool:
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
    fast: FastPool | None = None,
) -> web.StreamResponse:
    """``max_body``: a chunked upload is broken off past it (a Content-Length over it never gets here).
    ``no_store``: the answer must not be cached by the browser (signed-in content). ``fast``: the
    lean client for GETs without a body to plain-http upstreams (``proxy.upstream_fast``)."""
    metrics = request.app[METRICS]
    metrics.upstream_opened()
    try:
        started = time.perf_counter()
        try:
            up = await _send(request, http, upstream, headers, max_body, fast)
        except asyncio.TimeoutError:
            log.warning("upstream timed out", extra={"upstream": str(upstream.url)})
            return pages.error(request, 504, "The application did not answer in time", "Please try again.")
        except _BodyCut:
            log.warning("request body cut at %d bytes", max_body, extra={"event": "refused", "status": 413})
            return refusal(request, 413)
        except _BROKEN as exc:
            log.warning("upstream unreachable: %s", type(exc).__name__, extra={"upstream": str(upstream.url)})
            return pages.error(
                request, 502, "The application is unreachable", "Please try again in a moment."
            )
        metrics.upstream_answered(time.perf_counter() - started)
        try:
            return await _relay(request, up, no_store)
        finally:
            up.release()
    finally:
        metrics.upstream_closed()


_TRY_AGAIN = "Please try again in a moment."


class _BodyCut(Exception):
    """The client's chunked upload went past ``server.max_body_bytes``."""


_BROKEN = (aiohttp.ClientError, OSError, UpstreamError)


class _Answer(Protocol):
    @property
    def status(self) -> int: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def content_length(self) -> int | None: ...

    def header_items(self) -> Iterable[tuple[str, str]]: ...
    def chunks(self) -> AsyncIterator[bytes]: ...
    async def read(self) -> bytes: ...
    def release(self) -> None: ...


class _AiohttpAnswer:
    """aiohttp's ``ClientResponse`` seen as an :class:`_Answer`."""

    def __init__(self, up: aiohttp.ClientResponse) -> None:
        self._up = up
        self.status, self.reason, self.content_length = up.status, up.reason, up.content_length

    def header_items(self) -> Iterable[tuple[str, str]]:
        return self._up.headers.items()

    def chunks(self) -> AsyncIterator[bytes]:
        return self._up.content.iter_chunked(_CHUNK)

    async def read(self) -> bytes:
        return await self._up.read()

    def release(self) -> None:
        self._up.release()


async def _send(
    request: web.Request,
    http: aiohttp.ClientSession,
    upstream: Upstream,
    headers: CIMultiDict[str],
    max_body: int | None,
    fast: FastPool | None,
) -> _Answer:
    url = upstream.target(request.raw_path)
    target = url.raw_path_qs
    if (
        fast is not None
        and request.method == "GET"
        and not request.body_exists
        and url.scheme == "http"
        and plain_target(target)
    ):
        host = url.raw_host or ""
        authority = f"{host}:{url.port}" if url.explicit_port else host
        head = request_head("GET", target, authority, headers.items())
        return await fast.get(
            host, url.port or 80, head, connect_timeout=CONNECT_TIMEOUT, read_timeout=upstream.timeout
        )
    capped = None
    if request.body_exists and max_body is not None and request.content_length is None:
        capped = CappedBody(request.content, max_body)
    data = capped or (request.content if request.body_exists else None)
    try:
        up = await http.request(
            request.method, url, headers=headers, data=data, allow_redirects=False,
            timeout=upstream.client_timeout,
        )  # fmt: skip
    except (aiohttp.ClientError, OSError):
        if capped is not None and capped.cut:
            raise _BodyCut() from None
        raise
    return _AiohttpAnswer(up)


async def _relay(request: web.Request, up: _Answer, no_store: bool) -> web.StreamResponse:
    out_headers = response_headers(up.header_items())
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
        async for chunk in up.chunks():
            await resp.write(chunk)
    except (*_BROKEN, asyncio.TimeoutError) as exc:
        # Too late for a 502: cut the connection so the client sees an incomplete response.
        log.warning("upstream failed mid-response: %s", type(exc).__name__)
        if request.transport is not None:
            request.transport.close()
        return resp
    await resp.write_eof()
    return resp
