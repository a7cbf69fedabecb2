"""Login: ``/start`` sends the browser to the provider, ``/callback`` turns its answer into a session."""

from __future__ import annotations

import logging
import secrets
import time

from aiohttp import web

from .. import pages
from ..errors import ProviderUnavailable, ProxyError
from ..keys import COOKIES, PROVIDERS, REPLAY, SETTINGS, STEP_UPS, STORE, TEMPLATES
from ..login_state import CLOCK_SKEW, LOGIN_TTL, MAX_COOKIE_BYTES, MAX_RD_BYTES, PendingLogin, new_state
from ..metrics import record_login
from ..oidc.bearer import login_identity
from ..oidc.client import authorization_url, exchange_code
from ..oidc.providers import display_name
from ..oidc.tokens import verify_id_token
from ..oidc.userinfo import with_userinfo
from ..redirects import safe_redirect
from ..sessions.base import Session, scoped
from ..signin import ACR_VALUES, ParamRefused, sign_in_params
from .common import client_ip, original_url, own_origin, prefix, provider_start_url, redirect, start_url

log = logging.getLogger(__name__)


async def start(request: web.Request) -> web.StreamResponse:
    """Seal a new login into a login cookie slot and send the browser to the provider. Nothing is
    stored: an anonymous request here costs CPU only (``proxy.login_state``). With several
    providers and no ``provider=`` in the query, the sign-in page lets the user pick one."""
    settings, codec = request.app[SETTINGS], request.app[COOKIES]
    providers = request.app[PROVIDERS]
    wanted = request.query.get("provider")
    if wanted is None and len(providers) > 1:
        return await sign_in(request)
    entry = providers.default if wanted is None else providers.find(wanted)
    if entry is None or len(request.query.getall("provider", [])) > 1:
        log.warning("unknown provider on /start", extra={"event": "unknown_provider"})
        return pages.error(
            request, 400, "Unknown sign-in provider", "There is no such sign-in provider here."
        )
    try:
        repeated = [k for k in set(request.query) if len(request.query.getall(k)) > 1]
        params = sign_in_params(entry.config, request.query, repeated, request.app[STEP_UPS])
    except ParamRefused as exc:
        log.warning("sign-in parameter refused: %s", exc.name, extra={"event": "param_refused"})
        return pages.error(
            request, 400, "Sign-in parameter refused", f"The value of {exc.name} is not allowed here."
        )
    meta = entry.discovery.metadata
    await entry.discovery.check_reachable()
    own = own_origin(request)
    # rd, else the original URL an auth_request caller names (nginx's @signin passes it as a header)
    rd = request.query.get("rd") or original_url(request)
    if rd and len(rd.encode()) > MAX_RD_BYTES:
        return _rd_too_long(request, len(rd.encode()))
    return_to = safe_redirect(rd, own, settings.logout.allowed_redirect_domains)
    if return_to is None:
        if rd:
            log.warning("rejected unsafe rd on /start", extra={"event": "unsafe_redirect"})
        return_to = own + "/"
    now = time.time()
    state = new_state(codec.login_slot_for(request, now))
    nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    redirect_uri = entry.config.redirect_url or f"{own}{prefix(request)}/callback"
    login = PendingLogin(state, nonce, verifier, redirect_uri, return_to, now, entry.id, params)
    cookie = codec.login_cookie_value(login)
    if len(cookie[0]) + len(cookie[1]) > MAX_COOKIE_BYTES:  # rd within its limit, but escaped longer
        return _rd_too_long(request, len((rd or "").encode()))
    url = authorization_url(
        meta,
        entry.client,
        redirect_uri=redirect_uri,
        state=state,
        nonce=nonce,
        code_verifier=verifier,
        extra=dict(params),
    )
    response = redirect(url)
    codec.set_login(response, request, cookie, now)
    return response


def _rd_too_long(request: web.Request, size: int) -> web.StreamResponse:
    log.warning("rd too long on /start: %d bytes", size, extra={"event": "rd_too_long"})
    return pages.error(
        request, 400, "Address too long",
        f"The address to return to after sign-in is too long (at most {MAX_RD_BYTES} bytes).",
    )  # fmt: skip


async def sign_in(request: web.Request) -> web.StreamResponse:
    """The sign-in page (``pages.skip_provider_button: false``, or several providers): a button per
    provider, on to it."""
    own = own_origin(request)
    wanted = request.query.get("rd") or original_url(request)  # nginx's @signin names it in a header
    rd = safe_redirect(wanted, own, request.app[SETTINGS].logout.allowed_redirect_domains)
    providers = request.app[PROVIDERS]
    if len(providers) == 1:
        provider = request.app[TEMPLATES].provider
        button = pages.link(provider_start_url(request, rd or own + "/"), f"Sign in with {provider}")
        return pages.html_page(
            request, 200, "Sign in", f"Sign in with {provider} to continue.", button, kind="sign_in"
        )
    buttons = pages.concat(
        *(
            pages.link(
                provider_start_url(request, rd or own + "/", cfg.id), f"Sign in with {display_name(cfg)}"
            )
            for cfg in providers.configs
        )
    )
    return pages.html_page(
        request, 200, "Sign in", "Choose how to sign in to continue.", buttons, kind="sign_in"
    )


