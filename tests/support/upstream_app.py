"""A sample upstream for tests: echoes what it received, streams, speaks WebSocket, can be slow."""

from __future__ import annotations

import asyncio
import hashlib
import json

from aiohttp import WSMsgType, web


async def echo(request: web.Request) -> web.StreamResponse:
    digest, size = hashlib.sha256(), 0
    async for chunk in request.content.iter_any():
        digest.update(chunk)
        size += len(chunk)
    return web.json_response({
        "method": request.method,
        "path_qs": request.raw_path,
        "headers": list(request.headers.items()),
        "body_size": size,
        "body_sha256": digest.hexdigest(),
        "chunked": request.headers.get("Transfer-Encoding", "") == "chunked",
    })  # fmt: skip


async def stream(request: web.Request) -> web.StreamResponse:
    """``?chunks=N&size=B&gap=S``: N chunks of B bytes, S seconds apart."""
    chunks, size = int(request.query.get("chunks", "4")), int(request.query.get("size", "1024"))
    gap = float(request.query.get("gap", "0"))
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream", "X-Upstream": "yes"})
    await resp.prepare(request)
    for i in range(chunks):
        await resp.write(bytes([i % 256]) * size)
        if gap:
            await asyncio.sleep(gap)
    await resp.write_eof()
    return resp


HOLD = web.AppKey("hold", asyncio.Event)


async def held(request: web.Request) -> web.StreamResponse:
    """Sends one chunk, then waits until the test sets ``app[HOLD]``: proves the proxy streams."""
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await resp.prepare(request)
    await resp.write(b"first-chunk;")
    await request.app[HOLD].wait()
    await resp.write(b"second-chunk")
    await resp.write_eof()
    return resp


async def slow(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(float(request.query.get("delay", "5")))
    return web.Response(text="late")


async def ws(request: web.Request) -> web.StreamResponse:
    sock = web.WebSocketResponse(protocols=("chat",))
    await sock.prepare(request)
    await sock.send_str(json.dumps({"user": request.headers.get("X-Forwarded-User")}))
    async for msg in sock:
        if msg.type == WSMsgType.TEXT:
            await sock.send_str("echo:" + msg.data)
        elif msg.type == WSMsgType.BINARY:
            await sock.send_bytes(msg.data[::-1])
    return sock


async def gzipped(request: web.Request) -> web.StreamResponse:
    import gzip

    body = gzip.compress(b"hello compressed world" * 100)
    return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})


async def cookie(request: web.Request) -> web.StreamResponse:
    resp = web.Response(text="cookie set", headers={"Connection": "close, X-Secret-Hop", "X-Secret-Hop": "1"})
    resp.set_cookie("app_cookie", "v1")
    return resp


async def sized(request: web.Request) -> web.StreamResponse:
    """``?size=B&sent=S``: declares ``Content-Length: B``, sends S bytes (default all), then ends the
    connection: an answer that breaks off when S < B."""
    size = int(request.query.get("size", "100"))
    sent = int(request.query.get("sent", str(size)))
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream", "ETag": '"v1"'})
    resp.content_length = size
    await resp.prepare(request)
    if request.method == "HEAD":
        return resp
    await resp.write(b"s" * sent)
    if sent < size:
        assert request.transport is not None
        request.transport.close()
        return resp
    await resp.write_eof()
    return resp


def make_upstream() -> web.Application:
    app = web.Application()
    app[HOLD] = asyncio.Event()
    app.router.add_get("/held", held)
    app.router.add_get("/stream", stream)
    app.router.add_get("/slow", slow)
    app.router.add_get("/ws", ws)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/cookie", cookie)
    app.router.add_get("/sized", sized)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app
