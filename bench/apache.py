"""The peer this proxy is compared against: Apache httpd + mod_auth_openidc with server-side sessions in
Redis, signed in through a real Keycloak; and a scripted mass login that works for both.

    .venv/bin/python bench/apache.py [--sessions 20]      # smoke check (needs Keycloak on :18080)

``apache_openidc`` runs Debian's ``apache2`` + ``libapache2-mod-auth-openidc`` (2.4.12.3) in the
foreground from a config of its own: mpm_event, no access log, ``OIDCCacheType redis`` with
``OIDCSessionType server-cache``, the identity passed upstream as ``X-Forwarded-*`` headers the way
this proxy passes it, HTTP keep-alive to the upstream.

``login_many`` signs in once at Keycloak with the password (through the app), then opens ``n`` further
app sessions riding on that Keycloak SSO session (Keycloak answers each authorization request with a
code at once, no password hashing): the cost measured per login is the app's callback request, where
it exchanges the code at the token endpoint and creates its session.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookies import Morsel
from pathlib import Path

import aiohttp
from yarl import URL

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from served import served  # noqa: E402
from upstream_conf import UPSTREAM_CONF  # noqa: E402

from tests.support.browser import Page  # noqa: E402
from tests.support.servers import free_port, redis_server, wait_port  # noqa: E402

APACHE = "/usr/sbin/apache2"
MODULES = Path("/usr/lib/apache2/modules")
# mod_auth_openidc encrypts what it stores in Redis with a key derived from this (OIDCCacheEncrypt is
# On by default for Redis), and its state cookies too
CRYPTO_PASSPHRASE = "bench-openidc-passphrase-0123456789abcdef"

APACHE_CONF = """\
ServerRoot "{dir}"
ServerName 127.0.0.1:{port}
Listen 127.0.0.1:{port}
PidFile "{dir}/httpd.pid"
DefaultRuntimeDir "{dir}"
Mutex file:{dir} default
ErrorLog "{dir}/error.log"
LogLevel warn
User {user}
Group {group}

LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authn_core_module {modules}/mod_authn_core.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule authz_user_module {modules}/mod_authz_user.so
LoadModule headers_module {modules}/mod_headers.so
LoadModule proxy_module {modules}/mod_proxy.so
LoadModule proxy_http_module {modules}/mod_proxy_http.so
LoadModule auth_openidc_module {modules}/mod_auth_openidc.so

# a fixed pool: every process and thread from the start, none reaped or respawned during a run
StartServers {processes}
ServerLimit {processes}
ThreadLimit {threads}
ThreadsPerChild {threads}
MaxRequestWorkers {workers}
MinSpareThreads 1
MaxSpareThreads {max_spare}
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 15
Timeout 60
HostnameLookups Off
ServerTokens Prod
ServerSignature Off
# no CustomLog (mod_log_config is not even loaded): no access log

OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration
OIDCClientID {client_id}
OIDCClientSecret {client_secret}
OIDCRedirectURI http://127.0.0.1:{port}/redirect_uri
OIDCCryptoPassphrase {passphrase}
OIDCScope "openid email profile"
OIDCCacheType redis
OIDCRedisCacheServer 127.0.0.1:{redis_port}
OIDCSessionType server-cache
# like the proxy's default: an 8-hour session, no separate idle limit (mod_auth_openidc always has one;
# equal to the maximum it never bites first, and the sliding expiry is rewritten at most once a minute)
OIDCSessionMaxDuration 28800
OIDCSessionInactivityTimeout 28800
# OIDCUserInfoRefreshInterval and OIDCRefreshAccessTokenBeforeExpiry left unset: no call to Keycloak per
# request. Each request still makes two Redis GETs (the session, ~8.5 kB, and the provider metadata,
# ~13 kB: 2.4.12 re-reads it from the cache on every request with OIDCProviderMetadataURL; configuring
# the endpoints one by one instead is refused for http:// URLs), both decrypted and JSON-parsed
# the identity headers this proxy sends upstream, no more: X-Forwarded-User (its preferred_username),
# -Email, -Preferred-Username, -Groups. Claims go into the environment only ("headers" would also send
# OIDC_access_token and one OIDC_CLAIM_* header per claim) and mod_headers copies the four; a client's
# own copies are removed (X-Forwarded-User by mod_auth_openidc's scrub, the others below). The session
# cookie is not passed on, as this proxy drops its own.
OIDCRemoteUserClaim preferred_username
OIDCAuthNHeader X-Forwarded-User
OIDCPassClaimsAs environment
OIDCStripCookies mod_auth_openidc_session
# back-channel logout needs no directive: the redirect URI serves it (?logout=backchannel), finding the
# session by the sid in the cache (one session per sid: the latest login of a Keycloak session wins)

