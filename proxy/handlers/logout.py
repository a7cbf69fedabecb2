"""Sign-out that ends both sessions: ours (Redis key and cookie) and the provider's SSO session.

The browser goes to the provider's ``end_session_endpoint`` with ``id_token_hint``, ``client_id`` and
``post_logout_redirect_uri``. When that URL would be too long for the provider to accept (users with
hundreds of groups carry ID tokens of 20 kB), the same parameters are POSTed by a self-submitting
form instead, as RP-Initiated Logout allows.

CSRF: with ``logout.allow_get: false`` only a POST carrying the session's CSRF token signs out (form
field ``csrf`` or header ``X-CSRF-Token``; the token is an HMAC of the session id, see
``proxy.cookies``). Apps get it in the ``X-Auth-Request-Csrf-Token`` header of every signed-in
request the proxy forwards, and as ``csrf_token`` in ``/oauth/userinfo``. A GET then shows a page whose
button makes that POST, so plain "Sign out" links still work, with one more click. The default
(``allow_get: true``) signs out on any GET or POST, as before: a cross-site link can sign a user out.
"""

from __future__ import annotations

import logging
import secrets

from aiohttp import web

from .. import pages
from ..errors import ProviderUnavailable
from ..keys import COOKIES, PROVIDERS, SETTINGS, STORE
from ..metrics import record_logout
from ..oidc.client import revoke_refresh_token
from ..oidc.logout_url import provider_logout_url
from ..redirects import safe_redirect
from ..sessions.base import Session
from ..sessions.request import current_session
from .common import CSRF_FIELD, CSRF_HEADER, end_at_provider, end_other_sessions, own_origin, redirect

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


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


async def _csrf_refusal(request: web.Request) -> web.Response | None:
    """With ``logout.allow_get: false``: what to answer instead of signing out (``None``: go on).

    Without a validly signed session cookie there is nothing to end, so nothing to protect. A GET
    gets a page whose button makes the POST; a POST must carry the session's token.
    """
    if request.app[SETTINGS].logout.allow_get:
        return None
    codec = request.app[COOKIES]
    ticket = codec.ticket_from(request)
    if ticket is None:
        return None
    if request.method != "POST" and pages.wants_html(request):
        return _confirm_page(request, codec.csrf_token(ticket))
    token = request.headers.get(CSRF_HEADER)
    if token is None and request.method == "POST" and request.content_type in _FORMS:
        form = await request.post()
        for field in form.values():
            if isinstance(field, web.FileField):
                field.file.close()  # a multipart form may spool files: nothing here wants them
        value = form.get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    if token is not None and codec.csrf_valid(ticket, token):
        return None
    log.warning("sign-out refused: CSRF token missing or wrong", extra={"event": "csrf_refused"})
    return pages.error(
        request, 403, "Sign-out refused",
        "This sign-out request did not come from this site (its CSRF token is missing or wrong), so "
        "you are still signed in. Use the site's own Sign out button.",
        retry_url=request.raw_path,
    )  # fmt: skip


def _confirm_page(request: web.Request, token: str) -> web.Response:
    """Sign out? A button that POSTs back to the same URL (``rd`` kept) with the token."""
    body = pages.fragment(
        "sign_out_form", action=request.raw_path, field=CSRF_FIELD, token=token, label="Sign out"
    )
    return pages.html_page(request, 200, "Sign out?", "Do you want to sign out of this site?", body)


def post_form(request: web.Request, action: str, params: dict[str, str]) -> web.Response:
    """A page that POSTs ``params`` to ``action`` on load; a button does it when scripts are off."""
    nonce = secrets.token_urlsafe(16)
    fields = pages.concat(*(pages.fragment("hidden_field", name=k, value=v) for k, v in params.items()))
    body = pages.fragment("post_form", action=action, fields=fields, nonce=nonce)
    return pages.html_page(
        request, 200, "Signing out", "Finishing sign-out at the sign-in provider.", body, nonce=nonce,
        kind="signing_out",
    )  # fmt: skip


async def sign_out(request: web.Request) -> web.StreamResponse:
    app = request.app
    codec, store = app[COOKIES], app[STORE]
    refused = await _csrf_refusal(request)
    if refused is not None:
        return refused
    ticket = codec.ticket_from(request)
    try:
        session = await current_session(request)
    except ProviderUnavailable:  # its refresh failed: sign-out still ends the session here
        session = await store.load(ticket, cached=False) if ticket is not None else None
    if session is not None and request.query.get("everywhere") == "1":
        await end_other_sessions(request, session.user_key)
    if ticket is not None:
        await store.delete(ticket, session)
    target = logout_target(request)
    settings = app[SETTINGS].logout
    response: web.Response
    if session is not None and settings.revoke_tokens:
        await _revoke(request, session)
    if session is None:
        response = redirect(target)
    elif settings.mode == "backend" and settings.provider_logout_url is None:
        response = await _backend_logout(request, session, target)
    else:
        response = _browser_logout(request, session, target)
    if session is not None:
        log.info("logout", extra={"event": "logout", "sub": session.identity.sub})
        record_logout(app, "user")
    codec.clear(response)
    return response


