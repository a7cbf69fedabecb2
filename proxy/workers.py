"""Serving: one process (``serve``), or ``--workers N`` processes sharing the port (``supervise``).

Each worker is a fresh interpreter (multiprocessing "spawn") with its own event loop (uvloop when
installed) that binds the port itself with SO_REUSEPORT, so the kernel spreads new connections over
the workers. The parent only supervises:

- SIGTERM or SIGINT to the parent is forwarded to every worker as SIGTERM; each stops accepting,
  lets its in-flight requests finish within ``server.shutdown_grace`` and exits. Workers still alive
  ``shutdown_grace`` + 5 s later are killed. The parent exits 0 when all stopped cleanly.
- A worker that exits while nobody asked it to (crash, OOM kill, port already taken) stops the
  others gracefully and the parent exits 1, so the container's restart policy takes over: a pod
  that silently runs at half capacity is worse than one that restarts.
- A worker whose parent is killed outright (SIGKILL: nothing can be forwarded) notices within a
  second and stops gracefully by itself.
- Metrics: the parent points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory, so every worker's
  ``/metrics`` reports the sum over all workers (see ``proxy/metrics.py``); removed on exit.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from types import FrameType

from aiohttp import web

from .app import create_app
from .config import ServerConfig, Settings
from .keys import SERVER_TLS
from .limits import guarded_protocols, quiet_parser_errors, runner_options
from .logs import AccessLogger, setup_logging

log = logging.getLogger(__name__)

KILL_AFTER = 5.0
"""Seconds past the grace period before a worker that still hasn't exited is killed."""


def new_event_loop(choice: str) -> asyncio.AbstractEventLoop:
    """``auto``: uvloop if installed, else asyncio's; ``uvloop`` insists; ``asyncio`` never tries."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise RuntimeError("server.event_loop is uvloop, but uvloop is not installed") from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def serve(settings: Settings, app: web.Application | None = None, *, reuse_port: bool = False) -> None:
    """Run the proxy (``app``, else one made from ``settings``) in this process until SIGTERM/SIGINT,
    then shut down gracefully."""
    server = settings.server
    quiet_parser_errors()
    app = app if app is not None else create_app(settings)
    with asyncio.Runner(loop_factory=lambda: new_event_loop(server.event_loop)) as runner:
        flavour = type(runner.get_loop()).__module__.split(".")[0]
        log.info("starting", extra={"event": "start", "listen": server.listen, "event_loop": flavour})
        runner.run(_run(settings, app, reuse_port))
    log.info("stopped", extra={"event": "stop"})


async def _run(settings: Settings, app: web.Application, reuse_port: bool) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        served = await listen(app, settings.server, reuse_port=reuse_port)
        try:
            await stop.wait()  # until SIGTERM / SIGINT
        finally:
            await served.close()  # in-flight requests get server.shutdown_grace
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


@dataclass
class Listening:
    """An application served on a port (:func:`listen`)."""

    runner: web.AppRunner
    listener: asyncio.Server

    @property
    def port(self) -> int:
        return int(self.listener.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop accepting, then aiohttp's graceful shutdown: idle connections closed, in-flight
        requests given ``server.shutdown_grace``, the application's cleanup run."""
        self.listener.close()
        await self.runner.cleanup()
        await self.listener.wait_closed()


