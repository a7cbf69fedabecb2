"""Metrics in the app: ``GET /metrics``, the flush task, the recording helpers, and
:func:`instrument`, which counts and times every call of a store backend's roles.

The series themselves (and what each means) are ``proxy.metrics_registry``'s.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from .errors import StoreUnavailable
from .keys import METRICS, SETTINGS, TASKS
from .metrics_registry import LogoutKind, Metrics

T = TypeVar("T")


def instrument(inner: T, metrics: Metrics, *, skip: frozenset[str] = frozenset({"close"})) -> T:
    """``inner`` with each public async method counted (``auth_proxy_store_operations_total{op}``,
    ``op`` the method's name), its failures counted (``StoreUnavailable``: ``..._errors_total``) and
    timed; every other attribute, and the methods in ``skip``, as they are. One wrapper for any
    role object: a method added to a backend is instrumented without an edit here."""
    wrapped = _Instrumented(inner)
    for name, _ in inspect.getmembers(type(inner), inspect.iscoroutinefunction):  # no property read
        if not name.startswith("_") and name not in skip:
            setattr(wrapped, name, _timed(getattr(inner, name), metrics, name))
    return wrapped  # type: ignore[return-value]  # same methods as T, by construction


class _Instrumented:
    def __init__(self, inner: object) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:  # only what was not wrapped
        return getattr(self.inner, name)


def _timed(method: Callable[..., Awaitable[T]], metrics: Metrics, op: str) -> Callable[..., Awaitable[T]]:
    calls, errors = metrics.store_call(op)
    seconds = metrics.store_seconds

    @functools.wraps(method)
    async def timed(*args: Any, **kwargs: Any) -> T:
        started = time.perf_counter()
        calls.inc()
        try:
            return await method(*args, **kwargs)
        except StoreUnavailable:
            errors.inc()
            raise
        finally:
            seconds.observe(time.perf_counter() - started)

    return timed


async def flush_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: flush the request tallies each second (what the other workers' scrapes see),
    and a last time at shutdown."""
    metrics = app[METRICS]

    async def every_second() -> None:
        while True:
            await asyncio.sleep(1.0)
            metrics.flush()

    task = app[TASKS].spawn(every_second(), name="metrics-flush")
    yield
    await app[TASKS].cancel(task)
    metrics.flush()


def record_login(app: web.Application, ok: bool) -> None:
    app[METRICS].logged_in(ok)


def record_logout(app: web.Application, kind: LogoutKind) -> None:
    app[METRICS].logged_out(kind)


async def expose(request: web.Request) -> web.StreamResponse:
    """``GET /metrics``: the Prometheus text format (or OpenMetrics, when the scraper asks for it)."""
    body, content_type = request.app[METRICS].exposition(request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


async def listener_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: ``/metrics`` on ``server.metrics_listen``, a port of its own (if configured)."""
    server = app[SETTINGS].server
    address = server.metrics_address
    if address is None:
        yield
        return
    metrics_app = web.Application()
    metrics_app[METRICS] = app[METRICS]
    metrics_app.router.add_get("/metrics", expose)
    runner = web.AppRunner(metrics_app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        # Every worker binds it too (SO_REUSEPORT); each answers for all of them.
        await web.TCPSite(runner, address[0], address[1], reuse_port=server.workers != 1 or None).start()
        yield
    finally:
        await runner.cleanup()
