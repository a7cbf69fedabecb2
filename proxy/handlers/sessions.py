"""Where am I signed in: the signed-in user's sessions (all browsers and devices), ending one, and
ending all of them ("sign out everywhere"), here and at the provider."""

from __future__ import annotations

import logging

from aiohttp import web

from .. import pages
from ..keys import COOKIES, STORE
from ..metrics import record_logout
from ..sessions.request import current_session, current_ticket
from .common import CSRF_FIELD, CSRF_HEADER, end_record_at_provider

log = logging.getLogger(__name__)


async def list_sessions(request: web.Request) -> web.StreamResponse:
    session = await current_session(request)
    if session is None:
        return web.json_response({"error": "not signed in"}, status=401, headers=pages.NO_STORE)
    ticket = current_ticket(request)
    current = ticket.id.hex() if ticket else None
    items = [
        {
            "id": record.ref,
            "current": record.session_id == current,
            "created_at": record.created_at,
            "last_seen": seen,
            "user_agent": record.user_agent,
            "ip": record.ip,
        }
        for record, seen in await request.app[STORE].user_sessions(session.user_key)
    ]
    items.sort(key=lambda i: (not i["current"], -float(str(i["created_at"]))))
    body = {
        "sessions": items,
        "end": "POST this URL + '/end' with id=<id> and csrf=<csrf_token> (form or JSON) to end one",
        "csrf_token": request.app[COOKIES].csrf_token(ticket) if ticket else None,
    }
    return web.json_response(body, headers=pages.NO_STORE)


async def end_one(request: web.Request) -> web.StreamResponse:
    """``POST /oauth/sessions/end`` with ``id`` and ``csrf``: end one of the signed-in user's sessions."""
    session = await current_session(request)
    if session is None:
        return web.json_response({"error": "not signed in"}, status=401, headers=pages.NO_STORE)
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except (ValueError, RecursionError):
            data = {}
        data = data if isinstance(data, dict) else {}
    else:
        data = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    ref = str(data.get("id", ""))
    # A CSRF token always (form field or JSON key "csrf", or the X-CSRF-Token header): SameSite=Lax
    # alone would not protect deployments that set cookie.samesite: none.
    token = request.headers.get(CSRF_HEADER) or str(data.get(CSRF_FIELD, ""))
    ticket = current_ticket(request)
    if ticket is None or not request.app[COOKIES].csrf_valid(ticket, token):
        return web.json_response({"error": "csrf token missing or wrong"}, status=403, headers=pages.NO_STORE)
    store = request.app[STORE]
    for record, _ in await store.user_sessions(session.user_key):
        if record.ref == ref:
            await store.end_by_id(session.user_key, record.session_id)
            at_provider = await end_record_at_provider(request.app, record)
            log.info("session ended by its user", extra={"event": "logout", "kind": "user_remote"})
            record_logout(request.app, "user_remote")
            return web.json_response({"ended": True, "provider_ended": at_provider}, headers=pages.NO_STORE)
    return web.json_response({"error": "no such session"}, status=404, headers=pages.NO_STORE)
