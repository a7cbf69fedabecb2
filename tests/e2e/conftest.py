"""Fixtures for the real-browser tests: one headless Debian Chromium for the whole session (driven by
Playwright's async API), the proxy in front of ``demo/sample_app.py`` with its sessions in the real Redis,
and a screenshot helper that writes ``.artifacts/e2e/<test>-<step>.png``.

One Chromium serves every test, so the browser, the servers and the tests must share one event loop:
the tests here run in the session-scoped loop (``pytest.mark.asyncio(loop_scope="session")`` in the test
modules) and ``aiohttp_server`` is redefined below to start its servers on that loop too (pytest-aiohttp's
own runs on the function-scoped loop, which is not running while a session-loop test runs)."""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, async_playwright

from tests.conftest import ROOT, Keycloak, ProxyFactory, RunningProxy

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling Google services that aren't reachable.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / ".artifacts" / "e2e"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: scripts/setup.sh installs it (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must run the browser tests, not skip them
        pytest.skip(message)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="session")
async def aiohttp_server() -> AsyncIterator[Callable[..., Awaitable[TestServer]]]:
    """pytest-aiohttp's fixture, on the session loop (see the module docstring)."""
    servers: list[TestServer] = []

    async def go(app: web.Application, *, host: str = "127.0.0.1", port: int | None = None) -> TestServer:
        server = TestServer(app, host=host, port=port)
        await server.start_server()
        servers.append(server)
        return server

    yield go
    while servers:
        await servers.pop().close()


def _sample_app_factory() -> Callable[[], web.Application]:
    spec = importlib.util.spec_from_file_location("demo_sample_app", ROOT / "demo" / "sample_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    factory: Callable[[], web.Application] = module.make_app
    return factory


@pytest_asyncio.fixture(loop_scope="session")
async def sample_app(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> str:
    """``demo/sample_app.py`` on a free port: shows the identity headers, has a Sign out button."""
    server = await aiohttp_server(_sample_app_factory()())
    return str(server.make_url("")).rstrip("/")


@pytest_asyncio.fixture(loop_scope="session")
async def app_proxy(
    make_proxy: ProxyFactory, keycloak: Keycloak, sample_app: str, redis_url: str
) -> RunningProxy:
    """The proxy in front of the sample app, signing in at the real Keycloak, sessions in the real Redis."""
    return await make_proxy(
        issuer=keycloak.issuer, upstream=sample_app, session={"store": "redis", "redis_url": redis_url}
    )


Shot = Callable[[Page, str], Awaitable[None]]


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Shot:
    """``await shot(page, "step")`` → ``.artifacts/e2e/<test>-<step>.png`` (full page)."""
    test = re.sub(r"[^\w.-]+", "_", request.node.name)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"{test}-*.png"):
        old.unlink()  # no stale steps from an earlier run

    async def take(page: Page, step: str, **kwargs: Any) -> None:
        await page.screenshot(path=str(ARTIFACTS / f"{test}-{step}.png"), full_page=True, **kwargs)

    return take
