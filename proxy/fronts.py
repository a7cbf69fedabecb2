"""The original request as the front proxy (``auth_request.front``) reports it to ``/oauth/auth``. Pure.

Each front sends the original request line in headers of its own, set by the front itself so that a
client's copies are replaced. Only the configured front's headers are read; the others' are ignored,
whoever sent them. What each front sends (and so what is read):

=============  ==================  =======================  ======================================
front          method              path and query           scheme and host
=============  ==================  =======================  ======================================
nginx          X-Original-Method   X-Original-URI           X-Forwarded-Proto, X-Forwarded-Host
ingress-nginx  X-Original-Method   X-Auth-Request-Redirect  X-Original-URL, cut at the path
traefik        X-Forwarded-Method  X-Forwarded-Uri          X-Forwarded-Proto, X-Forwarded-Host
none           --                  --                       --
=============  ==================  =======================  ======================================

(nginx: our recipe, deploy/nginx/, sets them to ``$request_method``, ``$request_uri``, ``$scheme``,
``$http_host``; ingress-nginx's template sets X-Auth-Request-Redirect to ``$request_uri`` and
X-Original-URL to ``$scheme://$http_host$request_uri``; Traefik's forwardAuth sets its four itself.)

The path checked against public routes always comes from the header that carries ``$request_uri`` on
its own, never parsed out of a URL: a Host such as ``x/public?`` would move the path. The host is only
accepted when it is a plain ``host[:port]``; anything else (``#``, ``?``, ``/``, ``@``, spaces, escapes,
empty) makes the request "not public" and is never used for a redirect. A header the front sends once
that arrives twice (or, for ingress-nginx, an X-Original-URL that does not end with the path) is a
:class:`FrontConflict`: the request did not come the way the configuration says, so nothing is guessed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from multidict import CIMultiDictProxy

Front = Literal["none", "nginx", "ingress-nginx", "traefik"]
FRONTS: tuple[Front, ...] = ("none", "nginx", "ingress-nginx", "traefik")

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_AUTHORITY = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9A-Fa-f:.]{{2,45}}\])(?::([0-9]{{1,5}}))?")
_METHOD = re.compile(r"[A-Z]{1,20}")
_URI = re.compile(r"/[\x21-\x22\x24-\x7e]*")
"""Origin-form: no space, control or non-ASCII character, and no ``#`` (a client never sends a fragment,
and the front, this proxy and the upstream would each cut the path there or not)."""


@dataclass(frozen=True, slots=True)
class _Headers:
    method: str
    uri: str
    proto: str | None
    host: str | None
    url: str | None = None  # ingress-nginx: scheme and host only inside the full URL


_HEADERS: Mapping[str, _Headers] = {
    "nginx": _Headers("X-Original-Method", "X-Original-URI", "X-Forwarded-Proto", "X-Forwarded-Host"),
    "ingress-nginx": _Headers("X-Original-Method", "X-Auth-Request-Redirect", None, None, "X-Original-URL"),
    "traefik": _Headers("X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Proto", "X-Forwarded-Host"),
}


def headers_read(front: Front) -> tuple[str, ...]:
    """The header names the proxy reads from ``front`` (for docs and tests)."""
    spec = _HEADERS.get(front)
    if spec is None:
        return ()
    return tuple(h for h in (spec.method, spec.uri, spec.proto, spec.host, spec.url) if h is not None)


class FrontConflict(Exception):
    """The request carries conflicting copies of a header the front sends once."""

    def __init__(self, header: str, why: str) -> None:
        super().__init__(f"{header}: {why}")
        self.header = header
        self.why = why


class Original(NamedTuple):
    """The request the front asks about, as sent (no copy twice); each property checks its part and
    is ``None`` when it was not sent or is not usable. (A named tuple, checked lazily: built for every
    /oauth/auth request, and most need only some parts, or none.)"""

    raw_method: str | None = None
    raw_uri: str | None = None
    raw_proto: str | None = None
    raw_host: str | None = None

    @property
    def method(self) -> str | None:
        m = self.raw_method
        return m if m is not None and _METHOD.fullmatch(m) else None

    @property
    def uri(self) -> str | None:
        """The raw request target (``$request_uri``: path and query, still percent-encoded)."""
        u = self.raw_uri
        return u if u is not None and _URI.fullmatch(u) else None

    @property
    def origin(self) -> str | None:
        """``scheme://host[:port]`` of the browser's request, only when both parts are plain."""
        return _origin(self.raw_proto, self.raw_host)

    @property
    def url(self) -> str | None:
        origin, uri = self.origin, self.uri
        return origin + uri if origin is not None and uri is not None else None

    def public_candidate(self) -> tuple[str, str] | None:
        """``(method, uri)`` when a public route may apply: method, path and a plain host all known."""
        method, uri = self.method, self.uri
        if method is None or uri is None or self.origin is None:
            return None
        return method, uri


NOTHING = Original()


@functools.lru_cache(maxsize=1024)
def valid_authority(value: str) -> bool:
    """A plain ``host[:port]`` (a DNS name, an IPv4 address or a bracketed IPv6 address)."""
    match = _AUTHORITY.fullmatch(value)
    if match is None or len(value) > 260:
        return False
    port = match.group(1)
    return port is None or 0 < int(port) < 65536


def _one(headers: CIMultiDictProxy[str], name: str) -> str | None:
    values = headers.getall(name, ())
    if len(values) > 1:
        raise FrontConflict(name, f"sent {len(values)} times (the front sends it once)")
    return values[0] if values else None


def _origin(proto: str | None, host: str | None) -> str | None:
    if proto not in ("http", "https") or host is None or not valid_authority(host):
        return None
    return f"{proto}://{host.lower()}"


def read_original(front: Front, headers: CIMultiDictProxy[str]) -> Original:
    """The original request as ``front`` reports it in ``headers``; :class:`FrontConflict` for
    conflicting copies."""
    spec = _HEADERS.get(front)
    if spec is None:
        return NOTHING
    method = _one(headers, spec.method)
    uri = _one(headers, spec.uri)
    if spec.url is not None:
        proto, host = _split_url(spec.url, _one(headers, spec.url), uri)
    else:
        assert spec.proto is not None and spec.host is not None
        proto, host = _one(headers, spec.proto), _one(headers, spec.host)
    return Original(method, uri, proto, host)


def _split_url(name: str, url: str | None, uri: str | None) -> tuple[str | None, str | None]:
    """ingress-nginx's ``$scheme://$http_host$request_uri``, cut at the known ``$request_uri`` (never
    parsed: the host part is whatever the client sent as Host)."""
    if url is None or uri is None:
        return None, None
    scheme, sep, rest = url.partition("://")
    if not sep or not rest.endswith(uri):
        raise FrontConflict(name, "does not end with the path the front sent (X-Auth-Request-Redirect)")
    return scheme, rest[: len(rest) - len(uri)]
