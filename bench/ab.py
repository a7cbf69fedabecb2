"""A/B of one change: the same load against the proxy built from two (or more) source trees, in turns.

    .venv/bin/python bench/ab.py base=/tmp/base-worktree new=. [--rounds 3] [--seconds 8] [--path /oauth/auth]

Each NAME=DIR runs ``python -m proxy`` from DIR (its own ``.venv`` if it has one, else this one), one
process, against one Redis holding ``--sessions`` sessions written through the store (no provider
needed) and one nginx upstream. The variants take turns, round after round, so that a drift of the
machine's speed hits them alike; per run: requests/s and the proxy's CPU µs per request, then the
median of each. ``NAME=DIR@VAR=VALUE`` sets an environment variable for that variant.

Make the base tree with ``git worktree add --detach /tmp/base-worktree HEAD``. For what one change
is worth; the side-by-side figures are ``bench/run.py``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import ROTATE_LUA, SECRET, UPSTREAM_CONF, cpu_seconds, make_session_cookies, nginx_binary, wrk  # noqa: E402

from tests.support.servers import free_port, redis_server, wait_port  # noqa: E402


def variant(spec: str) -> tuple[str, Path, dict[str, str]]:
    name, _, rest = spec.partition("=")
    where, _, assignment = rest.partition("@")
    if not name or not where:
        sys.exit(f"ab: {spec!r} is not NAME=DIR[@VAR=VALUE]")
    env = dict(os.environ)
    if assignment:
        key, _, value = assignment.partition("=")
        env[key] = value
    return name, Path(where).resolve(), env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+", metavar="NAME=DIR")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--path", default="/oauth/auth", help="what wrk asks for (/ : the data path)")
    ap.add_argument("--sessions", type=int, default=5000)
    args = ap.parse_args()
    variants = [variant(v) for v in args.variants]
    work = Path(tempfile.mkdtemp(prefix="auth-proxy-ab-"))
    script = work / "rotate.lua"
    script.write_text(ROTATE_LUA)
    results: dict[str, list[tuple[float, float]]] = {}
    with redis_server() as redis:
        up_port = free_port()
        (work / "up.conf").write_text(UPSTREAM_CONF.format(dir=work, port=up_port))
        upstream = subprocess.Popen(
            [nginx_binary(), "-c", str(work / "up.conf"), "-p", str(work), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_port(up_port, 10)
            cookies = asyncio.run(make_session_cookies(redis.url, args.sessions))
            cookie_file = work / "cookies.txt"
            cookie_file.write_text("".join(f"_auth_proxy={c}\n" for c in cookies))
            for _ in range(args.rounds):
                for name, where, env in variants:
                    port = free_port()
                    config = work / f"{name}.json"
                    config.write_text(json.dumps({
                        "server": {"listen": f"127.0.0.1:{port}"},
                        "provider": {"issuer_url": f"http://127.0.0.1:{free_port()}/realms/x",
                                     "client_id": "p", "client_secret": "s"},
                        "cookie": {"secret": SECRET, "secure": False},
                        "session": {"store": "redis", "redis_url": redis.url},
                        "upstreams": [{"prefix": "/", "url": f"http://127.0.0.1:{up_port}"}],
                    }))  # fmt: skip
                    python = where / ".venv/bin/python"
                    cmd = [str(python if python.exists() else sys.executable), "-m", "proxy", "--config",
                           str(config), "--log-level", "ERROR", "--workers", "1"]  # fmt: skip
                    proxy = subprocess.Popen(cmd, cwd=where, env=env, stderr=subprocess.DEVNULL)
                    try:
                        wait_port(port, 20)
                        url = f"http://127.0.0.1:{port}{args.path}"
                        wrk(url, 3, 50, cookie_file, script)  # warm-up, not counted
                        before = cpu_seconds(proxy.pid)
                        run = wrk(url, args.seconds, 50, cookie_file, script)
                        cpu_us = (cpu_seconds(proxy.pid) - before) / run["requests"] * 1e6
                        results.setdefault(name, []).append((run["rps"], cpu_us))
                        print(f"  {name:>10}: {run['rps']:9,.0f} req/s {cpu_us:6.1f} µs CPU/req "
                              f"errors {run['errors']:.0f}", flush=True)  # fmt: skip
                    finally:
                        proxy.terminate()
                        proxy.wait(20)
        finally:
            upstream.terminate()
            upstream.wait(10)
    print(f"\n{args.path}, {args.sessions} sessions rotated, {args.rounds} x {args.seconds} s (medians):")
    for name, runs in results.items():
        rps = statistics.median(r for r, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"  {name:>10}: {rps:9,.0f} req/s {cpu:6.1f} µs CPU/req")


if __name__ == "__main__":
    main()
