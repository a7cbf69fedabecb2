"""``/oauth/auth``: the question nginx ``auth_request``, ingress-nginx ``auth-url`` and Traefik
``forwardAuth`` ask for every request — is this browser signed in, and as whom?

    202  signed in (or a valid bearer token, with ``api.accept_bearer``) and allowed:
         X-Auth-Request-User/-Email/-Preferred-Username/-Groups; also a public route
         (``authorization.skip_auth_routes``, matched on the original request's method and path as
         the front named in ``auth_request.front`` reports them, see proxy/fronts.py), then without
         identity headers
    400  conflicting copies of the front's headers (a header it sends once, twice): not guessed
    401  not signed in (nginx turns it into a redirect; ``?redirect=1`` makes it a 302 for callers
         that can't, such as Traefik); a bad bearer token: ``WWW-Authenticate: Bearer
         error="invalid_token"``
    403  signed in but refused by the global ``authorization`` rules or this location's narrowing
         (``allowed_groups`` / ``allowed_roles`` / ``allowed_emails`` / ``allowed_email_domains``,
         ``providers``: ids of the providers whose sessions and bearer tokens may pass), or by
         ``authorization.rules`` on the original method and URI (unknown ones: refused)
    503  the session store or the provider's keys are unreachable (never 202)
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from .. import pages
from ..authz import Rules, first_denial
from ..forward_headers import identity_headers
from ..fronts import FrontConflict
from ..identity import Identity, Principal
from ..inject import Injection
from ..keys import INJECT, RULES, SETTINGS
from ..redirects import safe_redirect
from .access import (
    BearerRejected,
    bearer_challenge,
    denial,
    invalid_token,
    principal,
    rule_denial,
    skip_auth,
)
from .common import original, start_url

log = logging.getLogger(__name__)


def conflict(exc: FrontConflict) -> web.Response:
    log.warning(
        "refused: conflicting front headers: %s", exc, extra={"event": "front_conflict", "header": exc.header}
    )
    text = f"conflicting copies of {exc.header}: {exc.why}; check auth_request.front and the front's config\n"
    return web.Response(status=400, text=text, headers=pages.NO_STORE)


async def auth_check(request: web.Request) -> web.StreamResponse:
    app = request.app
    settings, book = app[SETTINGS], app[RULES]
    try:
        orig = original(request)
    except FrontConflict as exc:
        return conflict(exc)
    if book.has_public_routes:
        candidate = orig.public_candidate()
        if candidate is not None and skip_auth(request, *candidate):
            return web.Response(status=202, headers=pages.NO_STORE)
    try:
        who = await principal(request)
    except BearerRejected:
        return invalid_token(json_body=False)
    headers = {**pages.NO_STORE}
    if who is None:
        headers.update(bearer_challenge(request))
        if request.query.get("redirect") == "1" and orig.method in ("GET", "HEAD"):
            # Absolute, on the browser's origin as the front saw it: Traefik resolves a relative
            # Location against the forwardAuth address, which browsers can't reach. Only a plain
            # host[:port] makes an origin, and the URL still goes through the redirect guard.
            origin, url = orig.origin, orig.url
            target = safe_redirect(url, origin or "", settings.logout.allowed_redirect_domains)
            if target is not None and origin is not None:
                location = origin + start_url(request, target)
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
        denial(request, who, all_rules, orig.uri or "?")
        return web.Response(status=403, headers=headers)
    if rule_denial(request, who, orig.method, orig.uri):  # as the front reports the request
        return web.Response(status=403, headers=headers)
    if "providers" in request.query and not _from_provider(who, request.query.get("providers", "")):
        return web.Response(status=403, headers=headers)
    signed_in = _signed_in_headers(
        identity, settings.headers.max_groups_bytes, app[INJECT].everywhere, who.access_token, who.id_token
    )
    if settings.headers.pass_access_token:
        return web.Response(
            status=202, headers={**signed_in, "X-Auth-Request-Access-Token": who.access_token}
        )
    return web.Response(status=202, headers=signed_in)  # copied by aiohttp, never changed


def _from_provider(who: Principal, listed: str) -> bool:
    """``?providers=a,b``: only principals of those providers (ids) pass this location."""
    if who.provider in {p.strip() for p in listed.split(",")}:
        return True
    log.info(
        "denied by the location's providers",
        extra={"event": "denied", "sub": who.identity.sub, "rule": "providers", "provider": who.provider},
    )
    return False


@functools.lru_cache(maxsize=16_384)
def _signed_in_headers(
    identity: Identity, max_groups_bytes: int | None, scope: Injection, access: str, id_token: str | None
) -> Mapping[str, str]:
    """A 202's headers for ``identity``: the identity headers (groups through ``groups_filter``) and
    the injected ones (``proxy.inject``). Memoised: the same user asks with each of their requests,
    and the tokens change only at a refresh. Read-only, and the kind aiohttp copies fastest (a
    multidict proxy: half the cost of a ``MappingProxyType`` of a dict)."""
    shown = scope.filter_groups(identity)
    headers = {**pages.NO_STORE, **identity_headers(shown, max_groups_bytes, "X-Auth-Request-")}
    headers.update(scope.headers(identity, access, id_token, auth=True))
    return CIMultiDictProxy(CIMultiDict(headers))