async def listen(
    app: web.Application,
    server: ServerConfig,
    host: str | None = None,
    port: int | None = None,
    *,
    reuse_port: bool = False,
) -> Listening:
    """Start ``app`` (its cleanup contexts) and serve it on ``host``:``port`` (default:
    ``server.listen``) as deployed: the HTTP parser's limits, the proxy's access log, and each
    connection behind the head-timeout guard (``proxy.limits``). Public aiohttp APIs only: an
    ``AppRunner``, and its ``web.Server`` as the protocol factory of ``loop.create_server`` (which is
    why this is not ``web.run_app``: its sites hand aiohttp's protocol to the loop unwrapped)."""
    runner = web.AppRunner(
        app,
        access_log_class=AccessLogger,
        shutdown_timeout=server.shutdown_grace,
        **runner_options(server),
    )
    await runner.setup()
    try:
        assert runner.server is not None
        tls = app.get(SERVER_TLS)  # HTTPS, the certificate reloaded when its files change (proxy.tls)
        listener = await asyncio.get_running_loop().create_server(
            guarded_protocols(runner.server, server.header_read_timeout),
            server.host if host is None else host,
            server.port if port is None else port,
            reuse_port=reuse_port or None,
            ssl=tls.context if tls is not None else None,
        )
    except BaseException:
        await runner.cleanup()
        raise
    return Listening(runner, listener)


def _exit_with(parent: int) -> None:
    """A worker whose supervisor is gone (killed outright: no time to forward anything) stops itself
    gracefully rather than serve on unsupervised."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def _worker(settings: Settings, index: int, parent: int, log_level: str, json_output: bool) -> None:
    # A process group of its own: a terminal's Ctrl-C reaches only the parent, which forwards one
    # SIGTERM (a second signal would cut aiohttp's graceful shutdown short).
    os.setpgrp()
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()
    setup_logging(log_level, json_output=json_output, static={"worker": index})
    serve(settings, reuse_port=True)


def supervise(settings: Settings, workers: int, log_level: str, json_output: bool) -> int:
    """Start ``workers`` processes and watch them; the exit status for the whole command."""
    settings = settings.model_copy(update={"server": settings.server.model_copy(update={"workers": workers})})
    metrics_dir = tempfile.mkdtemp(prefix="auth-proxy-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # inherited by the workers, read at import
    spawn = multiprocessing.get_context("spawn")
    procs = [
        spawn.Process(
            target=_worker,
            args=(settings, i, os.getpid(), log_level, json_output),
            name=f"auth-proxy-worker-{i}",
        )
        for i in range(workers)
    ]
    stop_at: list[float] = []  # set once: when the workers were told to stop
    told: set[int] = set()  # each worker gets one SIGTERM, however many signals the parent gets

    def stop_all() -> None:
        if not stop_at:
            stop_at.append(time.monotonic())
        for proc in procs:
            if proc.pid is not None and proc.pid not in told and proc.exitcode is None:
                told.add(proc.pid)
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("stopping workers", extra={"event": "stop", "signal": signal.Signals(signum).name})
        stop_all()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    failed = False
    try:
        for proc in procs:
            if stop_at:  # told to stop while starting them
                break
            proc.start()
        log.info(
            "workers started", extra={"event": "start", "workers": workers, "pids": [p.pid for p in procs]}
        )
        running = [p for p in procs if p.pid is not None]
        if stop_at:
            stop_all()  # the ones started after the signal
        while running:
            multiprocessing.connection.wait([p.sentinel for p in running], timeout=0.5)
            for proc in [p for p in running if p.exitcode is not None]:
                running.remove(proc)
                if not stop_at:
                    log.error(
                        "worker exited unexpectedly (status %s): stopping the others", proc.exitcode,
                        extra={"event": "worker_died", "worker": proc.name, "pid": proc.pid},
                    )  # fmt: skip
                    failed = True
                    stop_all()
                elif proc.exitcode not in (0, -signal.SIGTERM):
                    # -SIGTERM: told to stop while still starting, before its handler was installed
                    failed = True
            if (
                stop_at
                and running
                and time.monotonic() > stop_at[0] + settings.server.shutdown_grace + KILL_AFTER
            ):
                for proc in running:
                    log.error(
                        "worker did not stop in time: killed", extra={"worker": proc.name, "pid": proc.pid}
                    )
                    proc.kill()
                    proc.join(5)
                failed = True
                running = []
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    log.info("all workers stopped", extra={"event": "stopped", "status": 1 if failed else 0})
    return 1 if failed else 0
