"""The front layer every request passes (``Front``, wrapped around each route's handler), doing in
order what used to be four aiohttp middlewares (each layer cost a coroutine and a wrapper per
request; together about 15% of a session check, see bench/README.md):

1. metrics: count the request by route class and status, and time it (``proxy.metrics``);
2. a request id: the client's ``X-Request-ID`` if sane, else a new one; it tags every log line and
   is echoed in the response (handlers that stream stamp it themselves, before they prepare);
3. size limits (``proxy.limits``): 431 for oversized headers, 413 for a body over its limit, before
   any work is done on them;
4. errors turned into pages: never a stack trace to the client.

It also tells the connection's head-timeout guard (``proxy.limits.HeadGuard``) when the request's
handling starts and ends.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import secrets
import time

from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import istr

from . import pages
from .config import ServerConfig
from .errors import ProviderUnavailable, ProxyError
from .keys import PROVIDERS, REQUEST_ID
from .limits import OWN_MAX_BODY, header_bytes, heads_up, refusal
from .logs import request_id
from .metrics_registry import Metrics, RouteClass

log = logging.getLogger(__name__)

CLIENT_GONE = 499
"""The status requests are counted and logged with when the client left first (nginx's)."""
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
X_REQUEST_ID = istr("X-Request-ID")
"""An ``istr``: multidict finds it without folding its case each time."""


class RequestIds:
    """New request ids: 16 hex digits, a random prefix per process then a counter. Unique across
    processes and replicas in practice, and no random-number syscall per request (os.urandom was
    ~4% of a session check). Not secret: they are echoed to the client and logged."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(4)
        self._count = itertools.count()

    def new(self) -> str:
        return f"{self._prefix}{next(self._count) & 0xFFFFFFFF:08x}"


class Front:
    """The front layer of one application, with what it needs (its metrics, the ``server:``
    settings, request ids) bound once rather than looked up in the app on every request.

    ``front(handler, route)`` is ``handler`` behind the layer, its requests counted as ``route``
    (``None``: the catch-all, whose requests are ``proxy`` or ``other``). Applied to each route when
    it is added, rather than as an aiohttp middleware: the same requests pass it (the catch-all
    route takes every path and method), without aiohttp's per-request middleware chain."""

    def __init__(self, metrics: Metrics, server: ServerConfig) -> None:
        self.metrics = metrics
        self.server = server
        self.ids = RequestIds()

    def __call__(self, handler: Handler, route: RouteClass | None = None) -> Handler:
        metrics, server, new_id = self.metrics, self.server, self.ids.new

        async def fronted(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            rid = request.headers.get(X_REQUEST_ID)
            if rid is None or not _VALID_ID.fullmatch(rid):
                rid = new_id()
            request[REQUEST_ID] = rid
            token = request_id.set(rid)
            guard = heads_up(request)  # the head timeout (proxy.limits) stops here
            status = 500
            try:
                response = await _answer(request, handler, server)
                status = response.status
                if not response.prepared:  # streaming handlers stamp it before they prepare
                    response.headers[X_REQUEST_ID] = rid
                return response
            except web.HTTPException as exc:
                status = exc.status
                exc.headers[X_REQUEST_ID] = rid
                raise
            except asyncio.CancelledError:
                status = CLIENT_GONE  # the client went away (or shutdown's grace ran out)
                raise
            finally:
                if guard is not None:
                    guard.request_done()
                request_id.reset(token)
                seconds = time.perf_counter() - started
                metrics.answered(route or metrics.route_of(request), status, seconds)

        return fronted


async def _answer(request: web.Request, handler: Handler, server: ServerConfig) -> web.StreamResponse:
    size = header_bytes(request)
    if size > server.max_header_bytes:
        log.warning("request headers too large", extra={"event": "refused", "status": 431, "bytes": size})
        return refusal(request, 431)
    prefix = server.proxy_prefix
    path = request.path
    own = path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/")
    limit = OWN_MAX_BODY if own else server.max_body_bytes
    length = request.content_length
    if limit is not None and length is not None and length > limit:
        log.warning("request body too large", extra={"event": "refused", "status": 413, "bytes": length})
        return refusal(request, 413)
    if own and request.body_exists:
        # Bodies without a length: aiohttp's read() / post() stop at client_max_size.
        request = request.clone(client_max_size=OWN_MAX_BODY)
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        log.warning("request body too large", extra={"event": "refused", "status": 413})
        return refusal(request, 413)
    except web.HTTPException:
        raise
    except ProxyError as exc:
        log.warning("%s: %s", type(exc).__name__, exc.message, extra={"event": "error", "status": exc.status})
        if isinstance(exc, ProviderUnavailable):
            for entry in request.app[PROVIDERS]:  # the error doesn't say whose: check each again
                entry.discovery.suspect()
        return pages.error(request, exc.status, exc.title, exc.user_message, retry_url=request.path_qs)
    except ConnectionResetError:
        # The client went away while we answered (aiohttp: "Cannot write to closing transport").
        # Nothing can be sent; counted and logged as nginx does, without a traceback.
        log.info("client closed the connection", extra={"event": "client_gone", "status": CLIENT_GONE})
        return web.Response(status=CLIENT_GONE)
    except Exception:
        log.exception("unhandled error")
        return pages.error(
            request, 500, "Something went wrong", "An unexpected error occurred and was logged."
        )
