"""How servers read a request path, and public routes (``authorization.skip_auth_routes``). Pure.

The proxy forwards the raw path unchanged (``routing.Upstream.target``): escapes, ``;params`` and
dot segments reach the upstream as the client wrote them, and the upstream resolves them its own way.
So a rule must be judged on the path as the upstream resolves it, not on the spelling: ``/%61dmin``
*is* ``/admin``, nginx resolves ``/static/../admin`` to ``/admin``, and a servlet container (Tomcat,
Jetty, Spring, Quarkus/Vert.x) drops ``;params`` from each segment before resolving ``..``, so
``/static/..;/admin`` is ``/admin`` to it and ``/static/..;/admin`` to nginx.

- :func:`canonical_path`: the most resolving reading, the one that chooses the upstream and its
  rules: percent-decoded once (``%2F`` and ``%3B`` too), ``\\`` read as ``/``, ``;params`` dropped
  from every segment, slashes merged, dot segments removed (RFC 3986 §5.2.4).
- :func:`readings`: the path as each kind of server reads it (:data:`READERS`), canonical first.
  Where they name different upstreams, or leave the upstream's base path, the proxy refuses the
  request (``routing.Router.route``): no reading may reach what the chosen rules do not cover.
- A skip rule lets a request through *without* authentication, so it applies only to a path that
  every upstream reads the same way (:func:`is_unambiguous`): no dot segments, no ``//``, no ``;``,
  no encoded ``/``, ``\\`` or ``;``, no double encoding, no control characters. Anything else needs a
  session like every other request.
- :func:`fold_case`: how a case-insensitive (Windows) server reads a path: lower case, trailing dots
  and spaces of each segment ignored (``upstreams[].case_insensitive``).

Cost: a path without ``%``, ``;``, ``\\``, ``//`` or ``/.`` (nearly every request) is read the same by
every server and costs a few substring scans (:func:`is_plain`); others one linear pass per reader.
No regex here can backtrack.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple
from urllib.parse import unquote

METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"))

_METHOD_SPEC = re.compile(r"^([A-Za-z]+)=(.*)$", re.S)
_AMBIGUOUS_ESCAPES = re.compile(r"%(2f|5c|00|3b)", re.I)
_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_IIS_ESCAPE = re.compile(r"%[uU]([0-9a-fA-F]{4})")
_OVERLONG = (  # UTF-8 overlong forms of '.', '/' and '\' (decoded with surrogateescape)
    ("\udce0\udc80\udcae", "."), ("\udce0\udc80\udcaf", "/"), ("\udce0\udc81\udc9c", "\\"),
    ("\udcc0\udcae", "."), ("\udcc0\udcaf", "/"), ("\udcc1\udc9c", "\\"),
)  # fmt: skip
_OVERLONG_LEADS = ("\udcc0", "\udcc1", "\udce0")


def _path_only(raw_path: str) -> str:
    return raw_path.partition("?")[0].partition("#")[0]


def decoded_path(raw_path: str) -> str:
    """The path of a raw request target (query dropped), percent-decoded once."""
    return unquote(_path_only(raw_path), errors="surrogateescape")


def is_plain(path: str) -> bool:
    """Whether every server reads ``path`` (no query) as written: no escape, ``;``, ``\\``, ``//`` or
    dot segment (``/.`` also catches ``/.well-known``, which then merely takes the longer way)."""
    return (
        path[:1] == "/"
        and "%" not in path
        and ";" not in path
        and "\\" not in path
        and "//" not in path
        and "/." not in path
    )


def _decoded_alike(path: str) -> str | None:
    """``path`` decoded, if every reader reads it so: it only escapes characters that separate
    nothing (``%20``, ``%C3%A9``, ``%61``): no ``/ \\ ; %``, dot segment, NUL or overlong form.
    Else ``None``."""
    if path[:1] != "/" or ";" in path or "\\" in path or "//" in path or "/." in path:
        return None
    decoded = unquote(path, errors="surrogateescape")
    if (
        not is_plain(decoded)
        or decoded.count("/") != path.count("/")
        or "\x00" in decoded
        or any(lead in decoded for lead in _OVERLONG_LEADS)
    ):
        return None
    return decoded


class Reader(NamedTuple):
    """How one kind of server turns a raw path into the path it serves."""

    name: str
    decode: Literal[1, 2]
    """Percent-decoding passes (2: also overlong UTF-8 and IIS ``%u002e``)."""
    per_segment: bool
    """Split on the raw ``/`` first, then decode each segment (``%2F`` stays inside its segment)."""
    params: Literal["keep", "raw", "decoded"]
    """``;params`` kept, dropped before decoding (``%3B`` stays), or after (``%3B`` counts)."""
    backslash: bool
    """``\\`` separates segments."""
    merge: bool
    """Empty segments (``//``) dropped."""
    dots: Literal["decoded", "literal", "none"]
    """Which ``.`` and ``..`` segments are resolved: also escaped ones (``%2e``), only those
    spelled ``.``/``..``, or none."""


READERS = (
    Reader("canonical", 1, False, "decoded", True, True, "decoded"),
    Reader("nginx", 1, False, "keep", False, True, "decoded"),  # also Apache, Django, Go's ServeMux
    Reader("servlet", 1, True, "raw", False, True, "decoded"),  # Tomcat, Jetty, Spring, Vert.x
    Reader("segments", 1, True, "keep", False, False, "decoded"),  # %2F inside a name (Express)
    Reader("literal-dots", 1, True, "keep", False, False, "literal"),  # %2e%2e is a name
    Reader("unresolved", 1, False, "keep", False, False, "none"),  # aiohttp, Werkzeug, uvicorn
    Reader("lenient", 2, False, "decoded", True, True, "decoded"),  # decodes twice (IIS, some apps)
)
"""The readings the proxy checks, canonical first. A server that reads a path in yet another way
still meets no more than one application's rules, as long as it agrees with one of these."""


def _decode(text: str, passes: int) -> str:
    if "%" not in text:
        return text
    text = unquote(text, errors="surrogateescape")
    if passes == 2:
        if "%u" in text or "%U" in text:
            text = _IIS_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
        text = unquote(text, errors="surrogateescape")
        if any(lead in text for lead in _OVERLONG_LEADS):
            for overlong, char in _OVERLONG:
                text = text.replace(overlong, char)
    return text


def read_path(path: str, reader: Reader) -> str:
    """``path`` (no query) as ``reader`` reads it. Always starts with ``/``."""
    if reader.per_segment:
        raw = path.split("/")
        if reader.params == "raw":
            raw = [s.partition(";")[0] for s in raw]
        # a '/' decoded inside a segment is no separator: it stays escaped in the reading
        segments = [_decode(s, reader.decode).replace("/", "%2F") for s in raw]
    else:
        text = _decode(path, reader.decode)
        if reader.backslash:
            text = text.replace("\\", "/")
        raw = segments = text.split("/")
    if reader.params == "decoded":
        segments = [s.partition(";")[0] for s in segments]
    if segments[0] == "":  # the leading '/'
        segments, raw = segments[1:], raw[1:]
    if reader.dots == "none" and not reader.merge:
        return "/" + "/".join(segments)
    named = raw if reader.dots == "literal" else segments  # what a dot segment is told by
    out: list[str] = []
    for segment, name in zip(segments, named, strict=True):
        if reader.dots != "none" and name == "..":
            if out:
                out.pop()
        elif (reader.dots != "none" and name == ".") or (reader.merge and not segment):
            pass
        else:
            out.append(segment)
    last = segments[-1] if segments else None
    trailing = bool(out) and (last in (".", "..") or (last == "" and reader.merge))
    return "/" + "/".join(out) + ("/" if trailing else "")


def canonical_path(raw_path: str) -> str:
    """The path as the most resolving upstream reads it: decoded, ``\\`` → ``/``, ``;params``
    dropped from each segment, ``//`` → ``/``, without dot segments. Always starts with ``/``."""
    path = _path_only(raw_path)
    if is_plain(path):
        return path
    return _decoded_alike(path) or read_path(path, READERS[0])


def readings(path: str) -> tuple[str, ...]:
    """``path`` (no query) as each of :data:`READERS` reads it, in their order."""
    if is_plain(path):
        return (path,) * len(READERS)
    alike = _decoded_alike(path)
    if alike is not None:
        return (alike,) * len(READERS)
    return tuple(read_path(path, reader) for reader in READERS)


def fold_case(path: str) -> str:
    """``path`` as a case-insensitive Windows server reads it: lower case, and each segment without
    its trailing dots and spaces (``/Admin./`` is ``/admin/``)."""
    path = path.lower()
    if ". " not in path and "./" not in path and " /" not in path and not path.endswith((".", " ")):
        return path
    return "/".join(s if s in (".", "..") else s.rstrip(". ") for s in path.split("/"))


def is_unambiguous(raw_path: str) -> bool:
    """Whether every upstream reads ``raw_path`` as the same path (see the module docstring)."""
    raw = _path_only(raw_path)
    if is_plain(raw):
        return True
    if not raw.startswith("/") or "\\" in raw or ";" in raw or _AMBIGUOUS_ESCAPES.search(raw):
        return False
    decoded = decoded_path(raw)
    if _ESCAPE.search(decoded) or _CONTROL.search(decoded):  # %2561 → %61: double encoding
        return False
    # Every reader must agree, the lenient one too: %c0%ae (overlong UTF-8), %u002e (IIS) and
    # %25u002e (its escape) are "." to a server that decodes them, and a name to the others.
    return canonical_path(raw) == decoded and len(set(readings(raw))) == 1


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
