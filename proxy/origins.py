"""Web origins (RFC 6454): parsed strictly, compared once normalised.

A browser sends ``Origin`` as ``scheme://host[:port]``: no path (not even a lone ``/``), no userinfo,
the default port left out; ``null`` for an opaque origin (a sandboxed frame, ``file:``, ``data:``).
Two spellings name the same origin when scheme, host and port agree once scheme and host are
lower-cased and the default port is filled in: ``HTTPS://App.Example:443`` is ``https://app.example``.
Anything else (``null``, a path or trailing ``/``, userinfo, a query, a list, a wildcard, non-ASCII
or percent-escapes, a port over 65535) is not an origin and matches nothing.
"""

from __future__ import annotations

import re

_ORIGIN = re.compile(r"(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?", re.ASCII | re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_key(value: str) -> str | None:
    """``scheme://host:port`` (lower case, the port always spelled out), ``None`` if ``value`` is not
    an origin. Equal keys are the same origin."""
    match = _ORIGIN.fullmatch(value)
    if match is None:
        return None
    scheme, host, port = match.group(1).lower(), match.group(2).lower(), match.group(3)
    number = int(port) if port is not None else _DEFAULT_PORTS[scheme]
    if not 0 < number < 65536 or host.startswith(".") or ".." in host:
        return None
    return f"{scheme}://{host}:{number}"


def check_origin(value: str) -> str:
    """``value`` as the browser would send it, or ``ValueError`` saying why it is not an origin
    (for the settings: an allow-list entry must be one origin, exactly)."""
    if "*" in value:
        raise ValueError(f"{value!r}: wildcards are not supported, list each origin")
    key = origin_key(value)
    if key is None:
        raise ValueError(
            f"{value!r} is not an origin: scheme://host[:port] with scheme http or https, "
            "no path (not even a trailing '/'), no user, query or fragment"
        )
    scheme, _, host_port = key.partition("://")
    host, _, port = host_port.rpartition(":")
    return f"{scheme}://{host}" if int(port) == _DEFAULT_PORTS[scheme] else key
