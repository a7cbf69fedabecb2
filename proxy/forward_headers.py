"""What goes upstream and what comes back, header by header: hop-by-hop headers dropped (and those a
``Connection`` header lists), identity headers a client sent dropped before ours are added (also when
spelled with underscores), forwarding headers replaced by what the proxy believes
(``proxy.trusted_proxies``), our own cookies kept from the upstream, control characters kept out of
header values.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from aiohttp import web
from multidict import CIMultiDict

from .identity import Identity
from .keys import REQUEST_ID
from .trusted_proxies import RemoteClient

if TYPE_CHECKING:
    from .routing import Upstream

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
_FORWARDING = frozenset(("x-forwarded-port", "x-forwarded-prefix"))
"""Passed on only from a trusted front proxy (``server.trusted_proxies``)."""
_REPLACED = frozenset(("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip", "forwarded"))
"""Never passed on as sent: the upstream gets X-Forwarded-For/-Proto/-Host as the proxy reads them
(from the client on, so that an upstream reading the left-most address reads ours)."""


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
    client: RemoteClient,
    scheme: str,
    host: str,
    max_groups_bytes: int | None = 2048,
    strip: frozenset[str] = frozenset(),
) -> CIMultiDict[str]:
    """``strip``: more names (lower case, ``-`` for ``_``) a client's copies of are dropped (the
    injected headers, ``proxy.inject``)."""
    listed = _connection_listed(request.headers.items())
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        low = name.lower()
        # Compare with "_" read as "-": WSGI/CGI upstreams (Django, Flask, PHP) see X_Forwarded_User
        # and X-Forwarded-User as the same variable (cf. oauth2-proxy CVE-2025-64484).
        norm = low.replace("_", "-")
        if (
            low in HOP_BY_HOP
            or low in listed
            or norm in _SPOOFABLE
            or norm.startswith(_SPOOFABLE_PREFIXES)
            or norm in strip
        ):
            continue
        if norm in _REPLACED or (norm in _FORWARDING and (not client.trusted_peer or low != norm)):
            continue
        if low == "host" and not upstream.pass_host_header:
            continue
        if low == "cookie":
            value = _drop_cookies(value, drop_cookies)
            if not value:
                continue
        out.add(name, value)
    out["X-Forwarded-For"] = ", ".join(client.chain)
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
