"""Which upstream a request goes to, and the URL it is sent to there. Pure (no I/O).

Longest prefix wins, chosen on the canonical path (``proxy.paths``); the raw path is forwarded as
written. :meth:`Router.route` refuses (:class:`PathRefused`, answered 400) a path that some kind of
server would read as another upstream's path (or as no upstream's: ``/api/..;/internal`` with only
``/api/``), or that leaves the upstream URL's base path once mapped onto it: each upstream sees only
paths under its prefix, judged by its rules.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

import aiohttp
from yarl import URL

from .config import UpstreamConfig
from .paths import READERS, fold_case, is_plain, readings

CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Upstream:
    prefix: str
    url: URL
    timeout: float
    pass_host_header: bool
    case_insensitive: bool = False
    """The upstream reads paths without regard to case (IIS): the prefix matches case-folded."""
    providers: frozenset[str] | None = None
    """Only principals of these providers (ids) may pass; ``None``: any provider's."""
    acr: tuple[str, ...] = ()
    """The ``acr`` values that satisfy its step-up requirement (empty: none)."""

    @classmethod
    def from_config(cls, cfg: UpstreamConfig) -> Upstream:
        return cls(
            cfg.prefix, URL(cfg.url), cfg.timeout, cfg.pass_host_header, cfg.case_insensitive,
            frozenset(cfg.providers) if cfg.providers is not None else None, tuple(cfg.acr or ()),
        )  # fmt: skip

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
        if raw_path[:1] != "/" or "#" in raw_path:  # Router.route refuses these first
            raise PathRefused("not an origin-form path", "target", raw_path[:64])
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
