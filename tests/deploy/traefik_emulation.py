"""Traefik's forwardAuth, emulated from its source (v3.6 and v3.7, pkg/middlewares/auth/forward.go
``writeHeader``; pkg/middlewares/forwardedheaders/forwarded_header.go), configured by a forwardAuth
section of deploy/traefik/dynamic.yaml. Why emulated: see deploy/README.md (Traefik can't be built here
in a time a test run can afford).

What it does with a request, in Traefik's order:

1. Go's HTTP server: exactly one Host, made only of the bytes Go accepts (``httpguts.ValidHostHeader``),
   else 400. An absolute-form target gives the host and the path (``req.URL.RequestURI()``).
2. The entry point (the client is not in ``forwardedHeaders.trustedIPs``): every X-Forwarded-* header
   Traefik manages is deleted (also spelled with ``_``), then X-Forwarded-Proto/-Host/-Port/-For and
   X-Real-Ip are set from the connection.
3. forwardAuth: every header copied, hop-by-hop ones dropped; with ``trustForwardHeader: false`` the
   X-Forwarded-* ones deleted; only ``authRequestHeaders`` kept (when set); then X-Forwarded-For,
   -Method, -Proto, -Host and -Uri set from the request (with ``trustForwardHeader: true``, from the
   request's own X-Forwarded-* when present). GET ``address``.
4. A 2xx: the request goes on to the app with ``authResponseHeaders`` copied in; anything else goes
   back to the client as the auth server answered it.

Not emulated: routing by Host rule (every request is sent through the middleware, which is stricter),
TLS, bodies.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

_GO_HOST = re.compile(r"[A-Za-z0-9!$%&'()*+,\-.:;=\[\]_~]*")
MANAGED = {"X-Forwarded-Proto", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Port",
           "X-Forwarded-Server", "X-Forwarded-Uri", "X-Forwarded-Method", "X-Forwarded-Prefix",
           "X-Forwarded-Tls-Client-Cert", "X-Forwarded-Tls-Client-Cert-Info", "X-Real-Ip"}  # fmt: skip
_MANAGED = {m.lower() for m in MANAGED}
HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
       "transfer-encoding", "upgrade"}  # fmt: skip


def _managed(name: str) -> bool:
    return name.lower().replace("_", "-") in _MANAGED


def _without(headers: CIMultiDict[str], drop: Any) -> CIMultiDict[str]:
    return CIMultiDict((k, v) for k, v in headers.items() if not drop(k))


def _request_uri(target: str) -> tuple[str | None, str]:
    """Go's ``(req.URL.Host, req.URL.RequestURI())`` of a request target."""
    host = None
    if target.startswith(("http://", "https://")):
        rest = target.split("://", 1)[1]
        host, slash, path = rest.partition("/")
        target = slash + path or "/"
    path, question, query = target.partition("?")
    return host, path.replace("#", "%23") + question + query


class ForwardAuth:
    def __init__(self, config: dict[str, Any], address: str, app: str) -> None:
        self.config, self.address, self.app = config, address, app

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        hosts = request.headers.getall("Host", [])
        if len(hosts) != 1 or not _GO_HOST.fullmatch(hosts[0]):
            return web.Response(status=400, text="400 Bad Request")
        url_host, uri = _request_uri(request.raw_path)
        host = url_host or hosts[0]
        client = request.remote or ""
        # the entry point
        headers = _without(CIMultiDict(request.headers), _managed)
        headers.update({"X-Forwarded-Proto": "http", "X-Forwarded-Host": host, "X-Real-Ip": client,
                        "X-Forwarded-Port": "80", "X-Forwarded-For": client})  # fmt: skip
        # forwardAuth
        trust = bool(self.config.get("trustForwardHeader"))
        forward = _without(headers, lambda k: k.lower() in HOP)
        if not trust:
            forward = _without(forward, _managed)
        allowed = [h.lower() for h in self.config.get("authRequestHeaders") or []]
        if allowed:
            keep = set(allowed) | (_MANAGED if trust else set())
            forward = _without(forward, lambda k: k.lower() not in keep)
        for name, value in (("X-Forwarded-Method", request.method), ("X-Forwarded-Proto", "http"),
                            ("X-Forwarded-Host", host), ("X-Forwarded-Uri", uri)):  # fmt: skip
            if not (trust and name in headers):
                forward[name] = value
        forward["X-Forwarded-For"] = client
        async with aiohttp.ClientSession() as session:
            async with session.get(self.address, headers=forward, allow_redirects=False) as auth:
                if not 200 <= auth.status < 300:
                    copy = {k: v for k, v in auth.headers.items() if k in ("Location", "WWW-Authenticate")}
                    return web.Response(status=auth.status, headers=copy, body=await auth.read())
                for name in self.config.get("authResponseHeaders", []):
                    headers.popall(name, None)
                    if name in auth.headers:
                        headers[name] = auth.headers[name]
            headers = _without(headers, lambda k: k.lower() in HOP or k.lower() == "host")
            try:
                async with session.request(
                    request.method, URL(self.app + uri, encoded=True), headers=headers
                ) as app:
                    return web.Response(status=app.status, body=await app.read())
            except (aiohttp.ClientError, ValueError):
                return web.Response(status=502)


@asynccontextmanager
async def emulated_traefik(config: dict[str, Any], address: str, app: str) -> AsyncIterator[int]:
    """Listen on a free port with the forwardAuth ``config``; yields the port."""
    server = web.Server(ForwardAuth(config, address, app))
    runner = web.ServerRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port: int = runner.addresses[0][1]
        yield port
    finally:
        await runner.cleanup()
