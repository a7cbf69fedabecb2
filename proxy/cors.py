"""CORS on the proxied paths (``cors:``, global or per upstream). Pure, apart from building responses.

- A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) to a path whose
  upstream (or, with none, the global block) has a CORS policy is answered here, before sign-in:
  browsers send preflights without cookies, so one can never carry a session. It reaches no
  upstream. Allowed: 204 with the ``Access-Control-Allow-*`` headers. Not allowed (origin, method or
  a requested header): 403 without them, logged.
- Every other answer on such a path (proxied, or the proxy's own 302 to sign in, 401, 403, 404,
  400) gets ``Vary: Origin``, and, for an allowed ``Origin``, ``Access-Control-Allow-Origin`` (the
  origin as sent; ``*`` only for an any-origin policy without credentials), ``-Allow-Credentials``
  and ``-Expose-Headers``. The upstream's own ``Access-Control-*`` headers are dropped there: the
  policy in the configuration is the only one a browser sees.
- Without a policy for the path nothing changes: preflights need a session (or
  ``authorization.skip_auth_preflight``) and are proxied, the upstream's CORS headers pass as sent.

Origins are compared as RFC 6454 origins (``proxy.origins``): ``null``, a list, a path, userinfo,
or anything not ``scheme://host[:port]`` matches nothing. A pattern ``https://*.example.com`` takes
one or more labels in front of ``.example.com`` with that scheme and port, so neither
``https://evil-example.com`` nor ``https://example.com.evil.com`` (nor the apex) matches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict

from .origins import origin_key

log = logging.getLogger(__name__)

REQUEST_METHOD = "Access-Control-Request-Method"
REQUEST_HEADERS = "Access-Control-Request-Headers"
PREFLIGHT_VARY = ("Origin", REQUEST_METHOD, REQUEST_HEADERS)


@dataclass(frozen=True)
class OriginPattern:
    """``scheme://*.domain[:port]``: any subdomain (one or more labels) of ``domain``."""

    scheme: str
    suffix: str
    """``.domain``, lower case."""
    port: int

    def matches(self, key: str) -> bool:
        scheme, _, host_port = key.partition("://")
        host, _, port = host_port.rpartition(":")
        return (
            scheme == self.scheme
            and int(port) == self.port
            and host.endswith(self.suffix)
            and (len(host) > len(self.suffix))
        )


@dataclass(frozen=True)
class CorsPolicy:
    exact: frozenset[str]
    """Origin keys (``proxy.origins.origin_key``)."""
    patterns: tuple[OriginPattern, ...]
    any_origin: bool
    credentials: bool
    methods: tuple[str, ...]
    headers: frozenset[str]
    """Allowed request header names, lower case."""
    any_header: bool
    expose: tuple[str, ...]
    max_age: int

    def allows(self, origin: str) -> bool:
        key = origin_key(origin)
        if key is None:
            return False  # null, a list, a path, garbage
        if self.any_origin or key in self.exact:
            return True
        return any(p.matches(key) for p in self.patterns)

    def _origin(self, request: web.BaseRequest) -> str | None:
        """The request's one ``Origin``, if the policy allows it."""
        values = request.headers.getall("Origin", [])
        if len(values) != 1 or not self.allows(values[0]):
            return None
        return values[0]

    def _allow_origin(self, origin: str) -> str:
        return "*" if self.any_origin and not self.credentials else origin

    def preflight(self, request: web.BaseRequest) -> web.Response:
        """The answer to a preflight (see the module docstring)."""
        headers: CIMultiDict[str] = CIMultiDict({"Cache-Control": "no-store"})
        add_vary(headers, PREFLIGHT_VARY)
        origin = self._origin(request)
        method = request.headers.get(REQUEST_METHOD, "").strip()
        asked = [h.strip().lower() for h in request.headers.get(REQUEST_HEADERS, "").split(",") if h.strip()]
        why = None
        if origin is None:
            why = "origin not allowed"
        elif method not in self.methods:
            why = "method not allowed"
        elif not self.any_header and not set(asked) <= self.headers:
            why = "header not allowed"
        if why is not None:
            sent = request.headers.get("Origin", "")[:256]
            log.info(
                "CORS preflight refused: %s",
                why,
                extra={"event": "cors_refused", "status": 403, "origin": sent, "method": method[:32],
                       "path": request.raw_path[:512]},
            )  # fmt: skip
            return web.Response(status=403, headers=headers)
        assert origin is not None
        headers["Access-Control-Allow-Origin"] = self._allow_origin(origin)
        headers["Access-Control-Allow-Methods"] = ", ".join(self.methods)
        if asked:
            headers["Access-Control-Allow-Headers"] = ", ".join(asked)  # all allowed: checked above
        if self.credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        headers["Access-Control-Max-Age"] = str(self.max_age)
        return web.Response(status=204, headers=headers)

    def decorate(self, request: web.BaseRequest, headers: CIMultiDict[str]) -> None:
        """The CORS headers of an answer that is not a preflight's (idempotent)."""
        for name in [n for n in headers if n.lower().startswith("access-control-")]:
            headers.popall(name, None)  # the upstream's own: the configured policy alone decides
        add_vary(headers, ("Origin",))
        origin = self._origin(request)
        if origin is None:
            return
        headers["Access-Control-Allow-Origin"] = self._allow_origin(origin)
        if self.credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        if self.expose:
            headers["Access-Control-Expose-Headers"] = ", ".join(self.expose)


def is_preflight(request: web.BaseRequest) -> bool:
    return request.method == "OPTIONS" and "Origin" in request.headers and REQUEST_METHOD in request.headers


def add_vary(headers: CIMultiDict[str], names: Iterable[str]) -> None:
    """Add ``names`` to ``Vary`` once each (kept as one header; ``*`` stays ``*``)."""
    present = [v.strip() for value in headers.getall("Vary", []) for v in value.split(",") if v.strip()]
    if "*" in present:
        return
    lower = {p.lower() for p in present}
    merged = present + [n for n in names if n.lower() not in lower]
    headers.popall("Vary", None)
    headers["Vary"] = ", ".join(merged)
