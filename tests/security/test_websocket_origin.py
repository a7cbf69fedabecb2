"""Cross-site WebSocket hijacking: an upgrade is relayed only when a page of this site opened it.

A page on another site can open ``wss://app.example/ws`` and the browser sends the session cookie
with it (SameSite=None; or SameSite=Lax from a sibling under the same registrable domain: same-site
is not same-origin). No CORS check applies to WebSockets, so the ``Origin`` header is the only tell.
A real proxy relays to a real WebSocket echo upstream that counts the upgrades reaching it.

The proxy trusts its front's X-Forwarded-Proto/-Host, which say ``https`` and ``app.example.com``:
its own origin is ``https://app.example.com``. A signed-in browser (session cookie) sends:

  Origin: https://app.example.com                → relayed (101)
  Origin: HTTPS://APP.EXAMPLE.COM                → relayed (scheme and host are case-insensitive)
  Origin: https://app.example.com:443            → relayed (the default port, spelled out)
  Origin: https://app.example.com/               → 403 (not an origin: browsers never add a path)
  Origin: https://app.example.com:8443           → 403 (another port is another origin)
  Origin: http://app.example.com                 → 403 (another scheme is another origin)
  Origin: https://evil.example                   → 403
  Origin: https://blog.example.com               → 403 (a sibling subdomain: same site, other origin)
  Origin: https://example.com                    → 403 (the parent domain)
  Origin: https://sub.app.example.com            → 403 (a subdomain)
  Origin: https://app.example.com.evil.example   → 403
  Origin: https://user@app.example.com           → 403 (userinfo: not an origin)
  Origin: null                                   → 403 (a sandboxed frame, file:, data:)
  Origin: (empty)                                → 403
  Origin: https://app.example.com, https://evil.example (one header) → 403
  two Origin headers, ours first                 → 403
  Origin: http://127.0.0.1:<port> (the socket's, not the browser's view) → 403
  no Origin                                      → 403 (a browser always sends one; a script must
                                                   say websocket.allow_missing_origin: true)
  no Origin, Authorization: Bearer <valid token> → relayed (a page can't put a header on an upgrade,
                                                   so a token is never sent for it: nothing to hijack)
  Origin: https://evil.example, valid bearer     → 403 (Origin is checked whenever it is sent)
  Origin: https://evil.example, on a public route (skip_auth_routes) → 403 (the app's own cookies
                                                   still go with it)
  no Origin, on a public route                   → 403 (as signed in: allow_missing_origin lets it by)
  Origin: https://evil.example, no session       → 401 as before (sign in first)

Each 403 is a readable page/JSON, logs the origin, and never reaches the upstream. Requests the
proxy doesn't take for an upgrade go upstream as plain HTTP with ``Upgrade``/``Connection`` dropped,
so the upstream can't upgrade them either (foreign Origin, signed in):

  Upgrade: websocket, Connection: keep-alive     → plain GET upstream (its 400), never 101
  Upgrade: websocket, h2c, Connection: Upgrade   → plain GET upstream (its 400), never 101
  Upgrade: WebSocket, Connection: keep-alive, Upgrade → an upgrade: 403

With ``websocket.allowed_origins: [https://partner.example, http://localhost:8080]`` and
``allow_missing_origin: true``, and no trusted front (own origin: ``http://127.0.0.1:<port>``):

  Origin: http://127.0.0.1:<port>                → relayed (own origin)
  Origin: https://partner.example                → relayed
  Origin: https://PARTNER.example:443            → relayed
  Origin: http://localhost:8080                  → relayed
  Origin: https://partner.example:8443           → 403
  Origin: http://partner.example                 → 403
  Origin: https://sub.partner.example            → 403
  Origin: http://localhost                       → 403 (port 80, not 8080)
  Origin: https://evil.example with X-Forwarded-Host: evil.example, X-Forwarded-Proto: https
                                                 → 403 (forwarded headers not trusted here)
  no Origin                                      → relayed (allow_missing_origin)

``websocket.allowed_origins`` entries are checked at start-up, the error naming the key: refused are
``https://app.example.com/`` (trailing slash), ``https://app.example.com/path``, ``app.example.com``
(no scheme), ``*``, ``https://*.example.com``, ``null``, ``wss://app.example.com``,
``ftp://app.example.com``, ``https://user@app.example.com``, ``https://app.example.com:99999``,
``https://app.example.com?x``, ``https://bücher.example``; accepted ones are normalised
(``HTTPS://App.Example.com:443`` → ``https://app.example.com``).
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from proxy.config import ConfigError, load_settings
from tests.conftest import ProxyFactory, RunningProxy
from tests.support.fake_provider import FakeProvider
from tests.support.login import signed_in_browser

HITS = web.AppKey("hits", list)
OWN = "https://app.example.com"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
FRONT = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example.com"}


async def echo(request: web.Request) -> web.StreamResponse:
    request.app[HITS].append(request.path)
    sock = web.WebSocketResponse()
    await sock.prepare(request)
    async for msg in sock:
        if msg.type == WSMsgType.TEXT:
            await sock.send_str("echo:" + msg.data)
    return sock


@pytest.fixture
async def ws_upstream(aiohttp_server: Any) -> tuple[web.Application, str]:
    app = web.Application()
    app[HITS] = []
    app.router.add_get("/{tail:.*}", echo)
    server = await aiohttp_server(app, host="127.0.0.1")
    return app, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def fronted(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, ws_upstream: tuple[web.Application, str]
) -> RunningProxy:
    """Behind a trusted front: own origin https://app.example.com; default websocket settings."""
    fake_provider.access_token_jwt = True
    return await make_proxy(
        issuer=fake_provider.issuer,
        upstream=ws_upstream[1],
        as_deployed=True,
        server={"trusted_proxies": ["127.0.0.1/32"]},
        api={"accept_bearer": True},
        authorization={"skip_auth_routes": ["^/public/"]},
    )


