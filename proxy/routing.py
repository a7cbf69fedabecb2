"""Which upstream a request goes to, and the URL it is sent to there. Pure (no I/O).

Longest prefix wins, chosen on the canonical path (``proxy.paths``); the raw path is forwarded as
written. :meth:`Router.route` refuses (:class:`PathRefused`, answered 400) a path that some kind of
server would read as another upstream's path (or as no upstream's: ``/api/..;/internal`` with only
``/api/``), or that leaves the upstream URL's base path once mapped onto it: each upstream sees only
paths under its prefix, judged by its rules.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

import aiohttp
from yarl import URL

from .config import UpstreamConfig
from .config.upstreams import file_root, static_status
from .cors import CorsPolicy
from .paths import READERS, canonical_path, fold_case, is_plain, readings
from .rewrite import Rewrite
from .tls import client_ssl
from .trusted_proxies import Network

CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Upstream:
    prefix: str
    url: URL
    timeout: float
    pass_host_header: bool
    case_insensitive: bool = False
    """The upstream reads paths without regard to case (IIS): the prefix matches case-folded."""
    ssl: ssl.SSLContext | bool = True
    """aiohttp's ``ssl=``: a context of ca_file/client_cert (``proxy.tls``), or True (system CAs)."""
    trusted_ips: tuple[Network, ...] = ()
    kind: Literal["http", "static", "file"] = "http"
    """http: proxied; static: answered ``status``; file: files under ``root`` (proxy.local_upstream)."""
    status: int = 0
    root: str = ""
    rewrite: Rewrite | None = None
    cors: CorsPolicy | None = None
    """Its own ``cors`` block's, else the global one's (proxy/cors.py)."""
    providers: frozenset[str] | None = None
    """Only principals of these providers (ids) may pass; ``None``: any provider's."""
    acr: tuple[str, ...] = ()
    """The ``acr`` values that satisfy its step-up requirement (empty: none)."""

    @classmethod
    def from_config(cls, cfg: UpstreamConfig, cors: CorsPolicy | None = None) -> Upstream:
        rewrite = cfg.rewrite.rewrite if cfg.rewrite is not None else None
        cors = cfg.cors.policy if cfg.cors is not None else cors
        common = (cfg.prefix, URL(cfg.url), cfg.timeout, cfg.pass_host_header, cfg.case_insensitive)
        access = {
            "trusted_ips": cfg.trusted_networks,
            "providers": frozenset(cfg.providers) if cfg.providers is not None else None,
            "acr": tuple(cfg.acr or ()),
            "cors": cors,
        }
        if cfg.url.startswith("static:"):
            return cls(*common, kind="static", status=static_status(cfg.url), **access)  # type: ignore[arg-type]
        if cfg.url.startswith("file:"):
            return cls(*common, kind="file", root=file_root(cfg.url), rewrite=rewrite, **access)  # type: ignore[arg-type]
        return cls(*common, client_ssl(cfg), rewrite=rewrite, **access)  # type: ignore[arg-type]

    @functools.cached_property
    def base(self) -> str:
        """The upstream URL's path without its trailing ``/`` (``""``: none, or not proxied)."""
        return self.url.raw_path.rstrip("/") if self.kind == "http" else ""

    def local_path(self, canonical: str) -> str:
        """For a file upstream: the (decoded) path under its directory, from the canonical path."""
        if self.rewrite is not None:
            return unquote(self.rewrite.apply(canonical), errors="surrogateescape")
        return canonical[len(self.prefix.rstrip("/")) :] or "/"  # matched: it starts with the prefix

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
        one without passes the path through unchanged. With a ``rewrite``, the canonical path
        rewritten (``proxy.rewrite``, :class:`~proxy.rewrite.RewriteRefused` if unsafe) is the path.
        """
        if raw_path[:1] != "/" or "#" in raw_path:  # Router.route refuses these first
            raise PathRefused("not an origin-form path", "target", raw_path[:64])
        if self.rewrite is not None:  # the canonical path, rewritten: RewriteRefused if unsafe
            path, sep, query = raw_path.partition("?")
            raw_path = self.rewrite.apply(canonical_path(path)) + sep + query
            return URL(str(self.url.origin()) + raw_path, encoded=True)
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
    def __init__(self, upstreams: Sequence[UpstreamConfig], cors: CorsPolicy | None = None) -> None:
        """``cors``: the global policy, for upstreams without a ``cors`` block of their own."""
        self._routes = sorted(
            (Upstream.from_config(u, cors) for u in upstreams), key=lambda u: len(u.prefix), reverse=True
        )

    def match(self, path: str, fold: bool = False) -> Upstream | None:
        """The upstream of a decoded path (longest prefix first)."""
        return next((u for u in self._routes if u.matches(path, fold)), None)

    def route(self, raw_path: str) -> Upstream | None:
        """The upstream of a request's raw path (query allowed): the one its canonical reading names,
        provided every reading (``proxy.paths.READERS``) names the same one and, mapped onto its
        base path, stays under it. :class:`PathRefused` otherwise."""
        if raw_path[:1] != "/" or "#" in raw_path:
            # An absolute-form target (``GET http://x/y``) or ``*``, or a fragment, which no client
            # sends: yarl would read them otherwise than the readers do (a fragment dropped, the
            # scheme glued to the upstream's host name).
            raise PathRefused("not an origin-form path", "target", raw_path[:64])
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
