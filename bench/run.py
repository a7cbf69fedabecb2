"""Side-by-side throughput and latency, in one run so the ratios hold on a noisy machine.

    .venv/bin/python bench/run.py [--seconds 10] [--connections 50] [--sessions 5000]

Against the same upstream (nginx answering a small static body), with wrk:
  1. the upstream direct (the ceiling)
  2. this proxy in the data path, with a valid session cookie (every request loads and decrypts
     the session from Redis)
  3. nginx auth_request -> this proxy's /oauth/auth -> the upstream (deploy/nginx/auth-proxy.conf)
Sessions are created through the proxy's own store and cookie codec (as a login would), several
thousand of them so Redis holds a realistic keyspace; the benchmark cookie is one of them. Warm-up
runs are excluded. Reports requests/s, p50/p99 latency, and CPU seconds per 10k requests of the
proxy process. Needs wrk, nginx and redis-server (scripts/setup.sh installs the last two; apt wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from proxy.config import load_settings  # noqa: E402
from proxy.cookies import CookieCodec  # noqa: E402
from proxy.sessions.base import Identity, Session  # noqa: E402
from proxy.sessions.redis_store import RedisBackend  # noqa: E402
from proxy.sessions.store import SessionStore  # noqa: E402
from tests.support.servers import free_port, redis_server, wait_port  # noqa: E402

SECRET = "bench-cookie-secret-0123456789abcdefgh"
UPSTREAM_CONF = """
worker_processes 1; pid {dir}/up.pid; error_log {dir}/up-error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {dir}/b; proxy_temp_path {dir}/p; fastcgi_temp_path {dir}/f;
  uwsgi_temp_path {dir}/u; scgi_temp_path {dir}/s;
  server {{ listen 127.0.0.1:{port};
    location / {{ default_type text/plain; return 200 "hello from the upstream\\n"; }} }}
}}
"""
FRONT_CONF = """
worker_processes 1; pid {dir}/front.pid; error_log {dir}/front-error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {dir}/b; proxy_temp_path {dir}/p; fastcgi_temp_path {dir}/f;
  uwsgi_temp_path {dir}/u; scgi_temp_path {dir}/s;
  include {site};
}}
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks of 1/100 s