@pytest.fixture
async def listed(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, ws_upstream: tuple[web.Application, str]
) -> RunningProxy:
    return await make_proxy(
        issuer=fake_provider.issuer,
        upstream=ws_upstream[1],
        as_deployed=True,
        websocket={
            "allowed_origins": ["https://partner.example", "http://localhost:8080"],
            "allow_missing_origin": True,
        },
    )


async def upgrade(client: aiohttp.ClientSession, url: str, headers: CIMultiDict[str]) -> int:
    """101 when the upgrade is relayed and echoes, else the handshake's status."""
    try:
        async with client.ws_connect(url, headers=headers) as ws:
            await ws.send_str("hi")
            assert await ws.receive_str(timeout=5) == "echo:hi"
            return 101
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status


def origin(*values: str) -> CIMultiDict[str]:
    return CIMultiDict([("Origin", v) for v in values])


FRONTED_ORIGINS: dict[str, tuple[list[str], int]] = {
    "same origin": ([OWN], 101),
    "upper case": (["HTTPS://APP.EXAMPLE.COM"], 101),
    "default port spelled out": ([OWN + ":443"], 101),
    "trailing slash": ([OWN + "/"], 403),
    "other port": ([OWN + ":8443"], 403),
    "other scheme": (["http://app.example.com"], 403),
    "other site": (["https://evil.example"], 403),
    "sibling subdomain": (["https://blog.example.com"], 403),
    "parent domain": (["https://example.com"], 403),
    "subdomain": (["https://sub.app.example.com"], 403),
    "own host as a prefix": (["https://app.example.com.evil.example"], 403),
    "userinfo": (["https://user@app.example.com"], 403),
    "null": (["null"], 403),
    "empty": ([""], 403),
    "a list in one header": ([OWN + ", https://evil.example"], 403),
    "two headers": ([OWN, "https://evil.example"], 403),
    "the socket's origin": (["http://127.0.0.1:{port}"], 403),
    "missing": ([], 403),
}


@pytest.mark.parametrize("case", list(FRONTED_ORIGINS))
async def test_signed_in_upgrade_by_origin(
    fronted: RunningProxy, ws_upstream: tuple[web.Application, str], case: str
) -> None:
    values, expected = FRONTED_ORIGINS[case]
    port = str(fronted.server.port)
    headers = CIMultiDict({**FRONT})
    headers.extend(origin(*(v.replace("{port}", port) for v in values)))
    async with await signed_in_browser(fronted.url) as browser:
        assert await upgrade(browser, fronted.url + "/ws", headers) == expected
    assert len(ws_upstream[0][HITS]) == (1 if expected == 101 else 0)


BEARER_AND_PUBLIC: dict[str, tuple[str, list[str], bool, int]] = {
    "no Origin, bearer": ("/ws", [], True, 101),
    "own Origin, bearer": ("/ws", [OWN], True, 101),
    "foreign Origin, bearer": ("/ws", ["https://evil.example"], True, 403),
    "foreign Origin, public route": ("/public/ws", ["https://evil.example"], False, 403),
    "own Origin, public route": ("/public/ws", [OWN], False, 101),
    "no Origin, public route": ("/public/ws", [], False, 403),
    "foreign Origin, no session": ("/ws", ["https://evil.example"], False, 401),
}


@pytest.mark.parametrize("case", list(BEARER_AND_PUBLIC))
async def test_bearer_and_anonymous_upgrades(
    fronted: RunningProxy, fake_provider: FakeProvider, ws_upstream: tuple[web.Application, str], case: str
) -> None:
    path, values, bearer, expected = BEARER_AND_PUBLIC[case]
    headers = CIMultiDict({**FRONT})
    headers.extend(origin(*values))
    if bearer:
        headers["Authorization"] = f"Bearer {fake_provider.access_token()}"
    async with aiohttp.ClientSession() as client:
        assert await upgrade(client, fronted.url + path, headers) == expected
    assert len(ws_upstream[0][HITS]) == (1 if expected == 101 else 0)


