"""Open-redirect guard for ``rd`` and post-logout targets.

A target is accepted when it is a plain path on this proxy (``/x``, never ``//x`` or ``/\\x``), or an
absolute http(s) URL whose host is the proxy's own or matches ``allowed_domains`` (an exact host, or
``.example.com`` for the domain and every subdomain). Userinfo, control characters, backslashes,
non-ASCII hosts and percent-escapes in the host are refused outright: browsers read those differently
from Python (they drop tabs and newlines, take ``\\`` for ``/``, map fullwidth characters and decode
``%2E`` in a host), and a guard must never judge a different host than the one the browser visits.
A relative target always comes back prefixed with the proxy's own origin, so whatever its path
holds (``/%2F%2Fevil``, ``/／evil``), the browser stays here.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit


def _domain_allowed(host: str, allowed_domains: Sequence[str]) -> bool:
    for domain in allowed_domains:
        domain = domain.lower()
        if domain.startswith("."):
            if host == domain[1:] or host.endswith(domain):
                return True
        elif host == domain:
            return True
    return False


def safe_redirect(target: str | None, origin: str, allowed_domains: Sequence[str] = ()) -> str | None:
    """The absolute URL to send the browser to, or ``None`` when ``target`` is not safe.

    ``origin`` is this proxy's own ``scheme://host[:port]`` as the browser sees it.
    """
    if not target or len(target) > 4096:
        return None
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in target) or "\\" in target:
        return None
    if target.startswith("/"):
        if target.startswith("//"):
            return None
        return origin + target
    try:
        parts = urlsplit(target)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or not parts.hostname:
        return None
    if "@" in parts.netloc or "%" in parts.netloc or not parts.hostname.isascii():
        return None
    own = urlsplit(origin)
    own_host = f"{own.hostname}:{own.port}" if own.port is not None else str(own.hostname)
    host = f"{parts.hostname}:{port}" if port is not None else parts.hostname
    if host == own_host or _domain_allowed(parts.hostname, allowed_domains):
        return target
    return None


def origin(scheme: str, host: str) -> str:
    """``scheme://host`` as the browser sees this proxy."""
    return f"{scheme}://{host}"
