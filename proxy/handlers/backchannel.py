"""OIDC Back-Channel Logout 1.0: the provider tells us a session ended; we end ours, everywhere.

``POST /oauth/backchannel_logout`` with a form field ``logout_token``. 200 when the token is valid
(whether or not we had sessions for it), 400 with a JSON error otherwise; a bad token deletes
nothing. Sessions live in the shared store, so every replica sees the deletion at once.
"""

from __future__ import annotations

import logging

from aiohttp import web

from ..errors import TokenInvalid
from ..keys import PROVIDER, PROVIDER_CLIENT, STORE
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
    return web.Response(status=200, headers=HEADERS)
