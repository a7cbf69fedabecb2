"""Shared fixtures: a real Redis of our own, the real Keycloak, a fake provider for error paths, a
sample upstream, and a factory that runs the proxy on a real port."""

from __future__ import annotations

import copy
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from proxy import dispatch
from proxy.app import create_app, hot_paths
from proxy.config import Settings, load_settings
from proxy.keys import PROVIDERS
from proxy.limits import guard_heads, runner_options
from proxy.logs import AccessLogger
from tests.support.fake_provider import FakeProvider
from tests.support.servers import RedisServer, redis_server
from tests.support.upstream_app import make_upstream

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
    server: TestServer


ProxyFactory = Callable[..., Awaitable[RunningProxy]]


@pytest.fixture
def make_proxy(aiohttp_server: Any) -> ProxyFactory:
    """``await make_proxy(issuer=..., upstream=..., **config_overrides)`` → a proxy on a real port.

    ``as_deployed=True`` runs it as ``python -m proxy`` does: the HTTP parser limits and the timeouts
    of ``server:`` and the proxy's own access log (not aiohttp's, which logs query strings)."""

    async def factory(
        *,
        issuer: str,
        upstream: str | None = None,
        client_id: str = "proxy",
        client_secret: str = "proxy-secret",
        wait_discovery: bool = True,
        as_deployed: bool = False,
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
        runner: dict[str, Any] = {}
        if as_deployed:
            runner = {**runner_options(settings.server), "access_log_class": AccessLogger}
        server = await aiohttp_server(app, host="127.0.0.1", **runner)
        assert isinstance(server.runner, web.AppRunner)
        dispatch.install(server.runner, hot_paths(settings))  # as proxy.workers.serve does
        if as_deployed:
            assert server.runner.server is not None
            guard_heads(server.runner.server, settings.server.header_read_timeout)
        if wait_discovery:
            for entry in app[PROVIDERS]:
                await entry.discovery.discover()
        return RunningProxy(str(server.make_url("")).rstrip("/"), app, settings, server)

    return factory


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