def _browser_logout(request: web.Request, session: Session, target: str) -> web.Response:
    """Send the browser to end the provider's session (``proxy.oidc.logout_url``), or say plainly
    that it could not be ended when the provider offers no way to."""
    app = request.app
    settings = app[SETTINGS].logout
    entry = app[PROVIDERS].find_session(session.provider)
    if entry is None:
        return local_only(request, target, "the session's provider is no longer configured", session)
    provider = entry.discovery
    found = provider_logout_url(
        template=settings.provider_logout_url,
        end_session_endpoint=provider.metadata.end_session_endpoint if provider.ready else None,
        client_id=entry.client.client_id,
        id_token_hint=session.id_token,
        post_logout_redirect_uri=target,
        send_post_logout_redirect_uri=settings.send_post_logout_redirect_uri,
    )
    if found is None:
        why = "discovery has no end_session_endpoint" if provider.ready else "discovery has not succeeded"
        return local_only(request, target, f"{why} and logout.provider_logout_url is not set", session)
    url, params = found
    if len(url) <= settings.max_url_length:
        return redirect(url)
    if not params:  # a template: no form to POST instead
        log.warning(
            "provider_logout_url is %d characters, over logout.max_url_length; sent anyway", len(url),
            extra={"event": "logout_url_long"},
        )  # fmt: skip
        return redirect(url)
    return post_form(request, provider.metadata.end_session_endpoint or "", params)


def local_only(request: web.Request, target: str, why: str, session: Session) -> web.Response:
    """Signed out here only: the page and the log line say so (the provider's session lives on)."""
    log.warning(
        "provider session not ended: %s", why,
        extra={"event": "logout_local_only", "sub": session.identity.sub},
    )  # fmt: skip
    return pages.html_page(
        request, 200, "Signed out of this site only",
        "You are signed out of this site, but your session at the sign-in provider was not ended: the "
        "provider offers no sign-out this site can use, so signing in again may not ask for your "
        "password. Sign out at the provider too, or close the browser.",
        pages.link(target, "Continue"), kind="signed_out_local",
    )  # fmt: skip


async def _backend_logout(request: web.Request, session: Session, target: str) -> web.Response:
    """End the provider's session from here; the browser goes straight to ``target``."""
    entry = request.app[PROVIDERS].find_session(session.provider)
    provider = entry.discovery if entry is not None else None
    if not (provider is not None and provider.ready and provider.metadata.end_session_endpoint):
        return local_only(request, target, "discovery has no end_session_endpoint", session)
    ended = await end_at_provider(
        request.app,
        id_token=session.id_token,
        refresh_token=session.refresh_token,
        sub=session.identity.sub,
        provider=session.provider,
    )
    if not ended:
        return pages.html_page(
            request, 200, "Signed out here",
            "You are signed out of this site, but the sign-in provider could not be reached: your session "
            "there may still be active. Sign out at the provider too, or close the browser.",
            pages.link(target, "Continue"),
        )  # fmt: skip
    return redirect(target)


async def _revoke(request: web.Request, session: Session) -> None:
    entry = request.app[PROVIDERS].find_session(session.provider)
    if session.refresh_token is None or entry is None or not entry.discovery.ready:
        return
    try:
        await revoke_refresh_token(entry.http, entry.discovery.metadata, entry.client, session.refresh_token)
    except ProviderUnavailable as exc:
        log.warning(
            "refresh token not revoked: %s",
            exc.message,
            extra={"event": "revoke_failed", "sub": session.identity.sub},
        )


def _provider_logout_known(app: web.Application) -> bool:
    """Whether sign-out can end a session at any provider here (else the page says it may live on)."""
    if app[SETTINGS].logout.provider_logout_url is not None:
        return True
    registry = app[PROVIDERS]
    started = list(registry)
    return bool(started) and all(
        p.discovery.ready and bool(p.discovery.metadata.end_session_endpoint) for p in started
    )


async def signed_out(request: web.Request) -> web.StreamResponse:
    """Where sign-out can land: public (outside the proxied app), so showing it needs no session."""
    return pages.html_page(
        request, 200, "Signed out",
        "You are signed out of this site and at the sign-in provider."
        if _provider_logout_known(request.app)
        else "You are signed out of this site. (The sign-in provider offers no sign-out this site can "
        "use: your session there may still be active.)",
        pages.link("/", "Sign in again"), kind="signed_out",
    )  # fmt: skip
