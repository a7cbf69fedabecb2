"""A peer server for the benchmarks, run in the foreground as a child: started, waited for on its port,
and stopped (SIGTERM, then SIGKILL) however the block ends. ``apache.py`` and ``oauth2_proxy.py``."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

from tests.support.servers import wait_port


@contextmanager
def served(
    cmd: list[str],
    *,
    port: int,
    name: str,
    output: IO[bytes],
    logs: Callable[[], str],
    start_timeout: float = 30,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """``cmd`` writing to ``output``, listening on 127.0.0.1:``port`` within ``start_timeout``; if it
    exits first, a ``RuntimeError`` quoting the end of ``logs()``."""
    proc = subprocess.Popen(cmd, env=env, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}: {logs()[-2000:]}")
            try:
                wait_port(port, 0.2)
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()  # Apache's parent stops its children and exits
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        output.close()