LISTED_ORIGINS: dict[str, tuple[dict[str, str], list[str], int]] = {
    "own origin": ({}, ["http://127.0.0.1:{port}"], 101),
    "listed": ({}, ["https://partner.example"], 101),
    "listed, other spelling": ({}, ["https://PARTNER.example:443"], 101),
    "listed with a port": ({}, ["http://localhost:8080"], 101),
    "listed host, other port": ({}, ["https://partner.example:8443"], 403),
    "listed host, other scheme": ({}, ["http://partner.example"], 403),
    "subdomain of a listed one": ({}, ["https://sub.partner.example"], 403),
    "listed host, default port": ({}, ["http://localhost"], 403),
    "untrusted forwarded headers": (
        {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}, ["https://evil.example"], 403
    ),
    "missing, allowed by config": ({}, [], 101),
}  # fmt: skip


@pytest.mark.parametrize("case", list(LISTED_ORIGINS))
async def test_allow_listed_origins(
    listed: RunningProxy, ws_upstream: tuple[web.Application, str], case: str
) -> None:
    extra, values, expected = LISTED_ORIGINS[case]
    port = str(listed.server.port)
    headers = CIMultiDict(extra)
    headers.extend(origin(*(v.replace("{port}", port) for v in values)))
    async with await signed_in_browser(listed.url) as browser:
        assert await upgrade(browser, listed.url + "/ws", headers) == expected
    assert len(ws_upstream[0][HITS]) == (1 if expected == 101 else 0)


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
async def test_a_refusal_is_readable_and_logged(
    fronted: RunningProxy, caplog: pytest.LogCaptureFixture, accept: str
) -> None:
    headers = {
        **FRONT, "Origin": "https://evil.example", "Accept": accept, "Connection": "Upgrade",
        "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": KEY,
    }  # fmt: skip
    caplog.set_level(logging.WARNING, logger="proxy.upstream_ws")
    async with await signed_in_browser(fronted.url) as browser:
        async with browser.get(fronted.url + "/ws", headers=headers) as r:
            body = await r.text()
    assert r.status == 403
    assert "Cross-site WebSocket refused" in body and "Traceback" not in body
    refused = [rec for rec in caplog.records if getattr(rec, "event", "") == "websocket_origin_refused"]
    assert [getattr(rec, "origin", None) for rec in refused] == ["https://evil.example"]
    assert "https://evil.example" in refused[0].getMessage()


NOT_QUITE_UPGRADES: dict[str, tuple[str, str, int]] = {
    "no upgrade token in Connection": ("websocket", "keep-alive", 400),
    "a list in Upgrade": ("websocket, h2c", "Upgrade", 400),
    "mixed case, a list in Connection": ("WebSocket", "keep-alive, Upgrade", 403),
}


@pytest.mark.parametrize("case", list(NOT_QUITE_UPGRADES))
async def test_what_is_not_an_upgrade_here_is_none_upstream(
    fronted: RunningProxy, ws_upstream: tuple[web.Application, str], case: str
) -> None:
    upgrade_value, connection, expected = NOT_QUITE_UPGRADES[case]
    headers = {
        **FRONT, "Origin": "https://evil.example", "Connection": connection, "Upgrade": upgrade_value,
        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": KEY,
    }  # fmt: skip
    async with await signed_in_browser(fronted.url) as browser:
        async with browser.get(fronted.url + "/ws", headers=headers) as r:
            assert r.status == expected
    assert len(ws_upstream[0][HITS]) == (1 if expected == 400 else 0)


BAD_ENTRIES = [
    "https://app.example.com/",
    "https://app.example.com/path",
    "app.example.com",
    "*",
    "https://*.example.com",
    "null",
    "wss://app.example.com",
    "ftp://app.example.com",
    "https://user@app.example.com",
    "https://app.example.com:99999",
    "https://app.example.com?x",
    "https://bücher.example",
]


def _settings(**websocket: Any) -> Any:
    return load_settings(
        provider={"issuer_url": "https://idp.example", "client_id": "proxy", "client_secret": "s"},
        cookie={"secret": "x" * 32},
        websocket=websocket,
    )


@pytest.mark.parametrize("entry", BAD_ENTRIES)
def test_a_bad_allow_list_entry_is_refused_at_start_up(entry: str) -> None:
    with pytest.raises(ConfigError) as exc:
        _settings(allowed_origins=["https://ok.example", entry])
    assert "websocket.allowed_origins.1" in str(exc.value)


def test_allow_list_entries_are_normalised() -> None:
    settings = _settings(allowed_origins=["HTTPS://App.Example.com:443", "http://localhost:8080"])
    assert settings.websocket.allowed_origins == ["https://app.example.com", "http://localhost:8080"]
