"""Prometheus metrics: one registry per application (served by ``proxy.metrics``).

Nothing here is global: ``Metrics`` owns its ``CollectorRegistry`` and lives in ``app[METRICS]``, so
any number of apps can run in one process (the tests build many). With ``--workers N`` the parent
sets ``PROMETHEUS_MULTIPROC_DIR`` before starting the workers: each worker then writes its values to
files there and every worker's ``/metrics`` answers the sum over all of them (prometheus-client's
multiprocess mode), whichever worker the scrape reaches.

The per-request series (requests, request and upstream durations, upstream connections in use) are
tallied in plain Python on the request path and added to the Prometheus metrics at every scrape of
the process and each second, through prometheus-client's public calls (its locked updates on
every request cost ~5% of a request): a scrape
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

import os
from typing import Literal

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

RouteClass = Literal[
    "proxy", "auth_request", "login", "callback", "sign_out", "backchannel", "probe", "other"
]
LogoutKind = Literal["user", "everywhere", "user_remote", "backchannel", "frontchannel", "refresh_failure"]
RefreshOutcome = Literal["success", "ended", "error"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
STORE_OPS = ("get", "set", "delete", "add_new", "delete_if", "expire", "index_add",
             "index_members", "index_remove", "ping", "set_existing")  # fmt: skip
"""The backend's calls (``proxy.sessions.backend``): their series exist from the start, at 0."""
MAX_PENDING = 100_000
"""Durations kept between flushes; more are flushed at once (a loop too busy for its flush task)."""


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
        """Per route: the durations answered since the last flush."""
        self._pending_upstream: list[float] = []
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
                tally = self._pending_seconds[route] = []
            tally.append(seconds)
            if len(tally) >= MAX_PENDING:
                self.flush()

    def upstream_opened(self) -> None:
        """An upstream request (or WebSocket) is under way: until :meth:`upstream_closed`."""
        self._upstream_in_use += 1

    def upstream_closed(self) -> None:
        self._upstream_in_use -= 1

    def upstream_answered(self, seconds: float) -> None:
        """The upstream's response headers came ``seconds`` after the request was started."""
        self._pending_upstream.append(seconds)
        if len(self._pending_upstream) >= MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        """Move the tallied requests into the Prometheus metrics (with ``--workers``, into this
        worker's files, which every worker's scrape sums)."""
        requests, self._pending_requests = self._pending_requests, {}
        for (route, status), count in requests.items():
            self.requests.labels(route, str(status)).inc(count)
        seconds, self._pending_seconds = self._pending_seconds, {}
        for route, tally in seconds.items():
            observe = self.request_seconds.labels(route).observe
            for value in tally:
                observe(value)
        upstream, self._pending_upstream = self._pending_upstream, []
        for value in upstream:
            self.upstream_seconds.observe(value)
        self.upstream_active.set(self._upstream_in_use)

    def store_call(self, op: str) -> tuple[Counter, Counter]:
        """The (operations, errors) counters of one store operation."""
        return self.store_ops.labels(op), self.store_errors.labels(op)

    def logged_in(self, ok: bool) -> None:
        self.logins.labels("success" if ok else "failure").inc()

    def logged_out(self, kind: LogoutKind) -> None:
        self.logouts.labels(kind).inc()

    def refreshed(self, outcome: RefreshOutcome) -> None:
        self.refreshes.labels(outcome).inc()

    def exposition(self, accept: str) -> tuple[bytes, str]:
        self.flush()
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
