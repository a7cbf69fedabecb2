"""JSON logging with a request id, and the access log (one line per request).

Never log tokens, cookies or authorization codes: only what is passed as ``extra`` fields here, and
callers pass identities (``sub``), never secrets.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .keys import CLIENT, REQUEST_ID, SESSION, TRUST

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def stamp_request_id(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Echo the request id in the response (before it is prepared): the ``front`` middleware does
    it for answers it gets back, handlers that stream (prepare themselves) call it first."""
    rid = request.get(REQUEST_ID)
    if rid is not None and not response.prepared:
        response.headers["X-Request-ID"] = rid


_STD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, static: dict[str, Any] | None = None) -> None:
        """``static``: fields on every line (e.g. which worker process wrote it)."""
        super().__init__()
        self._static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **self._static,
        }
        rid = request_id.get()
        if rid != "-":
            out["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(
    level: str = "INFO", json_output: bool = True, static: dict[str, Any] | None = None
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_output:
        handler.setFormatter(JsonFormatter(static))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class AccessLogger(AbstractAccessLogger):
    """One JSON line per request: id, method, path (no query: it may carry codes), status, duration,
    and the signed-in user's ``sub`` when the request had a session (never a token or a cookie)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, duration: float) -> None:
        session = request.get(SESSION)
        client = request.get(CLIENT)
        if client is None and isinstance(request, web.Request) and TRUST in request.app:
            client = request.app[TRUST].resolve(request.remote, request.headers)
        remote = client.ip if client is not None else request.remote
        extra = {
            "request_id": request.get(REQUEST_ID, "-"),
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "duration_ms": round(duration * 1000, 2),
            "sub": session.identity.sub if session is not None else None,
            "remote": remote,
            "at": round(time.time(), 3),
        }
        if remote != request.remote:
            extra["peer"] = request.remote  # a trusted proxy's address
        self.logger.info("request", extra=extra)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