ProxyRequests Off
ProxyPass /redirect_uri !
ProxyPass / {upstream}/ disablereuse=Off ttl=60
ProxyPassReverse / {upstream}/

<Location />
    AuthType openid-connect
    Require valid-user
    RequestHeader unset X-Forwarded-Email
    RequestHeader unset X-Forwarded-Preferred-Username
    RequestHeader unset X-Forwarded-Groups
    RequestHeader set X-Forwarded-Email "%{{OIDC_CLAIM_email}}e" env=OIDC_CLAIM_email
    RequestHeader set X-Forwarded-Preferred-Username "%{{OIDC_CLAIM_preferred_username}}e" \\
        env=OIDC_CLAIM_preferred_username
    RequestHeader set X-Forwarded-Groups "%{{OIDC_CLAIM_groups}}e" env=OIDC_CLAIM_groups
</Location>
"""


@contextmanager
def apache_openidc(
    *,
    port: int,
    upstream_url: str,
    redis_port: int,
    issuer: str,
    client_id: str,
    client_secret: str,
    processes: int = 1,
    threads: int = 50,
    workdir: Path,
) -> Iterator[subprocess.Popen[bytes]]:
    """Apache + mod_auth_openidc on 127.0.0.1:``port`` in front of ``upstream_url``, sessions in the
    Redis on ``redis_port``; config, pid file, mutexes and error log under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)  # the children run as www-data (User/Group below)
    conf = workdir / "apache.conf"
    conf.write_text(
        APACHE_CONF.format(
            dir=workdir, port=port, user="www-data", group="www-data", modules=MODULES, processes=processes,
            threads=threads, workers=processes * threads, max_spare=(processes + 1) * threads,
            issuer=issuer.rstrip("/"), client_id=client_id, client_secret=client_secret,
            passphrase=CRYPTO_PASSPHRASE, redis_port=redis_port, upstream=upstream_url.rstrip("/"),
        )
    )  # fmt: skip
    check = subprocess.run(
        [APACHE, "-t", "-d", str(workdir), "-f", str(conf)], capture_output=True, text=True
    )
    if check.returncode != 0:
        raise RuntimeError(f"apache2 -t: {check.stderr.strip()}")
    def logs() -> str:
        return " ".join((workdir / f).read_text(errors="replace") for f in ("apache.stderr", "error.log")
                        if (workdir / f).exists())  # fmt: skip

    cmd = [APACHE, "-DFOREGROUND", "-d", str(workdir), "-f", str(conf)]
    with served(cmd, port=port, name="apache2", output=(workdir / "apache.stderr").open("wb"), logs=logs,
                start_timeout=20) as proc:  # fmt: skip
        yield proc


_REDIRECTS = (301, 302, 303, 307, 308)


