"""The session of the request at hand, from its cookie."""

from __future__ import annotations

from aiohttp import web

from ..keys import COOKIES, REFRESHER, SESSION, STORE
from .base import Session, Ticket


async def current_session(request: web.Request) -> Session | None:
    """The signed-in session, ``None`` without one. ``StoreUnavailable`` propagates: fail closed.
    Each handler asks once (it slides the idle timeout); the answer is kept on the request for the
    access log."""
    session = None
    app = request.app
    ticket = app[COOKIES].ticket_from(request)
    if ticket is not None:
        store = app[STORE]
        session = await store.load(ticket)
        refresher = app[REFRESHER]
        if session is not None and refresher.due(session):
            session = await refresher.fresh(ticket, session)
        if session is not None:
            await store.touch(ticket, session)
    request[SESSION] = session
    return session


def current_ticket(request: web.Request) -> Ticket | None:
    """The ticket in the request's cookie (signed by us), whether or not its session still lives."""
    return request.app[COOKIES].ticket_from(request)
