"""Real Redis high-availability setups for tests, from Debian's redis-server on free ports:

- ``sentinel_setup()``: a master, one replica and one Sentinel (``redis-server --sentinel``, the same
  binary the redis-sentinel package links) watching them as ``mymaster``;
- ``cluster_setup()``: three ``redis-server --cluster-enabled yes`` masters joined with
  ``redis-cli --cluster create``.

Each waits for the state it needs by asking the servers (never by sleeping a fixed time).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import free_port, wait_port

SERVICE = "mymaster"


def _binary(name: str) -> str:
    path = shutil.which(name) or f"/usr/bin/{name}"
    if not Path(path).exists():
        raise RuntimeError(f"{name} is not installed: run scripts/test.sh (it installs it)")
    return path


def cli(port: int, *args: str) -> str:
    done = subprocess.run([_binary("redis-cli"), "-h", "127.0.0.1", "-p", str(port), *args],
                          capture_output=True, text=True, timeout=10)  # fmt: skip
    return done.stdout.strip()


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout}s")
        time.sleep(0.05)


def _info(port: int, section: str) -> dict[str, str]:
    lines = cli(port, "INFO", section).splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line and not line.startswith("#"))


class _Procs:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def spawn(self, port: int, *args: str) -> None:
        logfile = self.workdir / f"redis-{port}.log"
        cmd = [_binary("redis-server"), *args, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(self.workdir), "--logfile", str(logfile)]  # fmt: skip
        self.procs[port] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port)

    def kill(self, port: int) -> None:
        self.procs[port].kill()
        self.procs[port].wait(10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@dataclass
class SentinelSetup:
    sentinel_port: int
    ports: tuple[int, int]
    """The two data servers (which one is master changes with failovers)."""
    _procs: _Procs

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SERVICE}/0"

    def master_port(self) -> int:
        out = cli(self.sentinel_port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE).splitlines()
        return int(out[1])

    def replica_ready(self) -> bool:
        """Sentinel sees a replica it could promote: connected, its link to the master up."""
        out = cli(self.sentinel_port, "SENTINEL", "REPLICAS", SERVICE).splitlines()
        fields = dict(zip(out[::2], out[1::2], strict=False))
        return fields.get("flags") == "slave" and fields.get("master-link-status") == "ok"

    def kill_master(self) -> int:
        """Kill the master outright; once Sentinel has promoted the replica, the new master's port."""
        old = self.master_port()
        new = next(p for p in self.ports if p != old)
        wait_until(self.replica_ready, "sentinel sees the replica in sync")
        self._procs.kill(old)
        wait_until(lambda: self.master_port() == new, "sentinel names the new master")
        wait_until(lambda: _info(new, "replication").get("role") == "master", "replica promoted")
        return new


@contextmanager
def sentinel_setup() -> Iterator[SentinelSetup]:
    workdir = Path(tempfile.mkdtemp(prefix="auth-proxy-sentinel-"))
    procs = _Procs(workdir)
    try:
        master, replica, sentinel = free_port(), free_port(), free_port()
        no_delay = ("--repl-diskless-sync-delay", "0")  # the default waits 5 s before a first sync
        procs.spawn(master, *no_delay)
        procs.spawn(replica, *no_delay, "--replicaof", "127.0.0.1", str(master))
        wait_until(lambda: _info(replica, "replication").get("master_link_status") == "up", "replica sync")
        conf = workdir / "sentinel.conf"  # Sentinel rewrites its file: it must be its own, writable
        conf.write_text(
            f"sentinel monitor {SERVICE} 127.0.0.1 {master} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
        )
        procs.spawn(sentinel, str(conf), "--sentinel")
        setup = SentinelSetup(sentinel, (master, replica), procs)

        wait_until(lambda: setup.master_port() == master, "sentinel names the master")
        wait_until(setup.replica_ready, "sentinel sees the replica connected and in sync")
        yield setup
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class ClusterSetup:
    ports: tuple[int, ...]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)


@contextmanager
def cluster_setup(nodes: int = 3) -> Iterator[ClusterSetup]:
    workdir = Path(tempfile.mkdtemp(prefix="auth-proxy-cluster-"))
    procs = _Procs(workdir)
    try:
        ports = tuple(free_port() for _ in range(nodes))
        for port in ports:
            # The bus port is set too: the default (port + 10000) may be taken or out of range.
            procs.spawn(port, "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                        "--cluster-port", str(free_port()), "--cluster-node-timeout", "5000")  # fmt: skip
        nodes = [f"127.0.0.1:{p}" for p in ports]
        done = subprocess.run([_binary("redis-cli"), "--cluster", "create", *nodes, "--cluster-yes"],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(
                f"redis-cli --cluster create failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
        for port in ports:
            wait_until(lambda port=port: _info_cluster(port) == "ok", f"cluster_state ok on {port}")  # type: ignore[misc]
        yield ClusterSetup(ports)
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


def _info_cluster(port: int) -> str:
    for line in cli(port, "CLUSTER", "INFO").splitlines():
        if line.startswith("cluster_state:"):
            return line.split(":", 1)[1].strip()
    return ""
