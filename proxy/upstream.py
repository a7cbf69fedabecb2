"""Forwarding to upstreams: choose by longest path prefix, filter headers, stream bodies both ways.

The request body is never read into memory (``request.content`` is handed to the client as the
upload), nor is the response (chunks are written as they arrive). 502/504 are answered only before
the response has started; after that a failure cuts the connection, which is what the client must see.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from . import pages
from .config import UpstreamConfig
from .keys import METRICS, REQUEST_ID
from .limits import CappedBody, refusal
from .logs import stamp_request_id
from .sessions.base import Identity
from .upstream_fast import FastPool, UpstreamError, plain_target, request_head

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection",
        "TE", "Trailer", "Transfer-Encoding", "Upgrade",
    )
)  # fmt: skip

IDENTITY_HEADERS = (
    "X-Forwarded-User",
    "X-Forwarded-Email",
    "X-Forwarded-Preferred-Username",
    "X-Forwarded-Groups",
    "X-Forwarded-Groups-Truncated",
)
"""What the upstream may trust; any copy a client sends is dropped before ours are added."""
_SPOOFABLE = frozenset(h.lower() for h in IDENTITY_HEADERS)
_SPOOFABLE_PREFIXES = ("x-auth-request-",)
_FORWARDING = frozenset(
    ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-forwarded-prefix",
     "x-real-ip", "forwarded")
)  # fmt: skip
"""Believed only from a trusted front proxy (``server.trust_forwarded_headers``)."""
_CHUNK = 65536


CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Upstream:
    prefix: str
    url: URL
    timeout: float
    pass_host_header: bool

    @classmethod
    def from_config(cls, cfg: UpstreamConfig) -> Upstream:
        return cls(cfg.prefix, URL(cfg.url), cfg.timeout, cfg.pass_host_header)

    @functools.cached_property
    def client_timeout(self) -> aiohttp.ClientTimeout:
        """Connect within 5 s, then ``timeout`` between reads; no limit on the whole exchange."""
        return aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=self.timeout)

    def matches(self, path: str) -> bool:
        if self.prefix.endswith("/"):
            return path.startswith(self.prefix)
        return path == self.prefix or path.startswith(self.prefix + "/")

    def target(self, raw_path: str) -> URL:
        """The upstream URL for a request's raw (still percent-encoded) path and query.

        An upstream URL with a path (``http://app:8080/base``) replaces the matched prefix with it;
        one without passes the path through unchanged.
        """
        base = self.url.raw_path.rstrip("/")
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


class Router:
    def __init__(self, upstreams: Sequence[UpstreamConfig]) -> None:
        self._routes = sorted(
            (Upstream.from_config(u) for u in upstreams), key=lambda u: len(u.prefix), reverse=True
        )

    def match(self, path: str) -> Upstream | None:
        return next((u for u in self._routes if u.matches(path)), None)

    def __bool__(self) -> bool:
        return bool(self._routes)


def _connection_listed(headers: Iterable[tuple[str, str]]) -> set[str]:
    listed: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            listed.update(t.strip().lower() for t in value.split(",") if t.strip())
    return listed


def _drop_cookies(value: str, names: frozenset[str]) -> str:
    kept = [c for c in value.split(";") if c.strip() and c.split("=", 1)[0].strip() not in names]
    return ";".join(kept).strip()


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _clean(value: str) -> str:
    """Without control characters (a header value can't carry them)."""
    return _CONTROL.sub("", value)


@functools.lru_cache(maxsize=16_384)
def groups_value(groups: tuple[str, ...], max_bytes: int | None) -> tuple[str, bool]:
    """The comma-separated groups, cut to the whole names that fit in ``max_bytes``; and whether
    anything was cut. Memoised: the same user's groups go out with each of their requests."""
    value = _clean(",".join(groups))
    if max_bytes is None or len(value.encode()) <= max_bytes:
        return value, False
    kept: list[str] = []
    size = 0
    for group in groups:
        cost = len(_clean(group).encode()) + (1 if kept else 0)
        if size + cost > max_bytes:
            break
        kept.append(_clean(group))
        size += cost
    return ",".join(kept), True


@functools.lru_cache(maxsize=16_384)
def identity_headers(
    identity: Identity, max_groups_bytes: int | None = 2048, prefix: str = "X-Forwarded-"
) -> Mapping[str, str]:
    """The identity headers: ``X-Forwarded-*`` to upstreams, ``X-Auth-Request-*`` in ``/oauth/auth``'s
    answer; control characters dropped, groups cut to ``max_groups_bytes``. Memoised (read-only):
    the same user's headers go out with each of their requests."""
    out = {f"{prefix}User": _clean(identity.user)}
    if identity.email:
        out[f"{prefix}Email"] = _clean(identity.email)
    if identity.preferred_username:
        out[f"{prefix}Preferred-Username"] = _clean(identity.preferred_username)
    if identity.groups:
        value, truncated = groups_value(identity.groups, max_groups_bytes)
        out[f"{prefix}Groups"] = value
        if truncated:
            out[f"{prefix}Groups-Truncated"] = "true"
    return MappingProxyType(out)


def upstream_request_headers(
    request: web.BaseRequest,
    upstream: Upstream,
    identity: Identity | None,
    *,
    drop_cookies: frozenset[str],
    trust_forwarded: bool,
    scheme: str,
    host: str,
    max_groups_bytes: int | None = 2048,
) -> CIMultiDict[str]:
    listed = _connection_listed(request.headers.items())
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        low = name.lower()
        # Compare with "_" read as "-": WSGI/CGI upstreams (Django, Flask, PHP) see X_Forwarded_User
        # and X-Forwarded-User as the same variable (cf. oauth2-proxy CVE-2025-64484).
        norm = low.replace("_", "-")
        if low in HOP_BY_HOP or low in listed or norm in _SPOOFABLE or norm.startswith(_SPOOFABLE_PREFIXES):
            continue
        if norm in _FORWARDING and (not trust_forwarded or low != norm):
            continue
        if low == "host" and not upstream.pass_host_header:
            continue
        if low == "cookie":
            value = _drop_cookies(value, drop_cookies)
            if not value:
                continue
        out.add(name, value)
    remote = request.remote or ""
    prior = out.popall("X-Forwarded-For", [])
    out["X-Forwarded-For"] = ", ".join([*prior, remote]) if prior else remote
    out["X-Forwarded-Proto"] = scheme
    out["X-Forwarded-Host"] = host
    out.popall("X-Request-ID", None)  # the client's, if it was unfit, was replaced by request_context
    if REQUEST_ID in request:
        out["X-Request-ID"] = request[REQUEST_ID]
    if identity is not None:
        out.update(identity_headers(identity, max_groups_bytes))
    return out


def response_headers(items: Iterable[tuple[str, str]]) -> CIMultiDict[str]:
    items = list(items)
    listed = _connection_listed(items)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in items:
        low = name.lower()
        if low in HOP_BY_HOP or low in listed:
            continue
        out.add(name, value)
    return out


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
