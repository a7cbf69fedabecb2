"""TLS everywhere, against real servers on loopback with certificates the test makes (tests/support/certs.py).

upstream: nginx over TLS, and with mutual TLS (ssl_verify_client on)
    ca_file of its CA                              → 200
    no ca_file (system CAs), another CA's file     → 502, "upstream TLS failed" logged; never unverified
    insecure_skip_verify                           → 200, a start-up warning and the metric at 1
    mTLS with client_cert/client_key               → 200, nginx saw the client's name
    mTLS without, or with another CA's client cert → nginx refuses it (400), never 200
Redis: redis-server --tls-port, --tls-auth-clients yes
    rediss:// + ca_file + client cert             → PING answers, /ready 200 with the proxy on it
    another CA, or no client cert                  → StoreUnavailable (503: fail closed)
    rediss+sentinel:// to a TLS-only Sentinel and master → works; another CA → StoreUnavailable
provider: the fake provider served over HTTPS (not Keycloak itself)
    ca_file                                        → discovery succeeds, a browser signs in
    another CA                                     → discovery fails, /ready 503, the reason logged
the proxy's own listener: server.tls_cert_file/tls_key_file
    serves the certificate; TLS 1.2 refused with tls_min_version "1.3"
    the files replaced                             → new handshakes get the new certificate
    a half-written pair                            → the old one stays, a warning is logged
configuration: bad files, half pairs, TLS options on plain URLs → refused naming the key
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from yarl import URL

from proxy.app import create_app
from proxy.config import ConfigError, load_settings
from proxy.config.tls import RedisTlsConfig
from proxy.errors import StoreUnavailable
from proxy.keys import METRICS, PROVIDERS, SERVER_TLS
from proxy.sessions.redis_store import RedisBackend
from tests.conftest import COOKIE_SECRET, ROOT, ProxyFactory
from tests.support.browser import navigate
from tests.support.certs import CA, Pair, der_serial, serial_of
from tests.support.fake_provider import FakeProvider
from tests.support.nginx import nginx
from tests.support.servers import free_port, wait_port


@pytest.fixture(scope="module")
def pki() -> Iterator[dict[str, Any]]:
    directory = Path(tempfile.mkdtemp(prefix="auth-proxy-pki-"))
    ca, other = CA(directory), CA(directory, "another CA")
    yield {
        "dir": directory,
        "ca": ca,
        "other": other,
        "server": ca.issue("server"),
        "client": ca.issue("proxy-client", client=True),
        "stranger": other.issue("stranger-client", client=True),
    }
    shutil.rmtree(directory, ignore_errors=True)


SITE = """
server {{
    listen 80;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    {mtls}
    location / {{ return 200 "tls ok dn=$ssl_client_s_dn\\n"; }}
}}
"""


@pytest.fixture(scope="module")
def tls_upstream(pki: dict[str, Any]) -> Iterator[str]:
    server: Pair = pki["server"]
    with nginx(SITE.format(cert=server.cert, key=server.key, mtls=""), ssl=True) as (port, _):
        yield f"https://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def mtls_upstream(pki: dict[str, Any]) -> Iterator[str]:
    server: Pair = pki["server"]
    mtls = f"ssl_client_certificate {pki['ca'].file}; ssl_verify_client on;"
    with nginx(SITE.format(cert=server.cert, key=server.key, mtls=mtls), ssl=True) as (port, _):
        yield f"https://127.0.0.1:{port}"


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url, allow_redirects=False) as resp:
        return resp.status, await resp.text()


PUBLIC = {"authorization": {"skip_auth_routes": ["^/"]}}


async def _via(make_proxy: ProxyFactory, issuer: str, url: str, **tls: Any) -> tuple[int, str]:
    proxy = await make_proxy(issuer=issuer, upstreams=[{"prefix": "/", "url": url, **tls}], **PUBLIC)
    return await _get(proxy.url + "/x")


async def test_upstream_with_its_ca(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, tls_upstream: str, pki: dict[str, Any]
) -> None:
    status, body = await _via(make_proxy, fake_provider.issuer, tls_upstream, ca_file=str(pki["ca"].file))
    assert (status, body.split(" dn=")[0]) == (200, "tls ok")


@pytest.mark.parametrize("which", ["system CAs", "another CA"])
async def test_upstream_with_the_wrong_ca_is_502(
    make_proxy: ProxyFactory,
    fake_provider: FakeProvider,
    tls_upstream: str,
    pki: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    which: str,
) -> None:
    tls = {} if which == "system CAs" else {"ca_file": str(pki["other"].file)}
    with caplog.at_level(logging.WARNING, logger="proxy"):
        status, _ = await _via(make_proxy, fake_provider.issuer, tls_upstream, **tls)
    assert status == 502
    assert any("upstream TLS failed" in r.getMessage() and "CERTIFICATE_VERIFY_FAILED" in r.getMessage()
               for r in caplog.records)  # fmt: skip


async def test_upstream_insecure_skip_verify_is_loud(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, tls_upstream: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="proxy"):
        proxy = await make_proxy(
            issuer=fake_provider.issuer,
            upstreams=[{"prefix": "/", "url": tls_upstream, "insecure_skip_verify": True}],
            **PUBLIC,
        )
    assert (await _get(proxy.url + "/x"))[0] == 200
    assert any(
        getattr(r, "event", None) == "tls_insecure" and r.target == "upstream /" for r in caplog.records
    )
    assert proxy.app[METRICS].tls_verify_disabled.labels("upstream /")._value.get() == 1


async def test_mutual_tls_to_the_upstream(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, mtls_upstream: str, pki: dict[str, Any]
) -> None:
    ca = str(pki["ca"].file)
    client, stranger = pki["client"], pki["stranger"]
    ok = await _via(make_proxy, fake_provider.issuer, mtls_upstream, ca_file=ca,
                    client_cert=str(client.cert), client_key=str(client.key))  # fmt: skip
    assert ok[0] == 200 and "CN=proxy-client" in ok[1]
    without = await _via(make_proxy, fake_provider.issuer, mtls_upstream, ca_file=ca)
    assert without[0] == 400  # nginx: "No required SSL certificate was sent"
    foreign = await _via(make_proxy, fake_provider.issuer, mtls_upstream, ca_file=ca,
                         client_cert=str(stranger.cert), client_key=str(stranger.key))  # fmt: skip
    assert foreign[0] == 400  # nginx: "The SSL certificate error"


# --- Redis over TLS ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_redis(pki: dict[str, Any]) -> Iterator[int]:
    workdir = Path(tempfile.mkdtemp(prefix="auth-proxy-redis-tls-"))
    port = free_port()
    server: Pair = pki["server"]
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    args = [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(workdir), "--logfile", str(workdir / "redis.log"),
            "--tls-cert-file", str(server.cert), "--tls-key-file", str(server.key),
            "--tls-ca-cert-file", str(pki["ca"].file), "--tls-auth-clients", "yes"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def _redis_tls(pki: dict[str, Any], ca: str = "ca", client: str | None = "client") -> RedisTlsConfig:
    pair = pki[client] if client else None
    return RedisTlsConfig(
        ca_file=pki[ca].file, client_cert=pair.cert if pair else None, client_key=pair.key if pair else None
    )


async def test_redis_over_tls(tls_redis: int, pki: dict[str, Any]) -> None:
    backend = RedisBackend.from_url(f"rediss://127.0.0.1:{tls_redis}/0", tls=_redis_tls(pki))
    try:
        await backend.ping()
        await backend.set("k", b"v", 10)
        assert await backend.get("k") == b"v"
    finally:
        await backend.close()


@pytest.mark.parametrize(("ca", "client"), [("other", "client"), ("ca", None), ("ca", "stranger")])
async def test_redis_over_tls_fails_closed(
    tls_redis: int, pki: dict[str, Any], ca: str, client: str | None
) -> None:
    backend = RedisBackend.from_url(
        f"rediss://127.0.0.1:{tls_redis}/0", tls=_redis_tls(pki, ca, client), retries=0
    )
    try:
        with pytest.raises(StoreUnavailable):
            await backend.ping()
    finally:
        await backend.close()


async def test_proxy_on_redis_over_tls(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, tls_redis: int, pki: dict[str, Any]
) -> None:
    client: Pair = pki["client"]
    redis_tls = {
        "ca_file": str(pki["ca"].file),
        "client_cert": str(client.cert),
        "client_key": str(client.key),
    }
    proxy = await make_proxy(
        issuer=fake_provider.issuer,
        session={"store": "redis", "redis_url": f"rediss://127.0.0.1:{tls_redis}/0", "redis_tls": redis_tls},
    )
    assert (await _get(proxy.url + "/ready"))[0] == 200


# --- the provider over HTTPS -------------------------------------------------------------------


def _server_context(pair: Pair) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(pair.cert), str(pair.key))
    return context


@pytest.fixture
async def https_provider(aiohttp_server: Any, pki: dict[str, Any]) -> AsyncIterator[FakeProvider]:
    provider = FakeProvider()
    server = await aiohttp_server(provider.app(), host="127.0.0.1", ssl=_server_context(pki["server"]))
    provider.issuer = str(server.make_url("")).rstrip("/")
    assert provider.issuer.startswith("https://")
    yield provider


async def test_provider_over_https_with_its_ca(
    make_proxy: ProxyFactory, https_provider: FakeProvider, upstream: str, pki: dict[str, Any]
) -> None:
    proxy = await make_proxy(
        issuer=https_provider.issuer, upstream=upstream, provider={"ca_file": str(pki["ca"].file)}
    )
    assert (await _get(proxy.url + "/ready"))[0] == 200
    trusting = ssl.create_default_context(cafile=str(pki["ca"].file))
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(
        cookie_jar=jar, headers={"Accept": "text/html"}, connector=aiohttp.TCPConnector(ssl=trusting)
    ) as browser:
        page = await navigate(browser, proxy.url + "/oauth/start?rd=/oauth/userinfo")
        assert page.status == 200, page.text[:300]
        assert "sub" in page.text


async def test_provider_with_the_wrong_ca_fails_closed(
    make_proxy: ProxyFactory,
    https_provider: FakeProvider,
    pki: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="proxy"):
        proxy = await make_proxy(
            issuer=https_provider.issuer, provider={"ca_file": str(pki["other"].file)}, wait_discovery=False
        )
        await asyncio.sleep(0.5)
        assert not proxy.app[PROVIDERS].default.discovery.ready
        status, _ = await _get(proxy.url + "/ready")
    assert status == 503
    assert any("CERTIFICATE_VERIFY_FAILED" in r.getMessage() for r in caplog.records)


# --- the proxy's own listener ------------------------------------------------------------------


def _settings(tmp: Path, pair: Pair, **server: Any) -> Any:
    return load_settings(
        None,
        provider={"issuer_url": "https://id.example", "client_id": "p", "client_secret": "s"},
        cookie={"secret": COOKIE_SECRET},
        session={"store": "memory"},
        server={"tls_cert_file": str(pair.cert), "tls_key_file": str(pair.key), **server},
    )


async def _served_serial(port: int, ca: Path, version: ssl.TLSVersion | None = None) -> int:
    context = ssl.create_default_context(cafile=str(ca))
    if version is not None:
        context.maximum_version = version
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return der_serial(ssl_object.getpeercert(binary_form=True))
    finally:
        writer.close()


async def test_listener_serves_and_reloads_its_certificate(
    aiohttp_server: Any, pki: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca: CA = pki["ca"]
    live = Pair(tmp_path / "tls.crt", tmp_path / "tls.key")
    first = ca.issue("first")
    shutil.copy(first.cert, live.cert)
    shutil.copy(first.key, live.key)
    app = create_app(_settings(tmp_path, live, tls_reload_interval="50ms", tls_min_version=1.3))
    tls = app[SERVER_TLS]
    server = await aiohttp_server(app, host="127.0.0.1", ssl=tls.context)
    port = server.port

    assert await _served_serial(port, ca.file) == serial_of(first.cert.read_bytes())
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await _served_serial(port, ca.file, ssl.TLSVersion.TLSv1_2)  # tls_min_version: "1.3"

    second = ca.issue("second")
    with caplog.at_level(logging.WARNING, logger="proxy"):
        live.cert.write_bytes(second.cert.read_bytes())  # the key not yet: a pair that doesn't load
        await asyncio.sleep(0.3)
        assert await _served_serial(port, ca.file) == serial_of(first.cert.read_bytes())
        assert any(getattr(r, "event", None) == "tls_reload_failed" for r in caplog.records)
        live.key.write_bytes(second.key.read_bytes())
        for _ in range(40):
            if tls.reloads:
                break
            await asyncio.sleep(0.05)
    assert await _served_serial(port, ca.file) == serial_of(second.cert.read_bytes())
    async with aiohttp.ClientSession() as http:
        trusting = ssl.create_default_context(cafile=str(ca.file))
        async with http.get(URL(f"https://localhost:{port}/ping"), ssl=trusting) as resp:
            assert resp.status == 200


# --- configuration -----------------------------------------------------------------------------


def _load(**sections: Any) -> None:
    base: dict[str, Any] = {
        "provider": {"issuer_url": "https://id.example", "client_id": "p", "client_secret": "s"},
        "cookie": {"secret": COOKIE_SECRET},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    load_settings(None, **base)


def test_bad_tls_configuration_is_refused_naming_the_key(pki: dict[str, Any], tmp_path: Path) -> None:
    ca, client, server = str(pki["ca"].file), pki["client"], pki["server"]
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"provider": {"ca_file": str(tmp_path / "missing.pem")}},
            "provider: ca_file: cannot load CA certificates",
        ),
        ({"provider": {"ca_file": str(junk)}}, "provider: ca_file: cannot load"),
        ({"provider": {"ca_file": ca, "insecure_skip_verify": True}}, "set ca_file or insecure_skip_verify"),
        ({"provider": {"issuer_url": "http://id.example", "ca_file": ca}}, "issuer_url does not use it"),
        (
            {"upstreams": [{"url": "https://a", "client_cert": str(client.cert)}]},
            "upstreams.0: set client_cert and client_key",
        ),
        (
            {
                "upstreams": [
                    {"url": "https://a", "client_cert": str(client.cert), "client_key": str(server.key)}
                ]
            },
            "upstreams.0: client_cert/client_key: cannot load",
        ),
        ({"upstreams": [{"url": "http://a", "ca_file": ca}]}, "upstreams.0: ca_file, client_cert"),
        (
            {"session": {"redis_url": "redis://r:6379/0", "redis_tls": {"ca_file": ca}}},
            "session: redis_tls applies only",
        ),
        (
            {"session": {"redis_url": "rediss://r:6379/0", "redis_tls": {"ca_file": str(junk)}}},
            "session.redis_tls: ca_file",
        ),
        (
            {"server": {"tls_cert_file": str(server.cert)}},
            "server: set tls_cert_file and tls_key_file together",
        ),
        (
            {"server": {"tls_cert_file": str(server.cert), "tls_key_file": str(client.key)}},
            "server: tls_cert_file/tls_key_file: cannot load",
        ),
        ({"server": {"tls_min_version": "1.1"}}, "server.tls_min_version"),
    ]
    for sections, needle in cases:
        with pytest.raises(ConfigError) as exc:
            _load(**sections)
        assert needle in str(exc.value), (sections, str(exc.value))


def test_tls_min_version_from_yaml_float(pki: dict[str, Any], tmp_path: Path) -> None:
    settings = _settings(tmp_path, pki["server"], tls_min_version=1.2)
    assert settings.server.tls_min_version == "1.2"


_ = web  # aiohttp's web is imported for the type of apps built here


def test_the_process_serves_https(pki: dict[str, Any], tmp_path: Path, tls_redis: int) -> None:
    """``python -m proxy`` with two workers (spawned: the settings are pickled) over TLS, and Redis
    over TLS; an insecure_skip_verify upstream is warned about in its log."""
    port, server, client = free_port(), pki["server"], pki["client"]
    config = {
        "server": {
            "listen": f"127.0.0.1:{port}",
            "tls_cert_file": str(server.cert),
            "tls_key_file": str(server.key),
        },
        "provider": {
            "issuer_url": f"http://127.0.0.1:{free_port()}/x",
            "client_id": "p",
            "client_secret": "s",
        },
        "cookie": {"secret": COOKIE_SECRET},
        "session": {
            "redis_url": f"rediss://127.0.0.1:{tls_redis}/0",
            "redis_tls": {
                "ca_file": str(pki["ca"].file),
                "client_cert": str(client.cert),
                "client_key": str(client.key),
            },
        },
        "upstreams": [{"prefix": "/", "url": "https://127.0.0.1:1", "insecure_skip_verify": True}],
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "proxy", "--config", str(path), "--workers", "2"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, timeout=30)
        context = ssl.create_default_context(cafile=str(pki["ca"].file))
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/ping", timeout=5, context=context) as answer:
            assert answer.status == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=40)
    assert "TLS certificate verification is OFF for upstream /" in err, err[-2000:]
    assert "Traceback" not in err, err[-3000:]


@pytest.fixture(scope="module")
def tls_sentinel(pki: dict[str, Any]) -> Iterator[int]:
    """A TLS-only master and a TLS-only Sentinel watching it (tls-replication: the Sentinel speaks
    TLS to the master too)."""
    workdir = Path(tempfile.mkdtemp(prefix="auth-proxy-sentinel-tls-"))
    master, sentinel = free_port(), free_port()
    server: Pair = pki["server"]
    tls = [f"tls-cert-file {server.cert}", f"tls-key-file {server.key}", f"tls-ca-cert-file {pki['ca'].file}",
           "tls-auth-clients no", "tls-replication yes"]  # fmt: skip
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    (workdir / "master.conf").write_text("\n".join(["port 0", f"tls-port {master}", "bind 127.0.0.1",
                                                    'save ""', f"dir {workdir}", *tls]) + "\n")  # fmt: skip
    (workdir / "sentinel.conf").write_text("\n".join(["port 0", f"tls-port {sentinel}", "bind 127.0.0.1",
        f"dir {workdir}", *tls, f"sentinel monitor mymaster 127.0.0.1 {master} 1"]) + "\n")  # fmt: skip
    procs = [
        subprocess.Popen(
            [binary, str(workdir / "master.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ),
        subprocess.Popen(
            [binary, str(workdir / "sentinel.conf"), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),  # fmt: skip
    ]
    try:
        wait_port(master)
        wait_port(sentinel)
        yield sentinel
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


async def test_redis_sentinel_over_tls(tls_sentinel: int, pki: dict[str, Any]) -> None:
    url = f"rediss+sentinel://127.0.0.1:{tls_sentinel}/mymaster/0"
    backend = RedisBackend.from_url(url, tls=_redis_tls(pki))
    try:
        for _ in range(100):  # the Sentinel learns about its master within a moment
            try:
                await backend.ping()
                break
            except StoreUnavailable:
                await asyncio.sleep(0.1)
        await backend.set("k", b"v", 10)
        assert await backend.get("k") == b"v"
    finally:
        await backend.close()
    wrong = RedisBackend.from_url(url, tls=_redis_tls(pki, "other"), retries=0)
    try:
        with pytest.raises(StoreUnavailable):
            await wrong.ping()
    finally:
        await wrong.close()
