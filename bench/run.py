"""Side by side with the peers, in one run so the ratios hold on a noisy machine.

    .venv/bin/python bench/run.py [--seconds 10] [--connections 50] [--sessions 5000] [--no-apache]
                                  [--no-oauth2-proxy] [--rate REQ_PER_S | --no-fixed-rate]

Against the same upstream (nginx answering a small static body), with wrk, warm-up runs excluded:

  1. the upstream direct (the ceiling)
  2. this proxy in the data path, one process
  3. Apache + mod_auth_openidc in the data path, one process (OIDCCacheType redis,
     OIDCSessionType server-cache; bench/apache.py), same upstream, same identity headers
  4. oauth2-proxy v7 in the data path, GOMAXPROCS=1 (Redis sessions; bench/oauth2_proxy.py)
  5. / 6. / 7. the same three with two worker processes each (Apache: 2 processes; oauth2-proxy:
     GOMAXPROCS unset, every core)
  8. nginx auth_request -> this proxy's /oauth/auth -> the upstream (deploy/nginx/auth-proxy.conf)
  9. /oauth/auth alone, one process (the proxy's part of 8)
  10. the same with one session's cookie repeated (what rotating over thousands of sessions costs)
  11. / 12. oauth2-proxy's /oauth2/auth alone (what nginx auth_request would call), GOMAXPROCS=1 and unset

Then every setup again at one fixed offered load (``--rate``, by default half the slowest setup's
maximum, so that each runs below saturation): p50/p99 at the same load, paced by a constant-rate
wrk script (bench/fixed_rate.py: wrk2 is not in Debian; its limits are written there).

Every session is made by a scripted login through the real Keycloak (scripts/keycloak.sh starts one
unless KEYCLOAK_URL names one): ``--sessions`` of them for the proxy and as many for each peer, each in
a Redis of its own, and wrk rotates over all of them (a Lua script sends the next session's cookie with
each request), so each answer checks a different session of a realistic keyspace. Reported per run:
requests/s, p50/p99 latency, CPU seconds per 10k requests of the server under test and of its Redis.
Then the cost of a login (the callback request: code exchange, ID token check, session written) for
both, and of a back-channel logout at the proxy (Keycloak's admin API ends a user's session: the time
until the proxy refuses that user's cookie, and the proxy's own time per logout token).

Access tokens are given an hour (the clients' ``access.token.lifespan``) for the run, so that
neither side refreshes tokens in the middle of a measurement; restored afterwards.

Needs wrk, nginx, redis-server, apache2 + libapache2-mod-auth-openidc (``--no-apache``: without that
peer), Go to build oauth2-proxy once into ~/.cache/auth-proxy (``--no-oauth2-proxy``: without it), Java
for Keycloak: ``apt-get install wrk apache2 libapache2-mod-auth-openidc``, scripts/setup.sh
for the rest. Writes .artifacts/bench/results.json and bench/results.png (bench/chart.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from upstream_conf import UPSTREAM_CONF  # noqa: E402  (soak.py and ab.py take it from here)

from proxy.config import load_settings  # noqa: E402
from proxy.cookies import CookieCodec  # noqa: E402
from proxy.identity import Identity  # noqa: E402
from proxy.sessions.base import Session  # noqa: E402
from proxy.sessions.redis_store import RedisBackend  # noqa: E402
from proxy.sessions.store import SessionStore  # noqa: E402
from tests.support.keycloak_admin import (  # noqa: E402
    admin_token,
    backchannel_url,
    create_user,
    delete_user,
    set_client_attribute,
)
from tests.support.servers import free_port, redis_server, wait_port  # noqa: E402

SECRET = "bench-cookie-secret-0123456789abcdefgh"
REALM = "demo"
FRONT_CONF = """
worker_processes 1; pid {dir}/front.pid; error_log {dir}/front-error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {dir}/b; proxy_temp_path {dir}/p; fastcgi_temp_path {dir}/f;
  uwsgi_temp_path {dir}/u; scgi_temp_path {dir}/s;
  include {site};
}}
"""
ROTATE_LUA = """
-- each wrk thread: the next line of the file as the Cookie header, round robin, on every request
local cookies, n, i = {}, 0, 0
function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then n = n + 1; cookies[n] = line end
  end
  assert(n > 0, "no cookies in " .. args[1])
  i = math.random(n)
