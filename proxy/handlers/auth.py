"""Login: ``/start`` sends the browser to the provider, ``/callback`` turns its answer into a session."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time

from aiohttp import web

from .. import pages
from ..errors import ProviderUnavailable, ProxyError
from ..keys import COOKIES, PROVIDER, PROVIDER_CLIENT, PROVIDER_HTTP, SETTINGS, STORE, TEMPLATES
from ..metrics import record_login
from ..oidc.bearer import login_identity
from ..oidc.client import authorization_url, exchange_code
from ..oidc.tokens import verify_id_token
from ..redirects import safe_redirect
from ..sessions.base import LoginState, Session
from ..sessions.store import LOGIN_TTL
from .auth_request import original_url
from .context import client_ip, own_origin, prefix, provider_start_url, start_url

log = logging.getLogger(__name__)

_BINDING = re.compile(r"[A-Za-z0-9_-]{32,64}")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location, **pages.NO_STORE})


async def start(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    meta = request.app[PROVIDER].metadata
    await request.app[PROVIDER].check_reachable()
    own = own_origin(request)
    # rd, else the original URL an auth_request caller names (nginx's @signin passes it as a header)
    rd = request.query.get("rd") or original_url(request)
    return_to = safe_redirect(rd, own, settings.logout.allowed_redirect_domains)
    if return_to is None:
        if rd:
            log.warning("rejected unsafe rd on /start", extra={"event": "unsafe_redirect"})
        return_to = own + "/"
    # One binding value per browser, reused while it lives, so that logins started in two tabs
    # both complete; each login's state is still single-use.
    binding = request.cookies.get(request.app[COOKIES].login_name, "")
    if not _BINDING.fullmatch(binding):
        binding = secrets.token_urlsafe(32)
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    redirect_uri = settings.provider.redirect_url or f"{own}{prefix(request)}/callback"
    await request.app[STORE].put_login(
        state, LoginState(nonce, verifier, redirect_uri, return_to, _digest(binding))
    )
    url = authorization_url(
        meta,
        request.app[PROVIDER_CLIENT],
        redirect_uri=redirect_uri,
        state=state,
        nonce=nonce,
        code_verifier=verifier,
    )
    response = redirect(url)
    request.app[COOKIES].set_login(response, binding, LOGIN_TTL)
    return response


async def sign_in(request: web.Request) -> web.StreamResponse:
    """The sign-in page (``pages.skip_provider_button: false``): one button, on to the provider."""
    own = own_origin(request)
    rd = safe_redirect(request.query.get("rd"), own, request.app[SETTINGS].logout.allowed_redirect_domains)
    provider = request.app[TEMPLATES].provider
    return pages.html_page(
        request, 200, "Sign in", f"Sign in with {provider} to continue.",
        pages.link(provider_start_url(request, rd or own + "/"), f"Sign in with {provider}"), kind="sign_in",
    )  # fmt: skip


async def callback(request: web.Request) -> web.StreamResponse:
    retry = start_url(request, "/")
    try:
        return await _callback(request)
    except ProxyError as exc:
        log.warning("login failed: %s", exc.message, extra={"event": "login_failed"})
        if isinstance(exc, ProviderUnavailable):
            request.app[PROVIDER].suspect()
        record_login(request.app, ok=False)
        return pages.error(request, exc.status, exc.title, exc.user_message, retry_url=retry)


class _Fail(ProxyError):
    status = 400
    title = "Sign-in did not complete"


async def _callback(request: web.Request) -> web.StreamResponse:
    app, q = request.app, request.query
    settings, store, codec = app[SETTINGS], app[STORE], app[COOKIES]
    state = q.get("state", "")
    if "error" in q:
        if state:
            await store.take_login(state)
        reason = q.get("error_description") or q.get("error", "")
        raise _Fail(f"The sign-in provider answered: {reason[:200]}")
    if not state or not q.get("code"):
        raise _Fail("The sign-in answer is missing its code or state.")
    login = await store.take_login(state)
    if login is None:
        raise _Fail("This sign-in has expired or was already used. Please sign in again.")
    binding = request.cookies.get(codec.login_name, "")
    if not binding or not hmac.compare_digest(_digest(binding), login.browser_binding):
        raise _Fail("This sign-in was started in another browser or its cookie was lost.")
    provider = app[PROVIDER]
    client = app[PROVIDER_CLIENT]
    exchanged_at = time.time()
    tokens = await exchange_code(
        app[PROVIDER_HTTP],
        provider.metadata,
        client,
        code=q["code"],
        redirect_uri=login.redirect_uri,
        code_verifier=login.code_verifier,
    )
    if tokens.id_token is None:  # parse() requires one after a code exchange; this keeps mypy sure of it
        raise _Fail("The sign-in provider returned no ID token.")
    claims = await verify_id_token(
        provider,
        tokens.id_token,
        client_id=client.client_id,
        nonce=login.nonce,
        access_token=tokens.access_token,
    )
    now = time.time()
    session = Session(
        identity=login_identity(settings.authorization, claims, tokens.access_token),
        id_token=tokens.id_token,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        sid=claims["sid"] if isinstance(claims.get("sid"), str) else None,
        created_at=now,
        expires_at=now + settings.session.lifetime,
        access_expires_at=now + tokens.expires_in if tokens.expires_in else None,
        refresh_expires_at=now + tokens.refresh_expires_in if tokens.refresh_expires_in else None,
    )
    old = codec.ticket_from(request)
    if old is not None:
        await store.delete(old)  # a fresh id at every login; the previous session ends
    ticket = await store.create(
        session,
        user_agent=request.headers.get("User-Agent", ""),
        ip=client_ip(request),
        exchanged_at=exchanged_at,
    )
    log.info("login", extra={"event": "login", "sub": session.identity.sub})
    record_login(app, ok=True)
    response = redirect(login.return_to)
    codec.set(response, ticket)
    return response
