"""``/oauth/auth``: the question nginx ``auth_request``, ingress-nginx ``auth-url`` and Traefik
``forwardAuth`` ask for every request — is this browser signed in, and as whom?

    202  signed in (and allowed): X-Auth-Request-User/-Email/-Preferred-Username/-Groups
    401  not signed in (nginx turns it into a redirect; ``?redirect=1`` makes it a 302 for callers
         that can't, such as Traefik)
    403  signed in but not in ``allowed_groups`` / ``allowed_emails`` / ``allowed_email_domains``
    503  the session store is unreachable (never 202)
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from aiohttp import web

from .. import pages
from ..authz import Rules, allows
from ..keys import SETTINGS
from ..sessions.request import current_session
from ..upstream import groups_value
from .context import own_origin, start_url

log = logging.getLogger(__name__)


def original_url(request: web.Request) -> str | None:
    """The URL of the request the caller is asking about, from the headers each caller sends."""
    if url := request.headers.get("X-Original-URL"):  # nginx (our recipe), ingress-nginx
        return url
    uri = request.headers.get("X-Forwarded-Uri")  # Traefik
    if uri is not None:
        proto = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
        host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
        return f"{proto}://{host}{uri}"
    return None


def original_method(request: web.Request) -> str:
    return (
        request.headers.get("X-Original-Method") or request.headers.get("X-Forwarded-Method") or "GET"
    ).upper()


async def auth_check(request: web.Request) -> web.StreamResponse:
    session = await current_session(request)
    headers = {**pages.NO_STORE}
    if session is None:
        if request.query.get("redirect") == "1" and original_method(request) in ("GET", "HEAD"):
            # Absolute, on the browser's origin: Traefik resolves a relative Location against the
            # forwardAuth address, which browsers can't reach.
            target = original_url(request)
            parts = urlsplit(target or "")
            base = (
                f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else own_origin(request)
            )
            location = base + start_url(request, target or base + "/")
            return web.Response(status=302, headers={**headers, "Location": location})
        return web.Response(status=401, headers=headers)
    identity = session.identity
    rules = Rules.parse(
        request.query.get("allowed_groups", ""),
        request.query.get("allowed_emails", ""),
        request.query.get("allowed_email_domains", ""),
    )
    if rules and not allows(rules, identity):
        path = urlsplit(original_url(request) or "").path or "?"
        log.info("denied", extra={"event": "denied", "sub": identity.sub, "path": path})
        return web.Response(status=403, headers=headers)
    settings = request.app[SETTINGS]
    headers["X-Auth-Request-User"] = identity.user
    if identity.email:
        headers["X-Auth-Request-Email"] = identity.email
    if identity.preferred_username:
        headers["X-Auth-Request-Preferred-Username"] = identity.preferred_username
    if identity.groups:
        value, truncated = groups_value(identity.groups, settings.headers.max_groups_bytes)
        headers["X-Auth-Request-Groups"] = value
        if truncated:
            headers["X-Auth-Request-Groups-Truncated"] = "true"
    if settings.headers.pass_access_token:
        headers["X-Auth-Request-Access-Token"] = session.access_token
    return web.Response(status=202, headers=headers)
