"""Prometheus metrics: one registry per application, exposed at ``GET /metrics``.

Nothing here is global: ``Metrics`` owns its ``CollectorRegistry`` and lives in ``app[METRICS]``, so
any number of apps can run in one process (the tests build many). With ``--workers N`` the parent
sets ``PROMETHEUS_MULTIPROC_DIR`` before starting the workers: each worker then writes its values to
files there and every worker's ``/metrics`` answers the sum over all of them (prometheus-client's
multiprocess mode), whichever worker the scrape reaches.

The per-request series (requests, request and upstream durations, upstream connections in use) are
tallied in plain Python on the request path and added to the Prometheus metrics at every scrape of
the process and each second (prometheus-client's locked updates cost ~5% of a request): a scrape
sees its own process exactly and, with ``--workers``, the others as of their last second.

    auth_proxy_requests_total{route,status}              answered requests; route is a class below
    auth_proxy_request_duration_seconds{route}           until the last byte (WebSockets excluded)
    auth_proxy_upstream_duration_seconds                 request sent upstream → its response headers
    auth_proxy_upstream_connections_active               upstream requests sent and not yet released
    auth_proxy_logins_total{outcome}                     success | failure
    auth_proxy_logouts_total{kind}                       user | everywhere | user_remote | backchannel |
                                                         frontchannel | refresh_failure
    auth_proxy_token_refreshes_total{outcome}            success | ended (provider refused) | error
    auth_proxy_store_operations_total{op}                session store calls, and of those
    auth_proxy_store_errors_total{op}                    the ones that failed (Redis unreachable ...)
    auth_proxy_store_operation_duration_seconds          every store call
"""

from __future__ import annotations

import asyncio
import os
import time
from bisect import bisect_left
from collections.abc import AsyncIterator, Awaitable
from typing import Literal, TypeVar

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from .errors import StoreUnavailable
from .keys import METRICS, SETTINGS
from .sessions.backend import Backend

T = TypeVar("T")

