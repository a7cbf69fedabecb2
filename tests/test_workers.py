"""The real command (``python -m proxy``) as an operator runs it: SIGTERM drains in-flight requests
within ``server.shutdown_grace``; ``--workers N`` shares one port between N processes (uvloop), sums
their metrics, forwards SIGTERM and exits non-zero when a worker dies."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from proxy.cpus import usable_cpus
from tests.conftest import COOKIE_SECRET, ROOT
from tests.support.fake_provider import FakeProvider
from tests.support.login import signed_in_browser
from tests.support.servers import free_port, until, wait_port
from tests.support.upstream_app import HOLD, make_upstream
from tests.test_metrics import scrape, value


@dataclass
class Proxy:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for raw in self.log.read_text().splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                out.append({"msg": raw})
        return out

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)


Launch = Callable[..., Proxy]


@pytest.fixture
async def held_upstream(aiohttp_server: Any) -> tuple[str, web.Application]:
    app = make_upstream()
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("")).rstrip("/"), app


@pytest.fixture
def launch(
    fake_provider: FakeProvider, held_upstream: tuple[str, web.Application], redis_url: str, tmp_path: Path
) -> Iterator[Launch]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, **server: Any) -> Proxy:
        port = free_port()
        config = {
            "server": {"listen": f"127.0.0.1:{port}", **server},
            "provider": {
                "issuer_url": fake_provider.issuer,
                "client_id": "proxy",
                "client_secret": "proxy-secret",
            },
            "cookie": {"secret": COOKIE_SECRET, "secure": False},
            "session": {"store": "redis", "redis_url": redis_url},
            "upstreams": [{"prefix": "/", "url": held_upstream[0]}],
        }
        path = tmp_path / f"proxy-{port}.yaml"
        path.write_text(yaml.safe_dump(config))
        log = tmp_path / f"proxy-{port}.log"
        with log.open("wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "proxy", "--config", str(path), *args], cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
        procs.append(proc)
        return Proxy(proc, f"http://127.0.0.1:{port}", log)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()  # the parent stops its workers too
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


async def ready(proxy: Proxy) -> None:
    """Listening and the provider discovered (the fake one answers from this test's event loop)."""
    await asyncio.to_thread(wait_port, int(proxy.url.rsplit(":", 1)[1]), 30)
    async with aiohttp.ClientSession() as client:
        for _ in range(300):
            async with client.get(proxy.url + "/ready") as r:
                if r.status == 200:
                    return
            await asyncio.sleep(0.05)
    raise AssertionError("the proxy did not become ready")


async def all_workers_serve(proxy: Proxy, workers: int) -> None:
    """Until each worker has answered a request (a new connection each time; the kernel picks)."""
    for _ in range(500):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as client:
            async with client.get(proxy.url + "/ping") as r:
                assert r.status == 200
        seen = {line.get("worker") for line in proxy.lines() if line.get("path") == "/ping"}
        if len(seen) == workers:
            return
    raise AssertionError("not every worker answered")


def refuses_connections(url: str) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", int(url.rsplit(":", 1)[1]))) != 0


async def test_sigterm_finishes_the_request_in_flight_then_closes_redis_and_exits(
    launch: Launch, held_upstream: tuple[str, web.Application]
) -> None:
    proxy = launch(shutdown_grace="20s")
    await ready(proxy)
    await all_workers_serve(proxy, usable_cpus())  # every worker up (workers: auto) before SIGTERM
    async with await signed_in_browser(proxy.url) as browser:
        async with browser.get(proxy.url + "/held") as r:
            assert await r.content.readexactly(len(b"first-chunk;")) == b"first-chunk;"  # in flight
            proxy.proc.send_signal(signal.SIGTERM)
            await until(lambda: refuses_connections(proxy.url), "stops accepting")
            held_upstream[1][HOLD].set()  # the upstream finishes, well after SIGTERM
            assert r.status == 200 and await r.read() == b"second-chunk"
    assert await asyncio.to_thread(proxy.wait, 20) == 0
    lines = proxy.lines()
    held = next(line for line in lines if line.get("path") == "/held")
    mine = [line for line in lines if line.get("worker") == held.get("worker")]  # None: one process
    events = [(line.get("path"), line.get("status")) if line.get("msg") == "request" else line.get("event")
              for line in mine]  # fmt: skip
    assert events.index(("/held", 200)) < events.index("store_closed") < events.index("stop")
    start = next(line for line in lines if line.get("event") == "start" and "event_loop" in line)
    assert start["event_loop"] == "uvloop"


async def test_a_request_outliving_the_grace_period_is_cut_and_the_process_exits(
    launch: Launch,
) -> None:
    proxy = launch(shutdown_grace="1s")
    await ready(proxy)
    await all_workers_serve(proxy, usable_cpus())
    async with await signed_in_browser(proxy.url) as browser:
        async with browser.get(proxy.url + "/held") as r:
            await r.content.readexactly(len(b"first-chunk;"))
            proxy.proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            with pytest.raises(aiohttp.ClientError):  # never released upstream: cut at the deadline
                await r.read()
    assert await asyncio.to_thread(proxy.wait, 20) == 0
    assert 0.9 < time.monotonic() - sent < 10


async def test_workers_share_the_port_and_their_metrics(launch: Launch) -> None:
    proxy = launch("--workers", "2")
    await ready(proxy)
    await all_workers_serve(proxy, 2)
    json_api = {"Accept": "application/json"}
    for _ in range(40):  # a new connection each: the kernel spreads them over the workers
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as client:
            async with client.get(proxy.url + "/api", headers=json_api) as r:
                assert r.status == 401
    await asyncio.sleep(1.2)  # each worker adds its tally to the shared files every second
    for _ in range(4):  # whichever worker answers the scrape, it reports both
        text = await scrape(proxy.url + "/metrics")
        assert value(text, "auth_proxy_requests_total", route="proxy", status="401") == 40
    await until(lambda: sum(line.get("path") == "/api" for line in proxy.lines()) == 40, "access lines")
    workers = {line["worker"] for line in proxy.lines() if line.get("path") == "/api"}
    assert workers == {0, 1}
    proxy.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proxy.wait, 30) == 0
    pids = next(line["pids"] for line in proxy.lines() if line.get("msg") == "workers started")
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_a_worker_that_dies_stops_the_others_and_the_parent_fails(launch: Launch) -> None:
    proxy = launch("--workers", "2")
    await ready(proxy)
    await until(lambda: any(line.get("msg") == "workers started" for line in proxy.lines()), "pids logged")
    pids = next(line["pids"] for line in proxy.lines() if line.get("msg") == "workers started")
    os.kill(pids[0], signal.SIGKILL)
    assert await asyncio.to_thread(proxy.wait, 30) == 1
    with pytest.raises(ProcessLookupError):
        os.kill(pids[1], 0)
    assert any(line.get("event") == "worker_died" for line in proxy.lines())


