"""``headers.inject`` / ``upstreams[].headers``: claims to headers (applied by proxy/inject.py)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from ..claims import check_path
from ..saferegex import check
from .fields import _Section

_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^`|~-]{1,64}")
_RESERVED = frozenset(
    h.lower()
    for h in (
        "Host", "Cookie", "Set-Cookie", "Content-Length", "Content-Type", "Content-Encoding",
        "Transfer-Encoding", "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
        "Proxy-Connection", "TE", "Trailer", "Upgrade", "Expect", "Origin", "Forwarded", "X-Real-IP",
        "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port",
        "X-Forwarded-Prefix", "X-Request-ID", "X-Forwarded-User", "X-Forwarded-Email",
        "X-Forwarded-Preferred-Username", "X-Forwarded-Groups", "X-Forwarded-Groups-Truncated",
        "X-Original-Method", "X-Original-URI",
        "X-Original-URL", "X-Forwarded-Method", "X-Forwarded-Uri", "X-HTTP-Method-Override",
        "X-HTTP-Method", "X-Method-Override",
    )
)  # fmt: skip
"""Names the proxy, the HTTP framing or a front owns: never injected."""
_RESERVED_PREFIXES = ("sec-websocket-", "x-auth-request-", "proxy-")


def auth_request_name(name: str) -> str:
    """The name in ``/oauth/auth``'s answer: ``X-Forwarded-Roles`` → ``X-Auth-Request-Roles``."""
    low = name.lower()
    rest = name[len("X-Forwarded-") :] if low.startswith("x-forwarded-") else name
    return "X-Auth-Request-" + rest


def check_name(name: str) -> str:
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"{name!r}: a header name is 1-64 of A-Z a-z 0-9 and !#$%&'*+.^`|~- (no '_')")
    low = name.lower()
    for candidate in (low, low + "-truncated"):
        if candidate in _RESERVED or candidate.startswith(_RESERVED_PREFIXES):
            raise ValueError(f"{name!r} is reserved (framing, hop-by-hop, forwarding or identity header)")
    if auth_request_name(name).lower() in ("x-auth-request-access-token", "x-auth-request-redirect",
                                           "x-auth-request-csrf-token", "x-auth-request-user",
                                           "x-auth-request-email", "x-auth-request-groups",
                                           "x-auth-request-preferred-username"):  # fmt: skip
        raise ValueError(f"{name!r} would collide with a built-in X-Auth-Request-* header")
    return name


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _text(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (CR, LF, NUL, ...)")
    return value


def check_filter(value: str | None) -> str | None:
    if value is not None:
        check(value)
    return value


class InjectHeader(_Section):
    """One header: a claim (``claim``) or a value the proxy holds (``source``), joined and capped."""

    name: Annotated[str, AfterValidator(check_name)]
    source: Literal["roles", "groups", "access_token", "id_token"] | None = None
    claim: Annotated[str, AfterValidator(check_path)] | None = None
    """A claim path as in roles_claims (``org.tenant``, ``resource_access.*.roles``)."""
    prefix: Annotated[str, AfterValidator(_text)] = ""
    """Put before the value (``"Bearer "``)."""
    separator: Annotated[str, AfterValidator(_text)] = Field(default=",", min_length=1, max_length=8)
    """Between the values of a list; a value that contains it is left out (it would read as two)."""
    max_bytes: int | None = Field(default=None, ge=64)
    """Cap on the value (whole values kept; then ``<name>-Truncated: true``); a single value over it is
    left out, never cut. null: headers.max_groups_bytes."""

    @model_validator(mode="after")
    def _one_source(self) -> InjectHeader:
        if (self.source is None) == (self.claim is None):
            raise ValueError("set exactly one of source (roles, groups, access_token, id_token) or claim")
        return self

    @property
    def auth_name(self) -> str:
        return auth_request_name(self.name)


DEFAULT_INJECT = [InjectHeader(name="X-Forwarded-Roles", source="roles")]


def _unique(values: list[InjectHeader]) -> list[InjectHeader]:
    seen: set[str] = set()
    for header in values:
        low = header.name.lower()
        if low in seen:
            raise ValueError(f"{header.name!r} is listed twice")
        seen.add(low)
    names = {h.name.lower() + "-truncated" for h in values}
    clash = [h.name for h in values if h.name.lower() in names]
    if clash:
        raise ValueError(f"{clash[0]!r} is another entry's -Truncated marker")
    return values


InjectList = Annotated[list[InjectHeader], AfterValidator(_unique)]


class UpstreamHeaders(_Section):
    """An upstream's own ``headers``: each key set replaces the global one for its prefix."""

    inject: InjectList | None = None
    groups_filter: Annotated[str | None, AfterValidator(check_filter)] = None
    """An empty string lifts the global filter."""
