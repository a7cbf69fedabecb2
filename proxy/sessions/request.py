"""The session of the request at hand: read from the cookie once, cached on the request."""

from __future__ import annotations

from aiohttp import web

from ..keys import COOKIES, SESSION, STORE
from .base import Session


async def current_session(request: web.Request) -> Session | None:
    """The signed-in session, ``None`` without one. ``StoreUnavailable`` propagates: fail closed."""
    if SESSION in request:
        return request[SESSION]
    session = None
    ticket = request.app[COOKIES].ticket_from(request.cookies)
    if ticket is not None:
        session = await request.app[STORE].load(ticket)
    request[SESSION] = session
    return session
