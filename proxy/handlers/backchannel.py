"""OIDC Back-Channel (and Front-Channel) Logout: the provider tells us a session ended; we end ours,
everywhere (back-channel: a signed logout token) or in this browser only (front-channel: unsigned).

``POST /oauth/backchannel_logout`` with a form field ``logout_token``. 200 when the token is valid
(whether or not we had sessions for it), 400 with a JSON error otherwise; a bad token deletes
nothing. Sessions live in the shared store, so every replica sees the deletion at once.
"""

from __future__ import annotations

import logging
from hmac import compare_digest
from urllib.parse import urlsplit

from aiohttp import web

from ..errors import TokenInvalid
from ..keys import COOKIES, PROVIDERS, REPLAY, SETTINGS, STORE
from ..metrics import record_logout
from ..oidc.tokens import LEEWAY, LOGOUT_TOKEN_MAX_AGE, unverified_issuer, verify_logout_token
from ..page_templates import builtin
from ..sessions.base import scoped

log = logging.getLogger(__name__)

HEADERS = {"Cache-Control": "no-store"}


def _error(description: str) -> web.Response:
    return web.json_response(
        {"error": "invalid_request", "error_description": description}, status=400, headers=HEADERS
    )


async def backchannel_logout(request: web.Request) -> web.StreamResponse:
    if request.content_type != "application/x-www-form-urlencoded":
        return _error("expected an application/x-www-form-urlencoded body")
    form = await request.post()
    raw = form.get("logout_token")
    if not isinstance(raw, str) or not raw:
        return _error("logout_token is missing")
    app = request.app
    # The token names its issuer; that provider's keys, issuer and client id then verify it, and
    # it ends only that provider's sessions (sids and subs are scoped by provider).
    entry = app[PROVIDERS].by_issuer(unverified_issuer(raw) or "")
    try:
        if entry is None:
            raise TokenInvalid("logout_token is not from a configured provider")
        claims = await verify_logout_token(entry.discovery, raw, client_id=entry.client.client_id)
    except TokenInvalid as exc:
        log.warning("back-channel logout refused: %s", exc.message, extra={"event": "backchannel_refused"})
        return _error(exc.message)
    store = app[STORE]
    if not await app[REPLAY].first_use(
        f"jti:{claims['iss']}:{claims['jti']}", LOGOUT_TOKEN_MAX_AGE + 2 * LEEWAY
    ):
        log.warning("back-channel logout token replayed", extra={"event": "backchannel_refused"})
        return _error("logout_token was already used")
    sid, sub = claims.get("sid"), claims.get("sub")
    if isinstance(sid, str) and sid:
        ended = await store.end_provider_session(scoped(entry.id, sid))
    else:
        ended = await store.end_user_sessions(scoped(entry.id, str(sub)))
    log.info(
        "back-channel logout",
        extra={"event": "logout", "kind": "backchannel", "sub": sub, "sessions_ended": ended,
               "provider": entry.id},
    )  # fmt: skip
    record_logout(app, "backchannel")
    return web.Response(status=200, headers=HEADERS)


async def frontchannel_logout(request: web.Request) -> web.StreamResponse:
    """OIDC Front-Channel Logout: the provider frames ``?iss=...&sid=...`` in the user's browser.

    Off unless ``logout.frontchannel`` (404). The provider does not sign this request: anyone can
    send it, naming any ``sid``. So it ends only the session of the browser that sends it: its
    session cookie must name a session of that ``sid``; sessions of other browsers are left to
    back-channel logout. ``iss`` is required and must be a configured provider's, the one of that
    session (with several providers, a sid of one never ends another's session). A cross-site frame carries
    the cookie only with ``cookie.samesite: none``; with lax/strict nothing is ended here (the page
    is still served, so the provider's logout page isn't broken).
    """
    app = request.app
    if not app[SETTINGS].logout.frontchannel:
        return web.Response(status=404, text="front-channel logout is not enabled", headers=HEADERS)
    sid, iss = request.query.get("sid", ""), request.query.get("iss", "")
    entry = app[PROVIDERS].by_issuer(iss) if iss else None
    issuer = entry.discovery.metadata.issuer if entry is not None else ""
    if entry is None or not sid or not compare_digest(iss.encode(), issuer.encode()):
        log.warning(
            "front-channel logout refused: iss or sid missing or wrong",
            extra={"event": "frontchannel_refused"},
        )
        return web.Response(status=400, text="bad front-channel logout request", headers=HEADERS)
    codec, store = app[COOKIES], app[STORE]
    ticket = codec.ticket_from(request)
    session = await store.load(ticket, cached=False) if ticket is not None else None
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(issuer))
    headers = {**HEADERS, "Content-Security-Policy": f"default-src 'none'; frame-ancestors {origin}"}
    response = web.Response(text=FRAME_PAGE, content_type="text/html", headers=headers)
    mine = session is not None and app[PROVIDERS].find_session(session.provider) is entry
    if ticket is None or session is None or not mine or not _same(session.sid, scoped(entry.id, sid)):
        log.info(
            "front-channel logout: this browser has no session of that sid; nothing ended",
            extra={"event": "frontchannel_ignored", "cookie": ticket is not None},
        )
        return response
    await store.delete(ticket, session)
    codec.clear(response)
    log.info(
        "front-channel logout",
        extra={"event": "logout", "kind": "frontchannel", "sub": session.identity.sub, "sessions_ended": 1},
    )
    record_logout(app, "frontchannel")
    return response


def _same(mine: str | None, given: str) -> bool:
    return mine is not None and compare_digest(mine.encode(), given.encode())


FRAME_PAGE = builtin("frame_signed_out.html")
"""What the provider's front-channel logout iframe shows (no user data: one page for everyone)."""
