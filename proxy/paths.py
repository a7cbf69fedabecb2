"""Public routes (``authorization.skip_auth_routes``) and the path they are matched on. Pure.

The proxy forwards the raw path unchanged (``upstream.Upstream.target``): escapes and dot segments
reach the upstream as the client wrote them, and the upstream resolves them its own way. So a rule
must be judged on the path as the upstream resolves it, not on the spelling: ``/%61dmin`` *is*
``/admin``, and nginx, Express or Django resolve ``/static/../admin`` to ``/admin``.

- :func:`canonical_path`: percent-decoded (``%2F`` too), ``\\`` read as ``/``, slashes merged, dot
  segments removed (RFC 3986 §5.2.4). The most resolving reading, which is the one that matters when
  choosing which rules apply.
- A skip rule lets a request through *without* authentication, so it applies only to a path that
  every upstream reads the same way (:func:`is_unambiguous`): no dot segments, no ``//``, no encoded
  ``/`` or ``\\`` (upstreams disagree on whether they separate segments), no double encoding, no
  control characters. Anything else needs a session like every other request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"))

_METHOD_SPEC = re.compile(r"^([A-Za-z]+)=(.*)$", re.S)
_AMBIGUOUS_ESCAPES = re.compile(r"%(2f|5c|00)", re.I)
_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SLASHES = re.compile(r"/{2,}")


def _path_only(raw_path: str) -> str:
    return raw_path.partition("?")[0].partition("#")[0]


def decoded_path(raw_path: str) -> str:
    """The path of a raw request target (query dropped), percent-decoded once."""
    return unquote(_path_only(raw_path), errors="surrogateescape")


def _remove_dot_segments(path: str) -> str:
    out: list[str] = []
    segments = path.split("/")[1:]
    for segment in segments:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    trailing = bool(segments) and segments[-1] in (".", "..")
    return "/" + "/".join(out) + ("/" if trailing and out else "")


def canonical_path(raw_path: str) -> str:
    """The path as the most resolving upstream reads it: decoded, ``\\`` → ``/``, ``//`` → ``/``,
    without dot segments. Always starts with ``/``."""
    path = decoded_path(raw_path).replace("\\", "/")
    if not path.startswith("/"):
        path = "/" + path
    return _remove_dot_segments(_SLASHES.sub("/", path))


def is_unambiguous(raw_path: str) -> bool:
    """Whether every upstream reads ``raw_path`` as the same path (see the module docstring)."""
    raw = _path_only(raw_path)
    if not raw.startswith("/") or "\\" in raw or _AMBIGUOUS_ESCAPES.search(raw):
        return False
    decoded = decoded_path(raw)
    if _ESCAPE.search(decoded) or _CONTROL.search(decoded):  # %2561 → %61: double encoding
        return False
    return canonical_path(raw) == decoded


@dataclass(frozen=True)
class SkipRoute:
    """One ``skip_auth_routes`` entry: ``METHOD=regex`` or just ``regex`` (any method).

    The regex is searched (``re.search``) in the canonical path, without the query: anchor it
    (``^/health$``) unless you mean "anywhere in the path".
    """

    method: str | None
    pattern: re.Pattern[str]

    @classmethod
    def parse(cls, spec: str) -> SkipRoute:
        """``ValueError`` says what is wrong with ``spec``."""
        method: str | None = None
        regex = spec
        match = _METHOD_SPEC.match(spec)
        if match:
            method = match.group(1).upper()
            if method not in METHODS:
                raise ValueError(f"{spec!r}: unknown method {match.group(1)!r} (use e.g. GET=^/health$)")
            regex = match.group(2)
        if not regex:
            raise ValueError(f"{spec!r}: the path regex is empty")
        try:
            return cls(method, re.compile(regex))
        except re.error as exc:
            raise ValueError(f"{spec!r}: invalid regex: {exc}") from None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and self.pattern.search(path) is not None

    def __str__(self) -> str:
        return f"{self.method}={self.pattern.pattern}" if self.method else self.pattern.pattern


def skips_auth(
    routes: Iterable[SkipRoute], *, preflight: bool, method: str, raw_path: str, cors_preflight: bool
) -> bool:
    """Whether a request goes to the upstream without authentication.

    ``preflight``: the ``skip_auth_preflight`` setting; ``cors_preflight``: the request is
    ``OPTIONS`` with ``Access-Control-Request-Method``, i.e. a CORS preflight (which never carries
    credentials, so it could not pass otherwise).
    """
    method = method.upper()
    if preflight and method == "OPTIONS" and cors_preflight:
        return True
    routes = tuple(routes)
    if not routes or not is_unambiguous(raw_path):
        return False
    path = canonical_path(raw_path)
    return any(route.matches(method, path) for route in routes)
