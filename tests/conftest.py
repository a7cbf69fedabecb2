"""Shared fixtures: a real Redis of our own, the real Keycloak, a fake provider for error paths, a
sample upstream, and a factory that runs the proxy on a real port."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from proxy.app import create_app
from proxy.config import Settings, load_settings
from proxy.keys import PROVIDERS
from proxy.workers import Listening, listen
from tests.support.fake_provider import FakeProvider
from tests.support.servers import RedisServer, free_port, redis_server
from tests.support.upstream_app import make_upstream
from tests.support.zitadel_op import ZitadelOP

ROOT = Path(__file__).resolve().parent.parent
COOKIE_SECRET = "test-cookie-secret-0123456789abcdef"


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture(scope="session")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
async def redis_url(redis_srv: RedisServer) -> AsyncIterator[str]:
    client = Redis.from_url(redis_srv.url)
    await client.flushall()
    await client.aclose()
    yield redis_srv.url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def fake_provider(aiohttp_server: Any) -> FakeProvider:
    provider = FakeProvider()
    server = await aiohttp_server(provider.app(), host="127.0.0.1")
    provider.issuer = str(server.make_url("")).rstrip("/")
    return provider


@pytest.fixture
async def upstream(aiohttp_server: Any) -> str:
    server = await aiohttp_server(make_upstream(), host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


@dataclass
class RunningProxy:
    url: str
    app: web.Application
    settings: Settings
    server: TestServer | Listening


ProxyFactory = Callable[..., Awaitable[RunningProxy]]


@pytest.fixture
async def make_proxy(aiohttp_server: Any) -> AsyncIterator[ProxyFactory]:
    """``await make_proxy(issuer=..., upstream=..., **config_overrides)`` → a proxy on a real port.

    ``as_deployed=True`` serves it as ``python -m proxy`` does (``proxy.workers.listen``): the HTTP
    parser limits and the timeouts of ``server:`` and the proxy's own access log (not aiohttp's,
    which logs query strings)."""
    deployed: list[Listening] = []

    async def factory(
        *,
        issuer: str,
        upstream: str | None = None,
        client_id: str = "proxy",
        client_secret: str = "proxy-secret",
        wait_discovery: bool = True,
        as_deployed: bool = False,
        port: int | None = None,
        **overrides: Any,
    ) -> RunningProxy:
        base: dict[str, Any] = {
            "provider": {"issuer_url": issuer, "client_id": client_id, "client_secret": client_secret},
            "cookie": {"secret": COOKIE_SECRET, "secure": False},
            "session": {"store": "memory"},
            "upstreams": [{"prefix": "/", "url": upstream}] if upstream else [],
        }
        if "providers" in overrides:  # the list form instead of the single provider
            del base["provider"]
        settings = load_settings(None, **merge(base, overrides))
        app = create_app(settings)
        server: TestServer | Listening
        if as_deployed:
            server = await listen(app, settings.server, "127.0.0.1", port)
            deployed.append(server)
            url = f"http://127.0.0.1:{server.port}"
        else:
            server = await aiohttp_server(app, host="127.0.0.1", port=port)
            url = str(server.make_url("")).rstrip("/")
        if wait_discovery:
            for entry in app[PROVIDERS]:
                await entry.discovery.discover()
        return RunningProxy(url, app, settings, server)

    yield factory
    for server in deployed:
        await server.close()


# --- the real Keycloak -------------------------------------------------------------------------


@dataclass(frozen=True)
class Keycloak:
    url: str
    realm: str = "demo"

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/{self.realm}"


@pytest.fixture(scope="session")
def keycloak() -> Iterator[Keycloak]:
    """The real Keycloak: ``$KEYCLOAK_URL`` if set (already running), else started by our script."""
    if os.environ.get("KEYCLOAK_URL"):
        yield Keycloak(os.environ["KEYCLOAK_URL"].rstrip("/"))
        return
    env = {**os.environ, "KC_PORT": os.environ.get("KC_PORT", "18080")}
    script = ROOT / "scripts" / "keycloak.sh"
    done = subprocess.run(
        ["bash", str(script), "start"], env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        pytest.fail(f"Keycloak did not start (scripts/keycloak.sh start):\n{done.stderr[-3000:]}")
    try:
        yield Keycloak(done.stdout.strip().splitlines()[-1].rstrip("/"))
    finally:
        subprocess.run(["bash", str(script), "stop"], env=env, capture_output=True, timeout=120)


# --- the second provider: zitadel/oidc's example OP ---------------------------------------------


@pytest.fixture(scope="session")
def zitadel_op() -> Iterator[ZitadelOP]:
    """zitadel/oidc's example OP, built once into the cache and started by ``scripts/zitadel-op.sh``
    (``$ZITADEL_OP_URL`` if set: an OP already running, whose ``web`` client must then accept the
    callback ports in ``$ZITADEL_OP_PORTS``)."""
    if os.environ.get("ZITADEL_OP_URL"):
        ports = tuple(int(p) for p in os.environ["ZITADEL_OP_PORTS"].split(","))
        yield ZitadelOP(os.environ["ZITADEL_OP_URL"], ports)
        return
    ports = tuple(free_port() for _ in range(4))
    home = tempfile.mkdtemp(prefix="auth-proxy-zitadel-op-")  # pid file and log: gone afterwards
    env = {
        **os.environ,
        "ZO_HOME": home,
        "ZO_PORT": str(free_port()),
        "ZO_REDIRECT_URI": ",".join(f"http://127.0.0.1:{p}/oauth/callback" for p in ports),
    }
    script = ROOT / "scripts" / "zitadel-op.sh"
    done = subprocess.run(
        ["bash", str(script), "start"], env=env, capture_output=True, text=True, timeout=900
    )
    try:
        if done.returncode != 0:
            pytest.fail(f"the zitadel OP did not start (scripts/zitadel-op.sh start):\n{done.stderr[-3000:]}")
        yield ZitadelOP(done.stdout.strip().splitlines()[-1], ports)
    finally:
        subprocess.run(["bash", str(script), "stop"], env=env, capture_output=True, timeout=60)
        shutil.rmtree(home, ignore_errors=True)
