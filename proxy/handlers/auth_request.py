"""``/oauth/auth``: the question nginx ``auth_request``, ingress-nginx ``auth-url`` and Traefik
``forwardAuth`` ask for every request — is this browser signed in, and as whom?

    202  signed in (or a valid bearer token, with ``api.accept_bearer``) and allowed:
         X-Auth-Request-User/-Email/-Preferred-Username/-Groups; also a public route
         (``authorization.skip_auth_routes``, matched on the original request's method and path),
         then without identity headers
    401  not signed in (nginx turns it into a redirect; ``?redirect=1`` makes it a 302 for callers
         that can't, such as Traefik); a bad bearer token: ``WWW-Authenticate: Bearer
         error="invalid_token"``
    403  signed in but refused by the global ``authorization`` rules or this location's narrowing
         (``allowed_groups`` / ``allowed_roles`` / ``allowed_emails`` / ``allowed_email_domains``)
    503  the session store or the provider's keys are unreachable (never 202)
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from urllib.parse import urlsplit

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from .. import pages
from ..authz import Rules, first_denial
from ..forward_headers import identity_headers
from ..keys import RULES, SETTINGS
from ..redirects import safe_redirect
from ..sessions.base import Identity
from .access import BearerRejected, bearer_challenge, denial, invalid_token, principal, skip_auth
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


def original_path(request: web.Request) -> str | None:
    """The raw (still percent-encoded) path of the original request, if the caller names it."""
    url = original_url(request)
    return (urlsplit(url).path or "/") if url is not None else None


async def auth_check(request: web.Request) -> web.StreamResponse:
    app = request.app
    settings, book = app[SETTINGS], app[RULES]
    if book.has_public_routes:
        path = original_path(request)
        if path is not None and skip_auth(request, original_method(request), path):
            return web.Response(status=202, headers=pages.NO_STORE)
    try:
        who = await principal(request)
    except BearerRejected:
        return invalid_token(json_body=False)
    headers = {**pages.NO_STORE}
    if who is None:
        headers.update(bearer_challenge(request))
        if request.query.get("redirect") == "1" and original_method(request) in ("GET", "HEAD"):
            # Absolute, on the browser's origin: Traefik resolves a relative Location against the
            # forwardAuth address, which browsers can't reach.
            # The original URL goes through the redirect guard: a front proxy that passed a client's
            # X-Forwarded-Host through must not make this an open redirect.
            own = own_origin(request)
            allowed = request.app[SETTINGS].logout.allowed_redirect_domains
            target = safe_redirect(original_url(request), own, allowed)
            parts = urlsplit(target or "")
            base = f"{parts.scheme}://{parts.netloc}" if target else own
            location = base + start_url(request, target or own + "/")
            return web.Response(status=302, headers={**headers, "Location": location})
        return web.Response(status=401, headers=headers)
    identity = who.identity
    rules = book.everywhere
    if request.query_string:
        query = request.query
        narrowing = Rules.parse(
            query.get("allowed_groups", ""),
            query.get("allowed_emails", ""),
            query.get("allowed_email_domains", ""),
            query.get("allowed_roles", ""),
        )
        all_rules: tuple[Rules, ...] = (rules, narrowing)
    else:
        all_rules = (rules,)
    if first_denial(all_rules, identity) is not None:  # the cheap check first; denial() logs
        denial(request, who, all_rules, original_path(request) or "?")
        return web.Response(status=403, headers=headers)
    signed_in = _signed_in_headers(identity, settings.headers.max_groups_bytes)
    if settings.headers.pass_access_token:
        return web.Response(
            status=202, headers={**signed_in, "X-Auth-Request-Access-Token": who.access_token}
        )
    return web.Response(status=202, headers=signed_in)  # copied by aiohttp, never changed


@functools.lru_cache(maxsize=16_384)
def _signed_in_headers(identity: Identity, max_groups_bytes: int | None) -> Mapping[str, str]:
    """A 202's headers for ``identity``: memoised, the same user asks with each of their requests.
    Read-only, and the kind aiohttp copies fastest (a multidict proxy: half the cost of a
    ``MappingProxyType`` of a dict)."""
    headers = {**pages.NO_STORE, **identity_headers(identity, max_groups_bytes, "X-Auth-Request-")}
    return CIMultiDictProxy(CIMultiDict(headers))
