"""What the attack tables share: a proxy run as deployed (parser limits, its own access log) in front
of the fake provider and the echo upstream, a provider that can be told to forge its ID tokens, and
the two verdicts every case ends in: signed in, or treated as nobody (never a 500)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from proxy.keys import COOKIES, STORE
from tests.conftest import ProxyFactory, RunningProxy
from tests.support.fake_provider import FakeProvider

LONG_FUZZ = os.environ.get("LONG_FUZZ", "") not in ("", "0")
"""``LONG_FUZZ=1`` (scripts/test.sh sets it) runs the minutes-long fuzz tests marked ``fuzz``."""

Forge = Callable[["ForgingProvider", dict[str, Any]], str]


@dataclass
class ForgingProvider(FakeProvider):
    """The fake provider, but ``forge`` (if set) makes the ID token of the next code exchanges from
    the claims a correct one would carry."""

    forge: Forge | None = None

    def id_token(self, nonce: str, access_token: str, **overrides: Any) -> str:
        if self.forge is None:
            return super().id_token(nonce, access_token, **overrides)
        honest = super().id_token(nonce, access_token, **overrides)
        return self.forge(self, dict(jwt.decode(honest, self.key).claims))


KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
"""One signing key for every test here: making a 2048-bit key per test costs ~40 ms, 200 times over."""


@pytest.fixture
async def fake_provider(aiohttp_server: Any) -> FakeProvider:
    """tests/conftest.py's fake provider, with the shared key."""
    provider = FakeProvider(key=KEY)
    server = await aiohttp_server(provider.app(), host="127.0.0.1")
    provider.issuer = str(server.make_url("")).rstrip("/")
    return provider


@pytest.fixture
async def forging_provider(aiohttp_server: Any) -> ForgingProvider:
    provider = ForgingProvider(key=KEY)
    server = await aiohttp_server(provider.app(), host="127.0.0.1")
    provider.issuer = str(server.make_url("")).rstrip("/")
    return provider


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str) -> RunningProxy:
    return await make_proxy(
        issuer=fake_provider.issuer,
        upstream=upstream,
        as_deployed=True,
        logout={"allowed_redirect_domains": [".example.org", "app.example.net"]},
    )


async def is_live(proxy: RunningProxy, cookie_value: str) -> bool:
    """Whether a session cookie value names a session the store still has."""
    ticket = proxy.app[COOKIES].decode(cookie_value)
    return ticket is not None and await proxy.app[STORE].load(ticket) is not None


async def treated_as_nobody(proxy: RunningProxy, cookie_header: str) -> None:
    """A request carrying ``cookie_header`` is signed out everywhere: the proxied app sends a browser
    to sign in, an API client gets 401, /oauth/userinfo 401, /oauth/auth 401. Never a 500."""
    headers = {"Cookie": cookie_header}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as client:
        checks = [
            ("/app", {"Accept": "text/html"}, 302),
            ("/app", {"Accept": "application/json"}, 401),
            ("/oauth/userinfo", {}, 401),
            ("/oauth/auth", {}, 401),
        ]
        for path, extra, status in checks:
            async with client.get(proxy.url + path, headers={**headers, **extra}, allow_redirects=False) as r:
                assert r.status == status, (path, r.status, (await r.text())[:200])