RouteClass = Literal[
    "proxy", "auth_request", "login", "callback", "sign_out", "backchannel", "probe", "other"
]
LogoutKind = Literal["user", "everywhere", "user_remote", "backchannel", "frontchannel", "refresh_failure"]
RefreshOutcome = Literal["success", "ended", "error"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
STORE_OPS = ("get", "set", "delete", "add_new", "delete_if", "expire", "index_add",
             "index_members", "index_remove", "ping", "set_existing")  # fmt: skip


class Metrics:
    def __init__(self, proxy_prefix: str = "/oauth", multiprocess_dir: str | None = None) -> None:
        """``multiprocess_dir``: the directory of prometheus-client's multiprocess mode, if in use
        (``PROMETHEUS_MULTIPROC_DIR``, which must be set before ``prometheus_client`` is imported)."""
        self.registry = CollectorRegistry()
        own: CollectorRegistry | None = self.registry
        if multiprocess_dir is not None:
            # the values come from every worker's files
            MultiProcessCollector(self.registry, multiprocess_dir)  # type: ignore[no-untyped-call]
            own = None
        self._prefix = proxy_prefix
        self._pending_requests: dict[tuple[RouteClass, int], int] = {}
        self._pending_seconds: dict[RouteClass, list[float]] = {}
        """Per route: the count in each of LATENCY_BUCKETS and +Inf, then the sum."""
        self._pending_upstream = _empty_tally()
        self._upstream_in_use = 0
        self.requests = Counter(
            "auth_proxy_requests", "Requests answered, by route class and status.", ["route", "status"],
            registry=own,
        )  # fmt: skip
        self.request_seconds = Histogram(
            "auth_proxy_request_duration_seconds", "Time to answer a request, to its last byte.", ["route"],
            buckets=LATENCY_BUCKETS, registry=own,
        )  # fmt: skip
        self.upstream_seconds = Histogram(
            "auth_proxy_upstream_duration_seconds", "Time from a request sent upstream to its headers.",
            buckets=LATENCY_BUCKETS, registry=own,
        )  # fmt: skip
        self.upstream_active = Gauge(
            "auth_proxy_upstream_connections_active",
            "Upstream connections in use: request sent, response not yet relayed (WebSockets: open).",
            registry=own, multiprocess_mode="livesum",
        )  # fmt: skip
        self.logins = Counter(
            "auth_proxy_logins", "Logins completed or failed at the callback.", ["outcome"], registry=own
        )
        self.logouts = Counter("auth_proxy_logouts", "Logouts, by what started them.", ["kind"], registry=own)
        self.refreshes = Counter(
            "auth_proxy_token_refreshes", "Token refreshes, by outcome.", ["outcome"], registry=own
        )
        self.store_ops = Counter(
            "auth_proxy_store_operations", "Session store operations.", ["op"], registry=own
        )
        self.store_errors = Counter(
            "auth_proxy_store_errors", "Session store operations that failed.", ["op"], registry=own
        )
        self.trusted_ip_requests = Counter(
            "auth_proxy_trusted_ip_requests", "Requests let through by upstreams[].trusted_ips, by upstream.",
            ["upstream"], registry=own,
        )  # fmt: skip
        self.tls_verify_disabled = Gauge(
            "auth_proxy_tls_verify_disabled", "1 for each target with insecure_skip_verify.", ["target"],
            registry=own, multiprocess_mode="max",
        )  # fmt: skip
        self.store_seconds = Histogram(
            "auth_proxy_store_operation_duration_seconds", "Time of one session store operation.",
            buckets=STORE_BUCKETS, registry=own,
        )  # fmt: skip
        # Every series exists from the start (at 0), so rates and alerts work before the first event.
        for outcome in ("success", "failure"):
            self.logins.labels(outcome)
        for kind in ("user", "everywhere", "user_remote", "backchannel", "frontchannel", "refresh_failure"):
            self.logouts.labels(kind)
        for outcome in ("success", "ended", "error"):
            self.refreshes.labels(outcome)
        for op in STORE_OPS:
            self.store_ops.labels(op)
            self.store_errors.labels(op)

    @classmethod
    def for_process(cls, proxy_prefix: str) -> Metrics:
        """Metrics for this process: multiprocess mode when the worker parent asked for it."""
        return cls(proxy_prefix, os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None)

    def route_of(self, request: web.Request) -> RouteClass:
        """The class of a request the catch-all route took (the other routes name theirs when they
        are added: ``proxy.middlewares.Front``)."""
        path = request.path
        if path == self._prefix or path.startswith(self._prefix + "/"):
            return "other"  # the proxy's own namespace: never proxied
        return "proxy"

    def answered(self, route: RouteClass, status: int, seconds: float) -> None:
        """Count one answered request. Tallied in plain dicts (a fraction of the cost of
        prometheus-client's locked counters on every request) and moved into the Prometheus metrics
        by :meth:`flush`: at every scrape of this process, and each second."""
        key = (route, status)
        self._pending_requests[key] = self._pending_requests.get(key, 0) + 1
        if status != 101:  # a WebSocket's duration is the session's, not a latency
            tally = self._pending_seconds.get(route)
            if tally is None:
                tally = self._pending_seconds[route] = _empty_tally()
            tally[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # the first bucket with le >= seconds
            tally[-1] += seconds

    def upstream_opened(self) -> None:
        """An upstream request (or WebSocket) is under way: until :meth:`upstream_closed`."""
        self._upstream_in_use += 1

    def upstream_closed(self) -> None:
        self._upstream_in_use -= 1

    def upstream_answered(self, seconds: float) -> None:
        """The upstream's response headers came ``seconds`` after the request was started."""
        tally = self._pending_upstream
        tally[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        tally[-1] += seconds

    def flush(self) -> None:
        """Move the tallied requests into the Prometheus metrics (with ``--workers``, into this
        worker's files, which every worker's scrape sums)."""
        requests, self._pending_requests = self._pending_requests, {}
        for (route, status), count in requests.items():
            self.requests.labels(route, str(status)).inc(count)
        seconds, self._pending_seconds = self._pending_seconds, {}
        for route, tally in seconds.items():
            add_to_histogram(self.request_seconds.labels(route), tally)
        upstream, self._pending_upstream = self._pending_upstream, _empty_tally()
        add_to_histogram(self.upstream_seconds, upstream)
        self.upstream_active.set(self._upstream_in_use)

    def store_call(self, op: str) -> tuple[Counter, Counter]:
        """The (operations, errors) counters of one store operation."""
        return self.store_ops.labels(op), self.store_errors.labels(op)

    def exposition(self, accept: str) -> tuple[bytes, str]:
        self.flush()
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


def _empty_tally() -> list[float]:
    """Counts per bucket of LATENCY_BUCKETS and +Inf, then the sum."""
    return [0.0] * (len(LATENCY_BUCKETS) + 2)


def add_to_histogram(child: Histogram, tally: list[float]) -> None:
    """Add bucket counts (the buckets, +Inf, then the sum: see ``Metrics.answered``) to a histogram
    in one step. prometheus-client has no public call for that; its per-bucket values (``_buckets``,
    ``_sum``) have kept this shape since 0.4, and tests/test_metrics.py checks the result equals
    observing one by one, so a change there fails CI rather than the numbers."""
    buckets, total = child._buckets, child._sum  # noqa: SLF001
    for i, count in enumerate(tally[:-1]):
        if count:
            buckets[i].inc(count)
    total.inc(tally[-1])


async def flush_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: flush the request tallies each second (what the other workers' scrapes see),
    and a last time at shutdown."""
    metrics = app[METRICS]

    async def every_second() -> None:
        while True:
            await asyncio.sleep(1.0)
            metrics.flush()

    task = asyncio.create_task(every_second())
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    metrics.flush()


# --- recording -----------------------------------------------------------------------------------


def record_login(app: web.Application, ok: bool) -> None:
    app[METRICS].logins.labels("success" if ok else "failure").inc()


def record_logout(app: web.Application, kind: LogoutKind) -> None:
    app[METRICS].logouts.labels(kind).inc()


def record_refresh(app: web.Application, outcome: RefreshOutcome) -> None:
    app[METRICS].refreshes.labels(outcome).inc()


async def expose(request: web.Request) -> web.StreamResponse:
    """``GET /metrics``: the Prometheus text format (or OpenMetrics, when the scraper asks for it)."""
    body, content_type = request.app[METRICS].exposition(request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


class InstrumentedBackend:
    """A session store backend that counts and times every call of the one it wraps."""

    def __init__(self, inner: Backend, metrics: Metrics) -> None:
        self.inner = inner
        self._seconds = metrics.store_seconds
        self._counters = {op: metrics.store_call(op) for op in STORE_OPS}

    async def _run(self, op: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        calls, errors = self._counters[op]
        calls.inc()
        try:
            return await call
        except StoreUnavailable:
            errors.inc()
            raise
        finally:
            self._seconds.observe(time.perf_counter() - started)

    async def get(self, key: str) -> bytes | None:
        return await self._run("get", self.inner.get(key))

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        await self._run("set", self.inner.set(key, value, ttl))

    async def set_existing(self, key: str, value: bytes, ttl: int) -> bool:
        return await self._run("set_existing", self.inner.set_existing(key, value, ttl))

    async def delete(self, *keys: str) -> int:
        return await self._run("delete", self.inner.delete(*keys))

    async def add_new(self, key: str, value: bytes, ttl: int) -> bool:
        return await self._run("add_new", self.inner.add_new(key, value, ttl))

    async def delete_if(self, key: str, value: bytes) -> bool:
        return await self._run("delete_if", self.inner.delete_if(key, value))

    async def expire(self, key: str, ttl: int) -> None:
        await self._run("expire", self.inner.expire(key, ttl))

    async def index_add(self, key: str, member: str, ttl: int) -> None:
        await self._run("index_add", self.inner.index_add(key, member, ttl))

    async def index_members(self, key: str) -> frozenset[str]:
        return await self._run("index_members", self.inner.index_members(key))

    async def index_remove(self, key: str, member: str) -> None:
        await self._run("index_remove", self.inner.index_remove(key, member))

    async def ping(self) -> None:
        await self._run("ping", self.inner.ping())

    async def close(self) -> None:
        await self.inner.close()


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
