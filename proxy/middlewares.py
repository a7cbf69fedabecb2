"""Request id for every request, errors turned into pages (never a stack trace to the client), and
the request size limits (431 / 413, see ``proxy.limits``)."""

from __future__ import annotations

import logging
import re
import secrets

from aiohttp import web
from aiohttp.typedefs import Handler

from . import pages
from .errors import ProviderUnavailable, ProxyError
from .keys import PROVIDER, REQUEST_ID, SETTINGS
from .limits import OWN_MAX_BODY, header_bytes, refusal
from .logs import request_id

log = logging.getLogger(__name__)

_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Take a sane ``X-Request-ID`` from the client or make one; it tags every log line."""
    rid = request.headers.get("X-Request-ID", "")
    if not _VALID_ID.fullmatch(rid):
        rid = secrets.token_hex(8)
    request[REQUEST_ID] = rid
    token = request_id.set(rid)
    try:
        return await handler(request)
    finally:
        request_id.reset(token)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except ProxyError as exc:
        log.warning("%s: %s", type(exc).__name__, exc.message, extra={"event": "error", "status": exc.status})
        if isinstance(exc, ProviderUnavailable):
            request.app[PROVIDER].suspect()
        return pages.error(request, exc.status, exc.title, exc.user_message, retry_url=request.path_qs)
    except Exception:
        log.exception("unhandled error")
        return pages.error(
            request, 500, "Something went wrong", "An unexpected error occurred and was logged."
        )


async def stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: echo the request id (works for streamed responses too)."""
    if REQUEST_ID in request:
        response.headers["X-Request-ID"] = request[REQUEST_ID]


@web.middleware
async def limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    """431 for oversized headers, 413 for a body over its limit: before any work is done on them."""
    server = request.app[SETTINGS].server
    size = header_bytes(request)
    if size > server.max_header_bytes:
        log.warning("request headers too large", extra={"event": "refused", "status": 431, "bytes": size})
        return refusal(request, 431)
    prefix = server.proxy_prefix
    own = request.path == prefix or request.path.startswith(prefix + "/")
    limit = OWN_MAX_BODY if own else server.max_body_bytes
    length = request.content_length
    if limit is not None and length is not None and length > limit:
        log.warning("request body too large", extra={"event": "refused", "status": 413, "bytes": length})
        return refusal(request, 413)
    if not own:
        return await handler(request)
    try:  # bodies without a length: aiohttp's read() / post() stop at client_max_size
        return await handler(request.clone(client_max_size=OWN_MAX_BODY))
    except web.HTTPRequestEntityTooLarge:
        log.warning("request body too large", extra={"event": "refused", "status": 413})
        return refusal(request, 413)
