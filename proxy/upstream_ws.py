"""WebSocket relay: accept the browser's upgrade, open the same WebSocket upstream, pump both ways."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from . import pages
from .keys import METRICS
from .logs import stamp_request_id
from .routing import Upstream

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


async def forward_ws(
    request: web.Request, http: aiohttp.ClientSession, upstream: Upstream, headers: CIMultiDict[str]
) -> web.StreamResponse:
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
        tasks = [asyncio.ensure_future(_pump(down, up_ws)), asyncio.ensure_future(_pump(up_ws, down))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await down.close()
        return down
