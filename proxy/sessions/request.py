"""The session of the request at hand, from its cookie (``proxy.authenticator``)."""

from __future__ import annotations

from aiohttp import web

from ..keys import AUTHENTICATOR, COOKIES
from .base import Session, Ticket


async def current_session(request: web.Request) -> Session | None:
    """The signed-in session, ``None`` without one. ``StoreUnavailable`` propagates: fail closed.
    Each handler asks once (it slides the idle timeout); the answer is kept on the request for the
    access log."""
    return await request.app[AUTHENTICATOR].session(request)


def current_ticket(request: web.Request) -> Ticket | None:
    """The ticket in the request's cookie (signed by us), whether or not its session still lives."""
    return request.app[COOKIES].ticket_from(request)