async def test_workers_stop_by_themselves_when_the_parent_is_killed(launch: Launch) -> None:
    proxy = launch("--workers", "2")
    await until(lambda: any(line.get("msg") == "workers started" for line in proxy.lines()), "pids logged")
    pids = next(line["pids"] for line in proxy.lines() if line.get("msg") == "workers started")
    proxy.proc.kill()  # SIGKILL: the parent can't forward anything
    proxy.wait(10)

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    await until(lambda: all(gone(pid) for pid in pids), "orphaned workers exit", timeout=20)


def test_several_workers_need_the_redis_store(tmp_path: Path) -> None:
    cfg = tmp_path / "p.yaml"
    cfg.write_text(
        "provider: {issuer_url: 'http://127.0.0.1:9/realms/x', client_id: p, client_secret: s}\n"
        "cookie: {secret: '" + "s" * 32 + "'}\nsession: {store: memory}\n"
    )
    done = subprocess.run([sys.executable, "-m", "proxy", "--config", str(cfg), "--workers", "2"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "session.store: redis" in done.stderr


async def test_workers_auto_starts_one_per_usable_cpu(launch: Launch) -> None:
    """The default (``server.workers: auto``): as many workers as CPUs this process may use."""
    expected = usable_cpus()
    proxy = launch()
    await ready(proxy)
    await until(lambda: any(line.get("event") == "workers" for line in proxy.lines()), "workers logged")
    assert next(line["workers"] for line in proxy.lines() if line.get("event") == "workers") == expected
    await all_workers_serve(proxy, expected)


@pytest.mark.parametrize("value", ["0", "65", "many", "-1"])
def test_a_bad_workers_value_is_refused(tmp_path: Path, value: str) -> None:
    cfg = tmp_path / "p.yaml"
    cfg.write_text(
        "provider: {issuer_url: 'http://127.0.0.1:9/realms/x', client_id: p, client_secret: s}\n"
        "cookie: {secret: '" + "s" * 32 + "'}\n"
    )
    done = subprocess.run([sys.executable, "-m", "proxy", "--config", str(cfg), "--workers", value],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "--workers must be auto or from 1 to 64" in done.stderr
    assert "Traceback" not in done.stderr
