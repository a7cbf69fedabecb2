"""What every handler needs to know about where the browser is: this proxy's origin and URLs."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from ..keys import SETTINGS
from ..redirects import origin

CSRF_FIELD = "csrf"
"""The form field of a POST (sign-out, ending a session) that carries the CSRF token."""
CSRF_HEADER = "X-CSRF-Token"
"""The header that may carry it instead (scripts)."""


def own_origin(request: web.Request) -> str:
    settings = request.app[SETTINGS]
    scheme, host = request.scheme, request.host
    if settings.server.trust_forwarded_headers:
        scheme = request.headers.get("X-Forwarded-Proto", scheme).split(",")[0].strip() or scheme
        host = request.headers.get("X-Forwarded-Host", host).split(",")[0].strip() or host
    return origin(scheme, host)


def prefix(request: web.Request) -> str:
    return request.app[SETTINGS].server.proxy_prefix


def start_url(request: web.Request, rd: str) -> str:
    """Where to send a browser to sign in and come back to ``rd``: the sign-in page when
    ``pages.skip_provider_button`` is false, else straight on to the provider."""
    page = "start" if request.app[SETTINGS].pages.skip_provider_button else "sign_in"
    return f"{prefix(request)}/{page}?rd={quote(rd, safe='')}"


def provider_start_url(request: web.Request, rd: str, provider: str | None = None, **params: str) -> str:
    """Straight to the provider (the sign-in page's buttons, a step-up sign-in)."""
    url = f"{prefix(request)}/start?rd={quote(rd, safe='')}"
    if provider is not None:
        url += f"&provider={quote(provider, safe='')}"
    return url + "".join(f"&{k}={quote(v, safe='')}" for k, v in params.items())


def client_ip(request: web.Request) -> str:
    """The browser's address: the first X-Forwarded-For hop behind a trusted proxy, else the peer."""
    if request.app[SETTINGS].server.trust_forwarded_headers:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
        if forwarded:
            return forwarded
    return request.remote or ""