end
function request()
  i = i % n + 1
  return wrk.format(nil, nil, {["Cookie"] = cookies[i]})
end
"""


# --- measuring -----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks of 1/100 s


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a proxy's workers, Apache's children)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_cpu(pid: int) -> float:
    total = 0.0
    for p in process_tree(pid):
        try:
            total += cpu_seconds(p)
        except OSError:
            pass  # gone meanwhile
    return total


def wrk(
    url: str,
    seconds: int,
    connections: int,
    cookies_file: Path | None,
    script: Path,
    rate: float | None = None,
) -> dict[str, float]:
    """As fast as it goes with ``script`` the rotating one; at ``rate`` req/s in all with ``script``
    the constant-rate one (bench/fixed_rate.py)."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if rate is not None:
        cmd += ["-s", str(script), url, "--", str(cookies_file or "-"), f"{rate / 2}"]  # per thread
    elif cookies_file is not None:
        cmd += ["-s", str(script), url, "--", str(cookies_file)]
    else:
        cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        assert m, out
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    errors = int(non2xx.group(1)) if non2xx else 0
    errors += sum(int(g) for g in sock.groups()) if sock else 0
    r = {"rps": rps, "requests": total, "p50_ms": pct("50"), "p99_ms": pct("99"), "errors": errors}
    if late := re.search(r"late sends: (\d+), max lag ms: ([\d.]+)", out):
        r |= {"late_sends": int(late.group(1)), "max_lag_ms": float(late.group(2))}
    return r


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {"n": len(ms), "mean_ms": statistics.fmean(ms), "p50_ms": ms[len(ms) // 2],
            "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))]}  # fmt: skip


# --- the pieces ----------------------------------------------------------------------------------


async def make_session_cookies(redis_url: str, n: int) -> list[str]:
    """Create ``n`` sessions in Redis through the proxy's store (no provider needed: bench/soak.py);
    the cookie value of each, in order."""
    settings = load_settings(None, provider={"issuer_url": "http://127.0.0.1:9/x", "client_id": "p",
                             "client_secret": "s"}, cookie={"secret": SECRET})  # fmt: skip
    codec = CookieCodec(settings.cookie, settings.session.lifetime)
    backend = RedisBackend.from_url(redis_url)
    store = SessionStore.on(backend)
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
    await backend.close()
    return cookies


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


@contextmanager
def keycloak() -> Iterator[str]:
    """The base URL of a Keycloak with the demo realm: $KEYCLOAK_URL, else one started for the run."""
    if url := os.environ.get("KEYCLOAK_URL"):
        yield url.rstrip("/")
        return
    env = {**os.environ, "KC_PORT": os.environ.get("KC_PORT", "18080")}
    script = str(ROOT / "scripts/keycloak.sh")
    running = subprocess.run(["bash", script, "status"], env=env, capture_output=True, text=True)
    if running.returncode == 0:
        yield running.stdout.strip().splitlines()[-1]
        return
    started = subprocess.run(["bash", script, "start"], env=env, capture_output=True, text=True, check=True)
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", script, "stop"], env=env, capture_output=True)


@contextmanager
def process(cmd: list[str], port: int, **kwargs: object) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, **kwargs)  # type: ignore[call-overload]
    try:
        wait_port(port, 30)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def proxy_config(port: int, up_port: int, redis_url: str, issuer: str) -> str:
    return json.dumps({
        "server": {"listen": f"127.0.0.1:{port}", "trust_forwarded_headers": True},
        "provider": {"issuer_url": issuer, "client_id": "proxy", "client_secret": "proxy-secret"},
        "cookie": {"secret": SECRET, "secure": False},
        "session": {"store": "redis", "redis_url": redis_url},
        "upstreams": [{"prefix": "/", "url": f"http://127.0.0.1:{up_port}"}],
    })  # fmt: skip


async def backchannel_cost(proxy_url: str, kc: str, users: int) -> dict[str, float]:
    """``users`` fresh users each sign in to the proxy (a Keycloak session each); then, one by one,
    Keycloak's admin API ends the user's sessions: the time until the proxy refuses the cookie, and
    the proxy's own time per logout token (its metrics)."""
    from apache import login_many  # bench/apache.py

    made: list[tuple[str, str]] = []
    ended: list[float] = []
    try:
        for i in range(users):
            name = f"bench-bcl-{os.getpid()}-{i}"
            made.append((name, await create_user(kc, REALM, name, "bench-password")))
        cookies = []
        for name, _ in made:
            (cookie,), _ = await login_many(
                proxy_url + "/", 1, cookie_name_prefix="_auth_proxy", keycloak_origin=kc, username=name,
                password="bench-password",
            )  # fmt: skip
            cookies.append(cookie)
        async with aiohttp.ClientSession() as http:

            async def status(cookie: str) -> int:
                async with http.get(proxy_url + "/oauth/auth", headers={"Cookie": cookie}) as r:
                    return r.status

            admin = {"Authorization": f"Bearer {await admin_token(kc)}"}
            for (_, user_id), cookie in zip(made, cookies, strict=True):
                assert await status(cookie) == 202
                started = time.perf_counter()
                async with http.post(f"{kc}/admin/realms/{REALM}/users/{user_id}/logout", headers=admin) as r:
                    assert r.status == 204, await r.text()
                while await status(cookie) != 401:
                    if time.perf_counter() - started > 5:
                        raise RuntimeError("the back-channel logout did not reach the proxy within 5 s")
                ended.append(time.perf_counter() - started)
            async with http.get(proxy_url + "/metrics") as r:
                text = await r.text()
    finally:
        for _, user_id in made:
            await delete_user(kc, REALM, user_id)
    total = float(re.search(r'request_duration_seconds_sum\{route="backchannel"\} (\S+)', text).group(1))  # type: ignore[union-attr]
    count = float(re.search(r'request_duration_seconds_count\{route="backchannel"\} (\S+)', text).group(1))  # type: ignore[union-attr]
    return {**{f"until_refused_{k}": v for k, v in summary_ms(ended).items()},
            "proxy_ms_per_logout_token": total / count * 1000, "logout_tokens": count}  # fmt: skip


async def whoami(url: str, cookie: str) -> str:
    """The upstream's echo of the identity headers and cookie it got for a request with ``cookie``."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.get(url, headers={"Cookie": cookie}, allow_redirects=False) as r:
            text = (await r.text()).strip()
            if r.status != 200 or not text.startswith("user=") or text.startswith("user= "):
                raise RuntimeError(f"{url} with a session: {r.status} {text[:200]}")
            return text


# --- the run -------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--sessions", type=int, default=5000)
    ap.add_argument("--logout-users", type=int, default=20)
    ap.add_argument("--login-concurrency", type=int, default=4, help="logins in flight at once, per server")
    ap.add_argument("--rate", type=float, help="the fixed offered load, req/s (default: half the slowest "
                    "setup's maximum, so that every setup is measured below saturation)")  # fmt: skip
    ap.add_argument("--no-fixed-rate", action="store_true", help="leave out the runs at a fixed offered load")
    ap.add_argument("--no-apache", action="store_true", help="leave out Apache + mod_auth_openidc")
    ap.add_argument("--no-oauth2-proxy", action="store_true", help="leave out oauth2-proxy")
    args = ap.parse_args()
    tools = ["wrk", "nginx", "redis-server"] + ([] if args.no_apache else ["apache2"])
    for tool in tools:
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"bench: {tool} is not installed")
    from apache import apache_openidc, login_many
    from fixed_rate import RATE_LUA
    from oauth2_proxy import binary, keycloak_client, oauth2_proxy

    if not args.no_oauth2_proxy:
        binary()  # built into the cache (outside the repo) when missing: minutes, once
    work = Path(tempfile.mkdtemp(prefix="auth-proxy-bench-"))
    script, rate_script = work / "rotate.lua", work / "rate.lua"
    script.write_text(ROTATE_LUA)
    rate_script.write_text(RATE_LUA)
    results: dict[str, dict[str, float]] = {}
    logins: dict[str, dict[str, float]] = {}
    try:
        with ExitStack() as stack:
            kc = stack.enter_context(keycloak())
            issuer = f"{kc}/realms/{REALM}"
            redis = stack.enter_context(redis_server())
            apache_redis = stack.enter_context(redis_server())
            up_port = free_port()
            (work / "up.conf").write_text(UPSTREAM_CONF.format(dir=work, port=up_port))
            stack.enter_context(process([nginx_binary(), "-c", str(work / "up.conf"), "-p", str(work), "-g",
                                         "daemon off;"], up_port))  # fmt: skip
            proxies: dict[int, tuple[subprocess.Popen[bytes], str]] = {}
            for workers in (1, 2):
                port = free_port()
                cfg = work / f"proxy-{workers}.yaml"
                cfg.write_text(proxy_config(port, up_port, redis.url, issuer))
                cmd = [sys.executable, "-m", "proxy", "--config", str(cfg), "--log-level", "ERROR",
                       "--workers", str(workers)]  # fmt: skip
                proc = stack.enter_context(process(cmd, port, cwd=ROOT, stderr=subprocess.DEVNULL))
                proxies[workers] = proc, f"http://127.0.0.1:{port}"
            front_port = free_port()
            site = (ROOT / "deploy/nginx/auth-proxy.conf").read_text()
            site = site.replace("server 127.0.0.1:4180;", f"server {proxies[1][1].removeprefix('http://')};")
            site = site.replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{up_port};")
            site = site.replace("listen 80;", f"listen 127.0.0.1:{front_port};")
            (work / "site.conf").write_text(site)
            (work / "front.conf").write_text(FRONT_CONF.format(dir=work, site=work / "site.conf"))
            front = [nginx_binary(), "-c", str(work / "front.conf"), "-p", str(work), "-g", "daemon off;"]
            stack.enter_context(process(front, front_port))
            apaches: dict[int, tuple[subprocess.Popen[bytes], str]] = {}
            if not args.no_apache:
                for procs in (1, 2):
                    port = free_port()
                    threads = (args.connections + 14) // procs  # more threads than connections: see apache.py
                    apache = stack.enter_context(apache_openidc(
                        port=port, upstream_url=f"http://127.0.0.1:{up_port}", redis_port=apache_redis.port,
                        issuer=issuer, client_id="other-app", client_secret="other-app-secret",
                        processes=procs, threads=threads, workdir=work / f"apache-{procs}",
                    ))  # fmt: skip
                    apaches[procs] = apache, f"http://127.0.0.1:{port}"
            o2ps: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
            if not args.no_oauth2_proxy:
                o2p_redis = stack.enter_context(redis_server())
                ports = {"GOMAXPROCS=1": free_port(), "all cores": free_port()}
                client_id, secret = stack.enter_context(keycloak_client(kc, REALM, list(ports.values())))
                for label, port in ports.items():
                    o2p = stack.enter_context(oauth2_proxy(
                        port=port, upstream_url=f"http://127.0.0.1:{up_port}", redis_url=o2p_redis.url,
                        issuer=issuer, client_id=client_id, secret=secret,
                        gomaxprocs=1 if label == "GOMAXPROCS=1" else None,
                        log=work / f"oauth2-proxy-{port}.log",
                    ))  # fmt: skip
                    o2ps[label] = o2p, f"http://127.0.0.1:{port}"

            lifespans: dict[str, str] = {}

            async def sign_in_all() -> dict[str, list[str]]:
                cookies: dict[str, list[str]] = {}
                for client in ("proxy", "other-app"):
                    lifespans[client] = await set_client_attribute(
                        kc, REALM, client, "access.token.lifespan", "3600"
                    )
                targets = [("proxy", proxies[1][0].pid, proxies[1][1] + "/", "_auth_proxy")]
                if apaches:
                    apache_start = apaches[1][1] + "/"
                    targets.append(("apache", apaches[1][0].pid, apache_start, "mod_auth_openidc_session"))
                if o2ps:  # its own sign-in flow: /oauth2/start -> Keycloak -> /oauth2/callback -> cookie
                    o2p, url = o2ps["GOMAXPROCS=1"]
                    targets.append(("oauth2-proxy", o2p.pid, url + "/oauth2/start?rd=%2F", "_oauth2_proxy"))
                for name, pid, url, prefix in targets:
                    cpu = tree_cpu(pid)
                    started = time.perf_counter()
                    cookies[name], seconds = await login_many(
                        url, args.sessions, cookie_name_prefix=prefix, keycloak_origin=kc,
                        username="alice", password="alice-password", concurrency=args.login_concurrency,
                    )  # fmt: skip
                    elapsed, cpu = time.perf_counter() - started, tree_cpu(pid) - cpu
                    logins[name] = {**summary_ms(seconds), "cpu_ms_per_login": cpu / len(seconds) * 1000,
                                    "logins_per_s": len(seconds) / elapsed}  # fmt: skip
                return cookies

            print(f"signing in {args.sessions} sessions each through Keycloak ...", flush=True)
            cookies = asyncio.run(sign_in_all())
            bases = {"proxy": proxies[1][1], "apache": apaches[1][1] if apaches else "",
                     "oauth2-proxy": o2ps["GOMAXPROCS=1"][1] if o2ps else ""}  # fmt: skip
            for name, values in cookies.items():
                (work / f"{name}.cookies").write_text("\n".join(values) + "\n")
                # what each sends upstream for a session: the same four identity headers, no cookie of its own
                print(f"  {name:12} {asyncio.run(whoami(bases[name] + '/whoami', values[0]))}", flush=True)
            own, peer, single = work / "proxy.cookies", work / "apache.cookies", work / "one.cookies"
            o2p_own = work / "oauth2-proxy.cookies"
            single.write_text(cookies["proxy"][0] + "\n")
            redis_pid, apache_redis_pid, one = redis.proc.pid, apache_redis.proc.pid, proxies[1][0].pid
            Run = tuple[str, str, Path | None, int | None, int | None]
            o2p_runs: dict[str, Run] = {}
            if o2ps:
                o2p_redis_pid = o2p_redis.proc.pid
                (o1, u1), (oall, uall) = o2ps["GOMAXPROCS=1"], o2ps["all cores"]
                o2p_runs = {
                    "data 1": ("4. oauth2-proxy, GOMAXPROCS=1", u1 + "/", o2p_own, o1.pid, o2p_redis_pid),
                    "data all": ("7. oauth2-proxy, all cores", uall + "/", o2p_own, oall.pid, o2p_redis_pid),
                    "auth 1": ("11. oauth2-proxy /oauth2/auth, GOMAXPROCS=1", u1 + "/oauth2/auth", o2p_own,
                               o1.pid, o2p_redis_pid),
                    "auth all": ("12. oauth2-proxy /oauth2/auth, all cores", uall + "/oauth2/auth", o2p_own,
                                 oall.pid, o2p_redis_pid),
                }  # fmt: skip
            runs: list[Run] = [
                ("1. upstream direct", f"http://127.0.0.1:{up_port}/", None, None, None),
                ("2. proxy, 1 process", proxies[1][1] + "/", own, proxies[1][0].pid, redis_pid),
            ]
            if apaches:
                runs.append(("3. mod_auth_openidc, 1 process", apaches[1][1] + "/", peer, apaches[1][0].pid,
                             apache_redis_pid))  # fmt: skip
            if o2p_runs:
                runs.append(o2p_runs["data 1"])
            runs.append(("5. proxy, 2 workers", proxies[2][1] + "/", own, proxies[2][0].pid, redis_pid))
            if apaches:
                runs.append(("6. mod_auth_openidc, 2 processes", apaches[2][1] + "/", peer, apaches[2][0].pid,
                             apache_redis_pid))  # fmt: skip
            if o2p_runs:
                runs.append(o2p_runs["data all"])
            runs += [
                ("8. nginx auth_request -> /oauth/auth", f"http://127.0.0.1:{front_port}/", own, one,
                 redis_pid),
                ("9. /oauth/auth alone, 1 process", proxies[1][1] + "/oauth/auth", own, one, redis_pid),
                ("10. the same, one session repeated", proxies[1][1] + "/oauth/auth", single, one, redis_pid),
            ]  # fmt: skip
            if o2p_runs:
                runs += [o2p_runs["auth 1"], o2p_runs["auth all"]]

            def measure(url: str, cookie_file: Path | None, server_pid: int | None, redis_of: int | None,
                        rate: float | None) -> dict[str, float]:  # fmt: skip
                use = rate_script if rate else script
                wrk(url, 1 if rate else 3, args.connections, cookie_file, use, rate)  # warm-up, excluded
                before = [
                    tree_cpu(server_pid) if server_pid else 0.0,
                    cpu_seconds(redis_of) if redis_of else 0.0,
                ]
                r = wrk(url, args.seconds, args.connections, cookie_file, use, rate)
                after = [
                    tree_cpu(server_pid) if server_pid else 0.0,
                    cpu_seconds(redis_of) if redis_of else 0.0,
                ]
                r["server_cpu_s_per_10k"] = (after[0] - before[0]) / r["requests"] * 10_000
                r["redis_cpu_s_per_10k"] = (after[1] - before[1]) / r["requests"] * 10_000
                return r

            for name, url, cookie_file, server_pid, redis_of in runs:
                print(f"  {name}", flush=True)
                results[name] = measure(url, cookie_file, server_pid, redis_of, None)
            if not args.no_fixed_rate:
                slowest = min(r["rps"] for name, r in results.items() if name != "1. upstream direct")
                rate = args.rate or round(slowest / 2, -1)
                print(f"at a fixed offered load of {rate:.0f} req/s (constant rate) ...", flush=True)
                for name, url, cookie_file, server_pid, redis_of in runs:
                    print(f"  {name}", flush=True)
                    fixed = measure(url, cookie_file, server_pid, redis_of, rate)
                    results[name] |= {f"fixed_{k}": v for k, v in fixed.items()} | {"fixed_offered_rps": rate}
            print(f"back-channel logout of {args.logout_users} users ...", flush=True)

            async def logouts() -> dict[str, float]:
                async with backchannel_url(kc, REALM, proxies[1][1] + "/oauth/backchannel_logout"):
                    return await backchannel_cost(proxies[1][1], kc, args.logout_users)

            bcl = asyncio.run(logouts())

            async def restore() -> None:
                for client, old in lifespans.items():
                    await set_client_attribute(kc, REALM, client, "access.token.lifespan", old)

            asyncio.run(restore())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(args, results, logins, bcl)


def report(
    args: argparse.Namespace,
    results: dict[str, dict[str, float]],
    logins: dict[str, dict[str, float]],
    bcl: dict[str, float],
) -> None:
    ceiling = results["1. upstream direct"]["rps"]
    print(f"\n{args.seconds}s per run, {args.connections} connections, wrk -t2, {args.sessions} sessions "
          "each (signed in through Keycloak), cookies rotated\n")  # fmt: skip
    print(f"| {'setup':44} | {'req/s':>7} | {'vs direct':>9} | {'p50 ms':>7} | {'p99 ms':>7} | "
          f"{'server CPU s/10k':>16} | {'Redis CPU s/10k':>15} | {'errors':>6} |")  # fmt: skip
    print(f"|{'-' * 46}|{'-' * 9}|{'-' * 11}|{'-' * 9}|{'-' * 9}|{'-' * 18}|{'-' * 17}|{'-' * 8}|")
    for name, r in results.items():
        print(f"| {name:44} | {r['rps']:7.0f} | {r['rps'] / ceiling:9.3f} | {r['p50_ms']:7.2f} | "
              f"{r['p99_ms']:7.2f} | {r['server_cpu_s_per_10k']:16.2f} | {r['redis_cpu_s_per_10k']:15.2f} | "
              f"{r['errors']:6.0f} |")  # fmt: skip
    pairs = [("2. proxy, 1 process", "3. mod_auth_openidc, 1 process"),
             ("2. proxy, 1 process", "4. oauth2-proxy, GOMAXPROCS=1"),
             ("5. proxy, 2 workers", "6. mod_auth_openidc, 2 processes"),
             ("5. proxy, 2 workers", "7. oauth2-proxy, all cores"),
             ("9. /oauth/auth alone, 1 process", "11. oauth2-proxy /oauth2/auth, GOMAXPROCS=1")]  # fmt: skip
    for a, b in pairs:
        if a in results and b in results:
            print(f"\n{a} / {b}: {results[a]['rps'] / results[b]['rps']:.2f}x the requests/s, "
                  f"p99 {results[a]['p99_ms']:.1f} vs {results[b]['p99_ms']:.1f} ms")  # fmt: skip
    fixed = {name: r for name, r in results.items() if "fixed_rps" in r}
    if fixed:
        rate = next(iter(fixed.values()))["fixed_offered_rps"]
        print(f"\nat a fixed offered load of {rate:.0f} req/s (constant rate, bench/fixed_rate.py; late: "
              "sends more than 1 ms behind schedule, whose queueing the percentiles miss)\n")  # fmt: skip
        print(f"| {'setup':44} | {'req/s':>7} | {'p50 ms':>7} | {'p99 ms':>7} | {'server CPU s/10k':>16} | "
              f"{'Redis CPU s/10k':>15} | {'late':>5} | {'errors':>6} |")  # fmt: skip
        print(f"|{'-' * 46}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 18}|{'-' * 17}|{'-' * 7}|{'-' * 8}|")
        for name, r in fixed.items():
            print(f"| {name:44} | {r['fixed_rps']:7.0f} | {r['fixed_p50_ms']:7.2f} | "
                  f"{r['fixed_p99_ms']:7.2f} | {r['fixed_server_cpu_s_per_10k']:16.2f} | "
                  f"{r['fixed_redis_cpu_s_per_10k']:15.2f} | {r.get('fixed_late_sends', 0):5.0f} | "
                  f"{r['fixed_errors']:6.0f} |")  # fmt: skip
    print("\nlogin (the callback request: code exchange at Keycloak, ID token check, session stored):")
    for name, s in logins.items():
        print(f"  {name:12} mean {s['mean_ms']:.1f} ms, p50 {s['p50_ms']:.1f}, p99 {s['p99_ms']:.1f}; "
              f"{s['cpu_ms_per_login']:.2f} ms server CPU per login; "
              f"{s['logins_per_s']:.0f} logins/s")  # fmt: skip
    print(f"\nback-channel logout ({bcl['until_refused_n']:.0f} users): refused "
          f"{bcl['until_refused_mean_ms']:.1f} ms (mean, p99 "
          f"{bcl['until_refused_p99_ms']:.1f}) after the admin call started; the proxy's own time "
          f"{bcl['proxy_ms_per_logout_token']:.2f} ms per logout token")  # fmt: skip
    out = ROOT / ".artifacts" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(
        json.dumps({**results, "login": logins, "backchannel_logout": bcl}, indent=2)
    )
    chart = subprocess.run([sys.executable, str(ROOT / "bench/chart.py"), str(out / "results.json"), "-o",
                            str(ROOT / "bench/results.png")], capture_output=True, text=True)  # fmt: skip
    print("\nchart: bench/results.png" if chart.returncode == 0 else f"\nchart failed: {chart.stderr[-500:]}")


if __name__ == "__main__":
    main()
