"""Real proxy processes (``python -m proxy``) sharing one Redis, for the tests that need several."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def shared_config(
    issuer: str, upstream: str, redis_url: str, cookie_secret: str, **session: Any
) -> dict[str, Any]:
    return {
        "provider": {"issuer_url": issuer, "client_id": "proxy", "client_secret": "proxy-secret"},
        "cookie": {"secret": cookie_secret, "secure": False},
        "session": {"store": "redis", "redis_url": redis_url, **session},
        "upstreams": [{"prefix": "/", "url": upstream}],
    }


@contextmanager
def proxy_processes(count: int, config: dict[str, Any], workdir: Path) -> Iterator[list[str]]:
    """``count`` processes with ``config``, each on its own port; their base URLs."""
    procs, urls = [], []
    try:
        for _ in range(count):
            port = free_port()
            path = workdir / f"proxy-{port}.yaml"
            path.write_text(yaml.safe_dump({**config, "server": {"listen": f"127.0.0.1:{port}"}}))
            command = [sys.executable, "-m", "proxy", "--config", str(path), "--workers", "1"]  # a replica
            procs.append(
                subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
            urls.append(f"http://127.0.0.1:{port}")
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