class _Login:
    """One browser's worth of cookies (its own jar) over a shared connection pool; follows redirects
    by hand and times the request to the app that carries ``?code=``."""

    def __init__(self, http: aiohttp.ClientSession, keycloak_origin: str) -> None:
        self.http = http
        origin = URL(keycloak_origin)
        self.kc = (origin.host, origin.port)
        self.jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[origin])
        self.code_seconds: float | None = None
        self.keycloak_cookies: set[str] = set()  # names of the cookies Keycloak set

    async def go(
        self, url: str, *, method: str = "GET", data: dict[str, str] | None = None, max_hops: int = 15
    ) -> Page:
        history: list[tuple[int, str]] = []
        for _ in range(max_hops):
            target = URL(url, encoded=True)
            at_keycloak = (target.host, target.port) == self.kc
            cookies = self.jar.filter_cookies(target)
            headers = {"Cookie": "; ".join(f"{k}={m.value}" for k, m in cookies.items())} if cookies else {}
            timed = not at_keycloak and "code" in target.query
            start = time.perf_counter()
            async with self.http.request(
                method, target, data=data, headers=headers, allow_redirects=False
            ) as resp:
                text = await resp.text(errors="replace")
                if timed:
                    self.code_seconds = time.perf_counter() - start
                self.jar.update_cookies(resp.cookies, target)
                if at_keycloak:
                    self.keycloak_cookies.update(resp.cookies.keys())
                if resp.status in _REDIRECTS and "Location" in resp.headers:
                    history.append((resp.status, url))
                    url = str(target.join(URL(resp.headers["Location"], encoded=True)))
                    if resp.status in (301, 302, 303):
                        method, data = "GET", None
                    continue
                return Page(url, resp.status, dict(resp.headers), text, history)
        raise RuntimeError(f"more than {max_hops} redirects, last {url}")

    def cookie_header(self, url: str, prefix: str) -> str:
        """The app's session cookie(s) as a ``Cookie:`` header value, as a browser would send them."""
        found = self.jar.filter_cookies(URL(url))
        header = "; ".join(f"{k}={m.value}" for k, m in found.items() if k.startswith(prefix))
        if not header:
            raise RuntimeError(f"no cookie named {prefix}* for {url}; have {sorted(found)}")
        return header

    def morsels(self, names: set[str]) -> list[Morsel[str]]:
        return [m for m in self.jar if m.key in names]


