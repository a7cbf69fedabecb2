"""Where the browser goes to end the provider's session, decided from the provider's metadata and
``logout:`` alone (pure: no I/O, no app), so each provider of a multi-provider setup gets its own.

In order:

1. ``logout.provider_logout_url``, when set: a template for providers whose sign-out is not
   RP-Initiated Logout (Auth0's ``https://TENANT/v2/logout?client_id={client_id}&returnTo=
   {post_logout_redirect_uri}``). It wins over discovery: the operator said so explicitly.
2. The discovered ``end_session_endpoint`` (RP-Initiated Logout 1.0), with ``client_id``,
   ``id_token_hint`` and, unless ``logout.send_post_logout_redirect_uri`` is false,
   ``post_logout_redirect_uri``.
3. Neither: ``None``. The local session still ends; the caller says plainly that the provider's
   session was not ended (page and log line).

Template syntax: ``{name}`` with ``name`` one of :data:`PLACEHOLDERS`, nothing else in braces (``{{``
and ``}}`` are literal braces). Each value is percent-encoded as one query value or path segment
(``quote(value, safe="")``: ``&``, ``=``, ``#``, ``/``, ``?``, ``%``, spaces and every non-ASCII byte
are escaped), so a value can never add a parameter, change the path or end the query. Placeholders
may stand only after the authority (path, query, fragment): the scheme and host are fixed in the
configuration. The URL must be https, or http to a loopback host (tests, a provider on the same
machine). It is checked once at start-up (:func:`check_template`), naming the key.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

from authlib.common.urls import add_params_to_uri

PLACEHOLDERS = frozenset({"client_id", "post_logout_redirect_uri", "id_token_hint"})
"""The values a template may name; ``id_token_hint`` makes the URL long (see ``max_url_length``)."""
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_LOOPBACK_NAMES = frozenset({"localhost"})


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _pieces(template: str) -> list[tuple[str, str | None]]:
    """``(literal, placeholder)`` pairs; ``ValueError`` for an unknown name or a stray brace."""
    out: list[tuple[str, str | None]] = []
    pos = 0
    for m in _TOKEN.finditer(template):
        literal = template[pos : m.start()]
        pos = m.end()
        token = m.group(0)
        if token in ("{{", "}}"):
            out.append((literal + token[0], None))
        elif m.group(1) is None:
            raise ValueError(f"a lone {token!r} at offset {m.start()} (write {token * 2} for a brace)")
        elif m.group(1) not in PLACEHOLDERS:
            raise ValueError(
                f"unknown placeholder {{{m.group(1)}}}; known: " + ", ".join(sorted(PLACEHOLDERS))
            )
        else:
            out.append((literal, m.group(1)))
    out.append((template[pos:], None))
    return out


def check_template(template: str) -> str:
    """The template if it is usable, else ``ValueError`` saying why (the caller names the key)."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in template) or "\\" in template:
        raise ValueError("must not contain spaces, control characters or backslashes")
    pieces = _pieces(template)
    # The scheme and authority must be literal: cut the template where the first placeholder starts.
    head = ""
    for literal, name in pieces:
        head += literal
        if name is not None:
            break
    scheme, sep, rest = head.partition("://")
    authority = re.split(r"[/?#]", rest, maxsplit=1)
    if not sep or (len(authority) < 2 and any(name for _, name in pieces)):
        raise ValueError("a placeholder may stand only in the path, query or fragment, after the host")
    parts = urlsplit(render_template(template, dict.fromkeys(PLACEHOLDERS, "x")))
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname or "")):
        pass
    else:
        raise ValueError(f"must be an https URL (http only to a loopback host), got scheme {scheme!r}")
    if not parts.hostname or "@" in parts.netloc:
        raise ValueError("must name a host, without user:password@")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValueError(f"bad port: {exc}") from None
    return template


def render_template(template: str, values: Mapping[str, str]) -> str:
    """The template with each placeholder replaced by its percent-encoded value ('' when absent)."""
    return "".join(
        literal + (quote(values.get(name, ""), safe="", errors="replace") if name else "")
        for literal, name in _pieces(template)
    )


def provider_logout_url(
    *,
    template: str | None,
    end_session_endpoint: str | None,
    client_id: str,
    id_token_hint: str | None,
    post_logout_redirect_uri: str,
    send_post_logout_redirect_uri: bool = True,
) -> tuple[str, dict[str, str]] | None:
    """``(url, params)`` to send the browser to (``params`` already in ``url``; a caller POSTs them to
    the endpoint instead when the URL is too long, which only RP-Initiated Logout allows: ``params``
    is empty for a template), or ``None`` when the provider offers no way to end its session."""
    if template is not None:
        values = {"client_id": client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
        if id_token_hint:
            values["id_token_hint"] = id_token_hint
        return render_template(template, values), {}
    if not end_session_endpoint:
        return None
    params = {"client_id": client_id}
    if send_post_logout_redirect_uri:
        params["post_logout_redirect_uri"] = post_logout_redirect_uri
    if id_token_hint:
        params["id_token_hint"] = id_token_hint
    url: str = add_params_to_uri(end_session_endpoint, params)
    return url, params
