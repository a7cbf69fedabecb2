"""OIDC Back-Channel (and Front-Channel) Logout: the provider tells us a session ended; we end ours,
everywhere.

``POST /oauth/backchannel_logout`` with a form field ``logout_token``. 200 when the token is valid
(whether or not we had sessions for it), 400 with a JSON error otherwise; a bad token deletes
nothing. Sessions live in the shared store, so every replica sees the deletion at once.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from aiohttp import web

from ..errors import TokenInvalid
from ..keys import PROVIDER, PROVIDER_CLIENT, STORE
from ..metrics import record_logout
from ..oidc.tokens import LEEWAY, LOGOUT_TOKEN_MAX_AGE, verify_logout_token

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
    try:
        claims = await verify_logout_token(app[PROVIDER], raw, client_id=app[PROVIDER_CLIENT].client_id)
    except TokenInvalid as exc:
        log.warning("back-channel logout refused: %s", exc.message, extra={"event": "backchannel_refused"})
        return _error(exc.message)
    store = app[STORE]
    if not await store.first_use(f"jti:{claims['iss']}:{claims['jti']}", LOGOUT_TOKEN_MAX_AGE + 2 * LEEWAY):
        log.warning("back-channel logout token replayed", extra={"event": "backchannel_refused"})
        return _error("logout_token was already used")
    sid, sub = claims.get("sid"), claims.get("sub")
    if isinstance(sid, str) and sid:
        ended = await store.end_provider_session(sid)
    else:
        ended = await store.end_user_sessions(str(sub))
    log.info(
        "back-channel logout",
        extra={"event": "logout", "kind": "backchannel", "sub": sub, "sessions_ended": ended},
    )
    record_logout(app, "backchannel")
    return web.Response(status=200, headers=HEADERS)


async def frontchannel_logout(request: web.Request) -> web.StreamResponse:
    """OIDC Front-Channel Logout: the provider frames ``?iss=...&sid=...`` in the user's browser.

    The session cookie is not sent to a cross-site frame (SameSite=Lax), so the ``sid`` names what to
    end. ``iss`` must be our provider's. Answers a tiny page the provider may frame.
    """
    app = request.app
    issuer = app[PROVIDER].metadata.issuer
    sid, iss = request.query.get("sid", ""), request.query.get("iss", "")
    if not sid or (iss and iss != issuer):
        log.warning("front-channel logout refused", extra={"event": "frontchannel_refused"})
        return web.Response(status=400, text="bad front-channel logout request", headers=HEADERS)
    ended = await app[STORE].end_provider_session(sid)
    log.info(
        "front-channel logout", extra={"event": "logout", "kind": "frontchannel", "sessions_ended": ended}
    )
    record_logout(app, "frontchannel")
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(issuer))
    headers = {**HEADERS, "Content-Security-Policy": f"default-src 'none'; frame-ancestors {origin}"}
    return web.Response(text=FRAME_PAGE, content_type="text/html", headers=headers)


FRAME_PAGE = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signed out</title></head>' \
    "<body>Signed out.</body></html>"  # fmt: skip
