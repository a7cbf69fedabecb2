"""Per-upstream conditions on how someone signed in: ``upstreams[].providers`` (which provider
vouches for them) and ``upstreams[].acr`` (how strongly: step-up).

A session from a provider the upstream does not list gets 403. A session whose ID token ``acr`` is
not one the upstream lists is sent to sign in again at its provider with ``acr_values`` (a browser
navigating: 302; other clients: 401 JSON naming the sign-in URL), unless its sign-in already asked
for exactly that (the provider did not deliver: 403, no loop). A bearer token whose ``acr`` falls
short gets 401 ``insufficient_user_authentication`` (RFC 9470): it can't be stepped up here.
"""

from __future__ import annotations

import logging

from aiohttp import web

from .. import pages
from ..routing import Upstream
from ..signin import ACR_VALUES, acr_verdict
from .access import REALM, Principal
from .context import provider_start_url

log = logging.getLogger(__name__)


def refusal(request: web.Request, who: Principal, upstream: Upstream) -> web.StreamResponse | None:
    """``None`` when ``who`` meets ``upstream``'s ``acr``, else the answer: a step-up sign-in, a
    403 page, or (bearer) a 401 challenge."""
    if not upstream.acr:
        return None
    required = " ".join(upstream.acr)
    requested = who.session.acr_requested if who.session is not None else None
    verdict = acr_verdict(upstream.acr, who.acr, requested, session=who.via == "session")
    if verdict == "ok":
        return None
    extra = {"event": "step_up", "sub": who.identity.sub, "upstream": upstream.prefix, "acr": who.acr}
    if verdict == "step_up":
        log.info("step-up sign-in required", extra=extra)
        url = provider_start_url(request, request.raw_path, who.provider, **{ACR_VALUES: required})
        if pages.wants_html(request) and request.method in ("GET", "HEAD"):
            return web.Response(status=302, headers={"Location": url, **pages.NO_STORE})
        body = {"error": "step_up_required", "message": "a stronger sign-in is required", "sign_in": url}
        return web.json_response(body, status=401, headers=pages.NO_STORE)
    log.info("denied: sign-in not strong enough", extra={**extra, "event": "denied", "rule": "acr"})
    if who.via == "bearer":
        challenge = (
            f'Bearer realm="{REALM}", error="insufficient_user_authentication", acr_values="{required}"'
        )
        body = {"error": "insufficient_user_authentication", "acr_values": required}
        return web.json_response(body, status=401, headers={**pages.NO_STORE, "WWW-Authenticate": challenge})
    return pages.error(
        request, 403, "Stronger sign-in required",
        "This page needs a stronger sign-in than the sign-in provider gave. Sign out and try again, "
        "or ask your administrator.",
    )  # fmt: skip


def wrong_provider(who: Principal, upstream: Upstream) -> bool:
    """Whether ``upstream`` is closed to ``who``'s provider (logged; the caller answers 403)."""
    if upstream.providers is None or who.provider in upstream.providers:
        return False
    log.info(
        "denied by upstream providers",
        extra={"event": "denied", "sub": who.identity.sub, "rule": "providers", "via": who.via,
               "provider": who.provider, "upstream": upstream.prefix},
    )  # fmt: skip
    return True
