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
from ..keys import COOKIES, PROVIDER, PROVIDER_CLIENT, SETTINGS, STORE
from ..oidc.client import end_session_params, end_session_url
from ..redirects import safe_redirect
from ..sessions.request import current_session
from .auth import redirect
from .context import own_origin

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
    if ticket is not None:
        await store.delete(ticket, session)
    target = logout_target(request)
    provider = app[PROVIDER]
    endpoint = provider.metadata.end_session_endpoint if provider.ready else None
    response: web.Response
    if session is not None and endpoint:
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