async def login_many(
    start_url: str,
    n: int,
    *,
    cookie_name_prefix: str,
    keycloak_origin: str,
    username: str,
    password: str,
    concurrency: int = 8,
) -> tuple[list[str], list[float]]:
    """``n`` app sessions for one user: ``Cookie:`` header values, and for each login the seconds of
    the app's callback request (``?code=``: code exchange + session creation). One password login at
    Keycloak first (not counted); then each login starts from no app cookies but Keycloak's SSO ones."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    headers = {"Accept": "text/html,*/*;q=0.8", "User-Agent": "auth-proxy-bench"}
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), headers=headers
    ) as http:
        first = _Login(http, keycloak_origin)
        page = await first.go(start_url)
        if not page.is_keycloak_login:
            raise RuntimeError(
                f"expected Keycloak's login form from {start_url}, got {page.status} {page.url}"
            )
        _, action = page.form("kc-form-login")
        page = await first.go(
            action, method="POST", data={"username": username, "password": password, "credentialId": ""}
        )
        if page.status != 200:
            raise RuntimeError(f"password login ended with {page.status} at {page.url}: {page.text[:300]}")
        first.cookie_header(start_url, cookie_name_prefix)  # raises unless the app gave a session cookie
        seed = first.morsels(first.keycloak_cookies)
        origin = URL(keycloak_origin)

        cookies: list[str] = []
        seconds: list[float] = []
        todo = iter(range(n))

        async def worker() -> None:
            for _ in todo:
                login = _Login(http, keycloak_origin)
                for morsel in seed:
                    login.jar.update_cookies({morsel.key: morsel}, origin)
                page = await login.go(start_url)
                if page.status != 200 or login.code_seconds is None:
                    hops = " -> ".join(f"{s} {u[:90]}" for s, u in page.history)
                    raise RuntimeError(f"SSO login ended with {page.status} at {page.url[:200]} ({hops})")
                cookies.append(login.cookie_header(start_url, cookie_name_prefix))
                seconds.append(login.code_seconds)

        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, n)))))
    return cookies, seconds


def _redis_cli(port: int, *args: str) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True
    ).stdout


def _ms(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return f"mean {statistics.fmean(ms):.1f} ms, p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms"


async def _get(url: str, cookie: str | None, extra: dict[str, str] | None = None) -> tuple[int, str, str]:
    headers = {"Cookie": cookie, **(extra or {})} if cookie else {}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.get(url, headers=headers, allow_redirects=False) as resp:
            return resp.status, resp.headers.get("Location", ""), await resp.text()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keycloak", default="http://127.0.0.1:18080")
    ap.add_argument("--realm", default="demo")
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--processes", type=int, default=1)
    # more threads than wrk's 50 connections: with every worker busy, mpm_event closes idle keep-alive
    # connections (wrk counts read errors, the error log says AH00484 MaxRequestWorkers)
    ap.add_argument("--threads", type=int, default=64)
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    issuer = f"{args.keycloak}/realms/{args.realm}"
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    work = Path(tempfile.mkdtemp(prefix="auth-proxy-bench-apache-"))
    up_port, port = free_port(), free_port()
    (work / "up.conf").write_text(UPSTREAM_CONF.format(dir=work, port=up_port))
    upstream = subprocess.Popen([nginx, "-c", str(work / "up.conf"), "-p", str(work), "-g", "daemon off;"])
    try:
        wait_port(up_port)
        with (
            redis_server() as redis,
            apache_openidc(
                port=port, upstream_url=f"http://127.0.0.1:{up_port}", redis_port=redis.port, issuer=issuer,
                client_id="other-app", client_secret="other-app-secret", processes=args.processes,
                threads=args.threads, workdir=work / "apache",
            ),
        ):  # fmt: skip
            app = f"http://127.0.0.1:{port}/"
            start = time.perf_counter()
            cookies, seconds = asyncio.run(
                login_many(app, args.sessions, cookie_name_prefix="mod_auth_openidc_session",
                           keycloak_origin=args.keycloak, username="alice", password="alice-password",
                           concurrency=args.concurrency)
            )  # fmt: skip
            took = time.perf_counter() - start
            print(f"{len(cookies)} logins (+1 with the password) in {took:.2f} s, "
                  f"{len(cookies) / took:.0f}/s with concurrency {args.concurrency}")  # fmt: skip
            print(f"callback (?code=) request: {_ms(seconds)}")
            assert len(set(cookies)) == len(cookies), "sessions are not distinct"
            cookie = cookies[-1]
            print(f"one cookie: {cookie[:80]}")
            status, _, body = asyncio.run(_get(app, cookie))
            assert (status, body) == (200, "hello from the upstream\n"), (status, body)
            print(f"GET / with the cookie -> {status} {body.strip()!r}")
            spoof = {"X-Forwarded-User": "mallory", "X-Forwarded-Groups": "admin", "OIDC_CLAIM_email": "x"}
            status, _, body = asyncio.run(_get(app + "whoami", cookie, spoof))
            expected = "user=alice email=alice@example.test name=alice groups= cookie=\n"
            assert (status, body) == (200, expected), (status, body)
            print(f"GET /whoami (with spoofed identity headers) -> {status} {body.strip()}")
            status, location, _ = asyncio.run(_get(app, None))
            assert status == 302 and location.startswith(issuer + "/"), (status, location)
            print(f"GET / without a cookie -> {status} {location[:100]}...")
            keys = _redis_cli(redis.port, "--scan").split()
            kinds: dict[str, int] = {}
            for key in keys:
                kinds[key.split(":", 1)[0]] = kinds.get(key.split(":", 1)[0], 0) + 1
            print(f"redis dbsize {_redis_cli(redis.port, 'dbsize').strip()}, by prefix {kinds}")
            print("  (s: session, n: nonce, d: sid -> session, p: provider metadata, j: JWKS)")
            for prefix in ("s", "p"):
                key = next(k for k in keys if k.startswith(prefix + ":"))
                size, ttl = (_redis_cli(redis.port, c, key).strip() for c in ("strlen", "ttl"))
                print(f"  {key[:40]}...: {size} bytes, ttl {ttl} s")
            _redis_cli(redis.port, "config", "resetstat")
            cmd = ["wrk", "-t2", f"-c{50}", f"-d{args.seconds}s", "--latency", "-H", f"Cookie: {cookie}", app]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            print(out)
            assert "Non-2xx" not in out, "wrk saw non-2xx responses"
            total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
            print(f"redis commandstats after {total} requests through Apache:")
            for line in _redis_cli(redis.port, "info", "commandstats").splitlines():
                if line.startswith("cmdstat_"):
                    print(f"  {line}")
            error_log = (work / "apache" / "error.log").read_text(errors="replace").strip()
            if error_log:
                print(f"apache error.log (last lines):\n{os.linesep.join(error_log.splitlines()[-10:])}")
    finally:
        upstream.terminate()
        upstream.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
