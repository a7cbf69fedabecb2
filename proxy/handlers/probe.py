"""Liveness, readiness and the signed-in identity as JSON."""

from __future__ import annotations

from aiohttp import web

from .. import pages
from ..errors import StoreUnavailable
from ..keys import PROVIDERS, STORE_CONNECTION
from ..sessions.request import current_session
from .common import csrf_token


async def ping(request: web.Request) -> web.StreamResponse:
    """Liveness: the process answers. No I/O."""
    return web.Response(text="OK", headers=pages.NO_STORE)


async def ready(request: web.Request) -> web.StreamResponse:
    """Readiness: the session store answers and the provider was discovered."""
    registry = request.app[PROVIDERS]
    started = list(registry)
    ready = len(started) == len(registry) and all(p.discovery.ready for p in started)
    checks = {"store": "ok", "provider": "ok" if ready else "discovery pending"}
    try:
        await request.app[STORE_CONNECTION].ping()
    except StoreUnavailable:
        checks["store"] = "unavailable"
    ok = all(v == "ok" for v in checks.values())
    return web.json_response(checks, status=200 if ok else 503, headers=pages.NO_STORE)


async def userinfo(request: web.Request) -> web.StreamResponse:
    session = await current_session(request)
    if session is None:
        return web.json_response({"error": "not signed in"}, status=401, headers=pages.NO_STORE)
    # csrf_token: what a sign-out POST of this session must carry (logout.allow_get: false)
    return web.json_response(
        {**session.identity.as_json(), "csrf_token": csrf_token(request)}, headers=pages.NO_STORE
    )