async def callback(request: web.Request) -> web.StreamResponse:
    retry = start_url(request, "/")
    state = request.query.get("state", "")
    try:
        response = await _callback(request, state)
    except ProxyError as exc:
        log.warning("login failed: %s", exc.message, extra={"event": "login_failed"})
        if isinstance(exc, ProviderUnavailable):
            for entry in request.app[PROVIDERS]:
                entry.discovery.suspect()
        record_login(request.app, ok=False)
        response = pages.error(request, exc.status, exc.title, exc.user_message, retry_url=retry)
    codec = request.app[COOKIES]
    if state and codec.pending_login(request, state) is not None:
        # whatever the outcome: one try per login. Only this login's: a slot another start has
        # taken since keeps that start's login.
        codec.clear_login(response, state)
    return response


class _Fail(ProxyError):
    status = 400
    title = "Sign-in did not complete"


_NO_LOGIN = (
    "This sign-in has expired or was already used, or was started in another browser "
    "(or its cookie was lost). Please sign in again."
)


def _pending(request: web.Request, state: str) -> PendingLogin:
    """The login this browser started with ``state``, if it still may finish."""
    login = request.app[COOKIES].pending_login(request, state)
    if login is None:
        raise _Fail(_NO_LOGIN)
    if not login.fresh(time.time()):
        raise _Fail("This sign-in has expired. Please sign in again.")
    return login


async def _callback(request: web.Request, state: str) -> web.StreamResponse:
    app, q = request.app, request.query
    settings, store, codec = app[SETTINGS], app[STORE], app[COOKIES]
    if "error" in q:
        reason = q.get("error_description") or q.get("error", "")
        raise _Fail(f"The sign-in provider answered: {reason[:200]}")
    if not state or not q.get("code"):
        raise _Fail("The sign-in answer is missing its code or state.")
    login = _pending(request, state)
    # The provider this login was sent to, and no other (mix-up): its token endpoint, keys, issuer.
    entry = app[PROVIDERS].find_session(login.provider)
    if entry is None:
        raise _Fail("The sign-in provider of this sign-in is no longer configured. Please sign in again.")
    provider, client = entry.discovery, entry.client
    iss = q.get("iss")  # RFC 9207: the answer names its issuer; it must be the one we sent it to
    if iss is None and provider.metadata.iss_in_response:
        raise _Fail("The sign-in answer does not name its provider, as this provider always does.")
    if iss is not None and iss != provider.metadata.issuer:
        raise _Fail("The sign-in answer came from another provider than the one this sign-in went to.")
    exchanged_at = time.time()
    tokens = await exchange_code(
        entry.http,
        provider.metadata,
        client,
        code=q["code"],
        redirect_uri=login.redirect_uri,
        code_verifier=login.code_verifier,
    )
    if tokens.id_token is None:  # parse() requires one after a code exchange; this keeps mypy sure of it
        raise _Fail("The sign-in provider returned no ID token.")
    id_claims = await verify_id_token(
        provider,
        tokens.id_token,
        client_id=client.client_id,
        nonce=login.nonce,
        access_token=tokens.access_token,
    )
    claims = await with_userinfo(
        entry.http, provider.metadata, entry.config.userinfo, id_claims, tokens.access_token
    )
    sid = id_claims["sid"] if isinstance(id_claims.get("sid"), str) else None  # never from userinfo
    if "\x00" in id_claims["sub"] or (sid is not None and "\x00" in sid):  # see sessions.base.scoped
        raise _Fail("The sign-in provider returned an unusable subject or session id.")
    # One session per login, even from a provider that took the same code twice. Written only
    # after the provider vouched for this login, so anonymous requests never reach the store.
    if not await app[REPLAY].first_use("login:" + state, LOGIN_TTL + CLOCK_SKEW):
        raise _Fail(_NO_LOGIN)
    now = time.time()
    acr = id_claims.get("acr")
    session = Session(
        identity=login_identity(settings.authorization, claims, tokens.access_token),
        id_token=tokens.id_token,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        sid=scoped(entry.id, sid) if sid is not None else None,
        created_at=now,
        expires_at=now + settings.session.lifetime,
        access_expires_at=now + tokens.expires_in if tokens.expires_in else None,
        refresh_expires_at=now + tokens.refresh_expires_in if tokens.refresh_expires_in else None,
        provider=entry.id,
        acr=acr if isinstance(acr, str) else None,
        acr_requested=dict(login.params).get(ACR_VALUES),
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
    log.info("login", extra={"event": "login", "sub": session.identity.sub, "provider": entry.id})
    record_login(app, ok=True)
    response = redirect(login.return_to)
    codec.set(response, ticket)
    return response
