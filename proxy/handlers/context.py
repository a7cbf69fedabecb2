"""What every handler needs to know about where the browser is: this proxy's origin and URLs."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from ..keys import CLIENT, SETTINGS, TRUST
from ..redirects import origin
from ..trusted_proxies import RemoteClient

CSRF_FIELD = "csrf"
"""The form field of a POST (sign-out, ending a session) that carries the CSRF token."""
CSRF_HEADER = "X-CSRF-Token"
"""The header that may carry it instead (scripts)."""


def client(request: web.Request) -> RemoteClient:
    """Who sent the request: the peer, or the right-most untrusted hop behind a trusted proxy
    (``server.trusted_proxies``); worked out once per request."""
    found = request.get(CLIENT)
    if found is None:
        found = request.app[TRUST].resolve(request.remote, request.headers)
        request[CLIENT] = found
    return found


def own_origin(request: web.Request) -> str:
    """This proxy's origin as the browser sees it (a trusted proxy's X-Forwarded-Proto/-Host)."""
    who = client(request)
    return origin(who.scheme or request.scheme, who.host or request.host)


def prefix(request: web.Request) -> str:
    return request.app[SETTINGS].server.proxy_prefix


def start_url(request: web.Request, rd: str) -> str:
    """Where to send a browser to sign in and come back to ``rd``: the sign-in page when
    ``pages.skip_provider_button`` is false, else straight on to the provider."""
    page = "start" if request.app[SETTINGS].pages.skip_provider_button else "sign_in"
    return f"{prefix(request)}/{page}?rd={quote(rd, safe='')}"


def provider_start_url(request: web.Request, rd: str) -> str:
    """Straight to the provider (the sign-in page's button)."""
    return f"{prefix(request)}/start?rd={quote(rd, safe='')}"


def client_ip(request: web.Request) -> str:
    """The browser's address (see :func:`client`)."""
    return client(request).ip
