"""What more than one handler needs, so that no handler module imports another:

- where the browser is: this proxy's origin, its own URLs, the client's address;
- what the front proxy says about the original request (``original``, ``original_url``);
- answers: a redirect; the sign-out CSRF token of a request's session cookie;
- ending sessions from the server: at the provider (``end_at_provider``), and all of a user's
  other sessions ("sign out everywhere").

Who is asking and whether they may (sessions, bearer tokens, rules) is ``handlers.access``.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from aiohttp import web

from .. import pages
from ..errors import ProviderUnavailable
from ..fronts import NOTHING, FrontConflict, Original, read_original
from ..keys import CLIENT, COOKIES, PROVIDERS, SETTINGS, STORE, TRUST
from ..metrics import record_logout
from ..oidc.client import end_session_backend
from ..redirects import origin
from ..sessions.records import SessionRecord
from ..sessions.request import current_ticket
from ..trusted_proxies import RemoteClient

log = logging.getLogger(__name__)

CSRF_FIELD = "csrf"
"""The form field of a POST (sign-out, ending a session) that carries the CSRF token."""
CSRF_HEADER = "X-CSRF-Token"
"""The header that may carry it instead (scripts)."""
UPSTREAM_CSRF_HEADER = "X-Auth-Request-Csrf-Token"
"""Sent upstream with each signed-in request (clients' copies are dropped, as every X-Auth-Request-*)."""


def client(request: web.Request) -> RemoteClient:
    """Who sent the request: the peer, or the right-most untrusted hop behind a trusted proxy
    (``server.trusted_proxies``); worked out once per request."""
    found = request.get(CLIENT)
    if found is None:
        found = request.app[TRUST].resolve(request.remote, request.headers)
        request[CLIENT] = found
    return found


def own_origin(request: web.Request) -> str:
    """This proxy's origin as the browser sees it (a trusted proxy's X-Forwarded-Proto/-Host)."""
    who = client(request)
    return origin(who.scheme or request.scheme, who.host or request.host)


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
    """The browser's address (see :func:`client`)."""
    return client(request).ip


def original(request: web.Request) -> Original:
    """The original request as the configured front (``auth_request.front``) reports it;
    :class:`FrontConflict` when it carries conflicting copies of the front's headers. With
    ``server.trusted_proxies`` set, only a peer in them is the front: anyone else is told nothing
    about (no public route, no redirect), as with ``front: none``."""
    if not request.app[TRUST].trusts_peer(request.remote):
        return NOTHING
    return read_original(request.app[SETTINGS].auth_request.front, request.headers)


def original_url(request: web.Request) -> str | None:
    """The URL of the request the front asks about (nginx's ``@signin`` passes it to /oauth/start);
    ``None`` when the front sent none, or conflicting copies, or a host that is not a plain host."""
    try:
        return original(request).url
    except FrontConflict:
        return None


def redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location, **pages.NO_STORE})


def csrf_token(request: web.Request) -> str | None:
    """The sign-out CSRF token of the request's session cookie, ``None`` without a valid one."""
    codec = request.app[COOKIES]
    ticket = codec.ticket_from(request)
    return None if ticket is None else codec.csrf_token(ticket)


async def end_at_provider(
    app: web.Application,
    *,
    id_token: str | None,
    refresh_token: str | None,
    sub: str | None = None,
    provider: str | None = None,
) -> bool:
    """End a provider session from the server (logout.mode backend, other devices) at the session's
    provider (``provider``: its id); whether that worked. A failure is logged: the provider session
    may persist."""
    if refresh_token is None and id_token is None:
        return False
    try:
        entry = app[PROVIDERS].of_session(provider)
        await end_session_backend(
            entry.http, entry.discovery.metadata, entry.client, id_token=id_token, refresh_token=refresh_token
        )
    except ProviderUnavailable as exc:
        log.warning(
            "provider session may persist: %s", exc.message, extra={"event": "logout_local_only", "sub": sub}
        )
        return False
    return True


async def end_record_at_provider(app: web.Application, record: SessionRecord) -> bool:
    return await end_at_provider(
        app, id_token=record.id_token_hint, refresh_token=record.refresh_token, provider=record.provider
    )


async def end_other_sessions(request: web.Request, sub: str) -> int:
    """Sign out everywhere else: every other session of the user ``sub`` (``Session.user_key``: scoped
    by provider), here and at their provider."""
    store = request.app[STORE]
    ticket = current_ticket(request)
    current = ticket.id.hex() if ticket else None
    ended = 0
    for record, _ in await store.user_sessions(sub):
        if record.session_id == current:
            continue
        if await store.end_by_id(sub, record.session_id) is not None:
            ended += 1
            await end_record_at_provider(request.app, record)
    log.info(
        "signed out everywhere", extra={"event": "logout", "kind": "everywhere", "sub": sub, "ended": ended}
    )
    record_logout(request.app, "everywhere")
    return ended
