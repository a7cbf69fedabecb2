"""Sign-out that ends both sessions: ours (Redis key and cookie) and the provider's SSO session.

The browser goes to the provider's ``end_session_endpoint`` with ``id_token_hint``, ``client_id`` and
``post_logout_redirect_uri``. When that URL would be too long for the provider to accept (users with
hundreds of groups carry ID tokens of 20 kB), the same parameters are POSTed by a self-submitting
form instead, as RP-Initiated Logout allows.
"""

from __future__ import annotations

import html
import logging
import secrets

from aiohttp import web

from .. import pages
from ..errors import ProviderUnavailable
from ..keys import COOKIES, PROVIDER, PROVIDER_CLIENT, PROVIDER_HTTP, SETTINGS, STORE
from ..oidc.client import end_session_backend, end_session_params, end_session_url, revoke_refresh_token
from ..redirects import safe_redirect
from ..sessions.base import Session
from ..sessions.request import current_session
from .auth import redirect
from .context import own_origin
from .sessions import end_other_sessions

log = logging.getLogger(__name__)


def logout_target(request: web.Request) -> str:
    """The validated ``rd`` made absolute, else ``logout.default_redirect``."""
    settings = request.app[SETTINGS]
    own = own_origin(request)
    allowed = settings.logout.allowed_redirect_domains
    rd = request.query.get("rd")
    target = safe_redirect(rd, own, allowed)
    if target is None and rd:
        log.warning("rejected unsafe rd on sign_out", extra={"event": "unsafe_redirect"})
    default = settings.logout.default_redirect
    return target or (own + default if default.startswith("/") else default)


def post_form(request: web.Request, action: str, params: dict[str, str]) -> web.Response:
    """A page that POSTs ``params`` to ``action`` on load; a button does it when scripts are off."""
    nonce = secrets.token_urlsafe(16)
    fields = "".join(
        f'<input type="hidden" name="{html.escape(k, quote=True)}" value="{html.escape(v, quote=True)}">'
        for k, v in params.items()
    )
    body = (
        f'<form id="end-session" method="post" action="{html.escape(action, quote=True)}">{fields}'
        '<button type="submit">Continue signing out</button></form>'
        f'<script nonce="{nonce}">document.getElementById("end-session").submit();</script>'
    )
    return pages.html_page(
        request, 200, "Signing out", "Finishing sign-out at the sign-in provider.", body, nonce=nonce
    )


async def sign_out(request: web.Request) -> web.StreamResponse:
    app = request.app
    codec, store = app[COOKIES], app[STORE]
    session = await current_session(request)
    ticket = codec.ticket_from(request.cookies)
    if session is not None and request.query.get("everywhere") == "1":
        await end_other_sessions(request, session.identity.sub)
    if ticket is not None:
        await store.delete(ticket, session)
    target = logout_target(request)
    provider = app[PROVIDER]
    endpoint = provider.metadata.end_session_endpoint if provider.ready else None
    settings = app[SETTINGS].logout
    response: web.Response
    if session is not None and settings.revoke_tokens:
        await _revoke(request, session)
    if session is not None and settings.mode == "backend":
        response = await _backend_logout(request, session, target)
    elif session is not None and endpoint:
        params = end_session_params(
            app[PROVIDER_CLIENT], id_token_hint=session.id_token, post_logout_redirect_uri=target
        )
        url = end_session_url(endpoint, params)
        if len(url) <= app[SETTINGS].logout.max_url_length:
            response = redirect(url)
        else:
            response = post_form(request, endpoint, params)
    else:
        if session is not None:
            log.warning(
                "provider session may persist: no end_session_endpoint known",
                extra={"event": "logout_local_only", "sub": session.identity.sub},
            )
        response = redirect(target)
    if session is not None:
        log.info("logout", extra={"event": "logout", "sub": session.identity.sub})
    codec.clear(response)
    return response


async def _backend_logout(request: web.Request, session: Session, target: str) -> web.Response:
    """End the provider's session from here; the browser goes straight to ``target``."""
    app = request.app
    try:
        await end_session_backend(
            app[PROVIDER_HTTP], app[PROVIDER].metadata, app[PROVIDER_CLIENT],
            id_token=session.id_token, refresh_token=session.refresh_token,
        )  # fmt: skip
    except ProviderUnavailable as exc:
        log.warning(
            "provider session may persist: %s", exc.message,
            extra={"event": "logout_local_only", "sub": session.identity.sub},
        )  # fmt: skip
        return pages.html_page(
            request, 200, "Signed out here",
            "You are signed out of this site, but the sign-in provider could not be reached: your session "
            "there may still be active. Sign out at the provider too, or close the browser.",
            pages.link(target, "Continue"),
        )  # fmt: skip
    return redirect(target)


async def _revoke(request: web.Request, session: Session) -> None:
    app = request.app
    if session.refresh_token is None or not app[PROVIDER].ready:
        return
    try:
        await revoke_refresh_token(
            app[PROVIDER_HTTP], app[PROVIDER].metadata, app[PROVIDER_CLIENT], session.refresh_token
        )
    except ProviderUnavailable as exc:
        log.warning("refresh token not revoked: %s", exc.message, extra={"sub": session.identity.sub})


async def signed_out(request: web.Request) -> web.StreamResponse:
    """Where sign-out can land: public (outside the proxied app), so showing it needs no session."""
    return pages.html_page(
        request, 200, "Signed out",
        "You are signed out of this site and at the sign-in provider.",
        pages.link("/", "Sign in again"),
    )  # fmt: skip
