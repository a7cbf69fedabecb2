"""The attack table of tests/deploy/attacks.py through deploy/traefik/dynamic.yaml's forwardAuth as
shipped (``trustForwardHeader``, ``authRequestHeaders``, ``authResponseHeaders`` read from the file),
with the proxy on ``auth_request.front: traefik`` and ``skip_auth_routes: ["GET=^/public$", "GET=^/$"]``.

Traefik is EMULATED (tests/deploy/traefik_emulation.py follows its source; deploy/README.md says why):
its header handling is what decides these cases. Verdict per case: only the real public routes reach
the upstream; the rest end in a redirect to sign in (302), Go's 400 for a Host it refuses (``#``, ``?``,
``/``, ``@``, space, empty, none), a 401 (POST), never in the upstream. Also: the recipe's settings
matter: without ``authRequestHeaders`` a client's X-Original-URL reaches the proxy (which the proxy
before this change read first: the shipped recipe then let a client name a public route anywhere).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from aiohttp import web
from multidict import CIMultiDict

from tests.conftest import ROOT, ProxyFactory
from tests.deploy.attacks import (
    ATTACKS,
    PUBLIC,
    Attack,
    check_attack,
    raw_answer,
    raw_request,
    recording_upstream,
)
from tests.deploy.traefik_emulation import emulated_traefik
from tests.support.fake_provider import FakeProvider

DYNAMIC = ROOT / "deploy" / "traefik" / "dynamic.yaml"


def shipped_forward_auth() -> dict[str, Any]:
    config = yaml.safe_load(DYNAMIC.read_text(encoding="utf-8"))
    forward: dict[str, Any] = config["http"]["middlewares"]["auth-proxy"]["forwardAuth"]
    return forward


@pytest.fixture
async def site(
    make_proxy: ProxyFactory, fake_provider: FakeProvider
) -> AsyncIterator[tuple[int, list[bytes]]]:
    proxy = await make_proxy(
        issuer=fake_provider.issuer,
        server={"trusted_proxies": ["127.0.0.1/32"]},
        authorization={"skip_auth_routes": PUBLIC},
        auth_request={"front": "traefik"},
    )
    forward = shipped_forward_auth()
    address = forward["address"].replace("http://auth-proxy:4180", proxy.url)
    async with recording_upstream() as upstream:
        async with emulated_traefik(forward, address, f"http://127.0.0.1:{upstream.port}") as port:
            yield port, upstream.seen


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
async def test_only_the_public_route_reaches_the_upstream(
    site: tuple[int, list[bytes]], attack: Attack
) -> None:
    port, seen = site
    await check_attack(port, seen, attack, "app.example.com", refused=(302, 400, 401))


async def test_the_redirect_comes_back_to_the_page(site: tuple[int, list[bytes]]) -> None:
    port, _ = site
    answer = await raw_answer(port, Attack("", "/reports?y=2026").head("app.example.com"))
    rd = quote("http://app.example.com/reports?y=2026", safe="")
    assert answer.startswith(b"HTTP/1.1 302 ")
    assert f"\r\nLocation: http://app.example.com/oauth/start?rd={rd}\r\n".encode() in answer


@pytest.mark.parametrize("careless", [False, True])
async def test_what_reaches_the_auth_server(aiohttp_server: Any, careless: bool) -> None:
    """The emulation is not vacuous: without authRequestHeaders, Traefik hands the client's
    X-Original-URL to the auth server (the hole the old proxy fell into, reading it first). The
    X-Forwarded-* it sends are its own either way (the entry point deletes the client's)."""
    seen: list[CIMultiDict[str]] = []

    async def auth(request: web.Request) -> web.Response:
        seen.append(CIMultiDict(request.headers))
        return web.Response(status=401)

    app = web.Application()
    app.router.add_get("/oauth/auth", auth)
    server = await aiohttp_server(app, host="127.0.0.1")
    forward = {"trustForwardHeader": True} if careless else shipped_forward_auth()
    spoof = (("X-Original-URL", "http://app.example.com/public"), ("X-Forwarded-Uri", "/public"),
             ("X_Forwarded_Uri", "/public"), ("Cookie", "a=b"))  # fmt: skip
    async with emulated_traefik(forward, str(server.make_url("/oauth/auth")), "http://unused") as port:
        await raw_request(port, Attack("", "/private", headers=spoof).head("app.example.com"))
    (headers,) = seen
    assert ("X-Original-URL" in headers) is careless
    assert headers.getall("X-Forwarded-Uri") == ["/private"] and "X_Forwarded_Uri" not in headers
    assert headers["X-Forwarded-Method"] == "GET" and headers["X-Forwarded-Host"] == "app.example.com"
    assert headers["Cookie"] == "a=b"