def wrk(url: str, seconds: int, connections: int, cookie: str | None) -> dict[str, float]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if cookie:
        cmd[1:1] = ["-H", f"Cookie: _auth_proxy={cookie}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        assert m, out
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    return {"rps": rps, "requests": total, "p50_ms": pct("50"), "p99_ms": pct("99"),
            "errors": int(non2xx.group(1)) if non2xx else 0}  # fmt: skip


async def make_session_cookies(redis_url: str, n: int) -> list[str]:
    """Create ``n`` sessions in Redis through the proxy's store; the cookie value of each, in order."""
    settings = load_settings(None, provider={"issuer_url": "http://127.0.0.1:9/x", "client_id": "p",
                             "client_secret": "s"}, cookie={"secret": SECRET})  # fmt: skip
    codec = CookieCodec(settings.cookie, settings.session.lifetime, "/oauth")
    store = SessionStore(RedisBackend.from_url(redis_url))
    now = time.time()
    cookies = []
    for i in range(n):
        ident = Identity(sub=f"user-{i}", email=f"user{i}@example.test", preferred_username=f"user{i}",
                         groups=("engineering", "staff"))  # fmt: skip
        id_token = "h." + "x" * 1100 + ".s"  # a realistic size; never verified after login
        ticket = await store.create(
            Session(ident, id_token, "a" * 1200, "r" * 800, f"sid-{i}", now, now + 8 * 3600)
        )
        cookies.append(codec.encode(ticket))
    await store.backend.close()
    return cookies


async def make_sessions(redis_url: str, n: int) -> str:
    """Create ``n`` sessions; the cookie value of the last one."""
    return (await make_session_cookies(redis_url, n))[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--sessions", type=int, default=5000)
    args = ap.parse_args()
    for tool in ("wrk", "nginx", "redis-server"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"bench: {tool} is not installed")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    work = Path(tempfile.mkdtemp(prefix="auth-proxy-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with redis_server() as redis:
            up_port, proxy_port, front_port = free_port(), free_port(), free_port()
            (work / "up.conf").write_text(UPSTREAM_CONF.format(dir=work, port=up_port))
            procs.append(
                subprocess.Popen([nginx, "-c", str(work / "up.conf"), "-p", str(work), "-g", "daemon off;"])
            )
            cfg = work / "proxy.yaml"
            cfg.write_text(json.dumps({
                "server": {"listen": f"127.0.0.1:{proxy_port}", "trust_forwarded_headers": True},
                "provider": {"issuer_url": f"http://127.0.0.1:{free_port()}/realms/x", "client_id": "p",
                             "client_secret": "s"},
                "cookie": {"secret": SECRET, "secure": False},
                "session": {"store": "redis", "redis_url": redis.url},
                "upstreams": [{"prefix": "/", "url": f"http://127.0.0.1:{up_port}"}],
            }))  # fmt: skip
            cmd = [sys.executable, "-m", "proxy", "--config", str(cfg), "--log-level", "ERROR"]
            proxy = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.DEVNULL)
            procs.append(proxy)
            site = (ROOT / "deploy/nginx/auth-proxy.conf").read_text()
            site = site.replace("server 127.0.0.1:4180;", f"server 127.0.0.1:{proxy_port};")
            site = site.replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{up_port};")
            site = site.replace("listen 80;", f"listen 127.0.0.1:{front_port};")
            (work / "site.conf").write_text(site)
            (work / "front.conf").write_text(FRONT_CONF.format(dir=work, site=work / "site.conf"))
            procs.append(subprocess.Popen([nginx, "-c", str(work / "front.conf"), "-p", str(work),
                                           "-g", "daemon off;"]))  # fmt: skip
            for port in (up_port, proxy_port, front_port):
                wait_port(port, 20)
            cookie = asyncio.run(make_sessions(redis.url, args.sessions))
            runs = {
                "1. upstream direct": (f"http://127.0.0.1:{up_port}/", None),
                "2. proxy in the data path": (f"http://127.0.0.1:{proxy_port}/", cookie),
                "3. nginx auth_request -> /oauth/auth": (f"http://127.0.0.1:{front_port}/", cookie),
            }
            results = {}
            for name, (url, ck) in runs.items():
                wrk(url, 2, args.connections, ck)  # warm-up, excluded
                before = cpu_seconds(proxy.pid)
                r = wrk(url, args.seconds, args.connections, ck)
                r["proxy_cpu_s_per_10k"] = (cpu_seconds(proxy.pid) - before) / r["requests"] * 10_000
                results[name] = r
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    ceiling = results["1. upstream direct"]["rps"]
    print(f"\n{args.seconds}s per run, {args.connections} connections, wrk -t2, {args.sessions} sessions\n")
    print(f"| {'setup':40} | {'req/s':>8} | {'vs direct':>9} | {'p50 ms':>7} | {'p99 ms':>7} | "
          f"{'proxy CPU s/10k':>15} | {'errors':>6} |")  # fmt: skip
    print(f"|{'-' * 42}|{'-' * 10}|{'-' * 11}|{'-' * 9}|{'-' * 9}|{'-' * 17}|{'-' * 8}|")
    for name, r in results.items():
        print(f"| {name:40} | {r['rps']:8.0f} | {r['rps'] / ceiling:9.2f} | {r['p50_ms']:7.2f} | "
              f"{r['p99_ms']:7.2f} | {r['proxy_cpu_s_per_10k']:15.2f} | {r['errors']:6d} |")  # fmt: skip
    out = ROOT / ".artifacts" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
