"""Real servers for tests: a redis-server of our own on a free port, and helpers to wait for ports."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait (without blocking the event loop) until ``check()`` holds; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.02)


class RedisServer:
    """A throw-away ``redis-server`` (Debian's package) on 127.0.0.1, no persistence unless
    ``appendonly`` (then every write is in its append-only file and survives ``start_again``)."""

    def __init__(
        self, port: int, proc: subprocess.Popen[bytes], workdir: Path, appendonly: bool = False
    ) -> None:
        self.port, self.proc, self.workdir, self.appendonly = port, proc, workdir, appendonly

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def start_again(self) -> None:
        """Restart on the same port (for outage tests)."""
        self.stop()
        self.proc = _spawn_redis(self.port, self.workdir, self.appendonly)
        wait_port(self.port)


def _spawn_redis(port: int, workdir: Path, appendonly: bool = False) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        raise RuntimeError("redis-server is not installed: run scripts/test.sh (it installs it)")
    persist = ["--appendonly", "yes", "--appendfsync", "always"] if appendonly else ["--appendonly", "no"]
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", *persist,
            "--dir", str(workdir), "--logfile", str(workdir / "redis.log")]  # fmt: skip
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextmanager
def redis_server(appendonly: bool = False) -> Iterator[RedisServer]:
    workdir = Path(tempfile.mkdtemp(prefix="auth-proxy-redis-"))
    port = free_port()
    server = RedisServer(port, _spawn_redis(port, workdir, appendonly), workdir, appendonly)
    try:
        wait_port(port)
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
