"""WebSocket relay: accept the browser's upgrade, open the same WebSocket upstream, pump both ways.

Upgrades are same-origin unless configured (cross-site WebSocket hijacking: a browser sends its
cookies with an upgrade whichever page's script opened it, and no CORS check applies). ``Origin``
must name this proxy's own origin (as the browser sees it: ``server.trusted_proxies``) or one
of ``websocket.allowed_origins``; without one (not a browser) only a bearer-token upgrade or
``websocket.allow_missing_origin`` passes. Refusals are 403, before the upstream is contacted.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from . import pages
from .handlers.common import own_origin
from .keys import METRICS, SETTINGS
from .logs import stamp_request_id
from .origins import origin_key
from .routing import Upstream
from .tasks import Tasks

log = logging.getLogger(__name__)

_WS_OWN = frozenset(
    h.lower()
    for h in (
        "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol",
        "Content-Length",
    )
)  # fmt: skip


def is_websocket(request: web.BaseRequest) -> bool:
    return (
        request.headers.get("Upgrade", "").lower() == "websocket"
        and "upgrade" in request.headers.get("Connection", "").lower()
    )


async def _pump(src: web.WebSocketResponse | aiohttp.ClientWebSocketResponse, dst: object) -> None:
    assert isinstance(dst, (web.WebSocketResponse, aiohttp.ClientWebSocketResponse))
    async for msg in src:
        if msg.type == WSMsgType.TEXT:
            await dst.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await dst.send_bytes(msg.data)
        elif msg.type == WSMsgType.ERROR:
            break
    await dst.close()


def origin_refusal(request: web.Request, *, bearer: bool) -> web.Response | None:
    """403 for an upgrade some other site's page may have opened (see the module docstring)."""
    config = request.app[SETTINGS].websocket
    values = request.headers.getall("Origin", [])
    if not values:
        if bearer or config.allow_missing_origin:
            return None
        reason = "no Origin header"
    elif len(values) > 1:
        reason = "more than one Origin header"
    else:
        key = origin_key(values[0])
        if key is not None and (key == origin_key(own_origin(request)) or config.allows(values[0])):
            return None
        reason = "a foreign Origin" if key is not None else "a malformed Origin"
    shown = ", ".join(v[:200] for v in values) or None
    log.warning(
        "websocket upgrade refused: %s (%r)",
        reason,
        shown,
        extra={"event": "websocket_origin_refused", "origin": shown, "path": request.path[:200]},
    )
    return pages.error(
        request,
        403,
        "Cross-site WebSocket refused",
        "This WebSocket may only be opened by this site's own pages.",
    )


async def forward_ws(
    request: web.Request,
    http: aiohttp.ClientSession,
    upstream: Upstream,
    headers: CIMultiDict[str],
    *,
    bearer: bool = False,
) -> web.StreamResponse:
    refusal = origin_refusal(request, bearer=bearer)
    if refusal is not None:
        return refusal
    metrics = request.app[METRICS]
    metrics.upstream_opened()  # in use until the WebSocket closes
    try:
        return await _relay(request, http, upstream, headers)
    finally:
        metrics.upstream_closed()


async def _relay(
    request: web.Request, http: aiohttp.ClientSession, upstream: Upstream, headers: CIMultiDict[str]
) -> web.StreamResponse:
    url = upstream.target(request.raw_path).with_scheme("wss" if upstream.url.scheme == "https" else "ws")
    protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    up_headers = CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in _WS_OWN)
    started = time.perf_counter()
    try:
        up_ws = await http.ws_connect(
            url,
            headers=up_headers,
            protocols=protocols,
            autoping=True,
            timeout=aiohttp.ClientWSTimeout(ws_close=5),
            ssl=upstream.ssl,
        )
    except aiohttp.WSServerHandshakeError as exc:
        log.warning("upstream refused the websocket: %s", exc.status)
        return pages.error(request, 502, "The application refused the connection", "Please try again.")
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        log.warning("upstream websocket unreachable: %s", type(exc).__name__)
        return pages.error(request, 502, "The application is unreachable", "Please try again in a moment.")
    request.app[METRICS].upstream_answered(time.perf_counter() - started)
    async with up_ws:
        down = web.WebSocketResponse(protocols=[up_ws.protocol] if up_ws.protocol else (), autoping=True)
        stamp_request_id(request, down)
        await down.prepare(request)
        try:
            async with Tasks() as pumps:  # the connection's: both ended when either ends
                both = [pumps.spawn(_pump(down, up_ws)), pumps.spawn(_pump(up_ws, down))]
                await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await down.close()
        return down
