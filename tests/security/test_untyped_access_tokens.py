"""``api.untyped_access_tokens``: bearer access tokens that don't say they are access tokens (header
``typ: JWT``, no ``typ`` claim: ZITADEL, Entra ID, Okta). Such a token looks like an ID token, signed
by the same keys, so what may pass is narrowed three ways:

- start-up refuses the option unless ``api.audiences`` is set and leaves out ``provider.client_id``
  (the proxy's own ID tokens are addressed to it);
- a token carrying an ID-token-only claim (``nonce``, ``at_hash``, ``c_hash``, ``s_hash``) is refused;
- every other check stays: signature, ``iss``, ``aud``, ``exp``, ``sub``, a ``typ`` claim other than
  ``Bearer``, a header ``typ`` other than ``JWT``/``at+jwt``, an ``events`` claim (logout tokens).

Residual risk (also in docs/providers.md): an ID
token issued to a client named in ``api.audiences`` with none of those four claims would pass; don't
list in ``api.audiences`` a client that signs users in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from proxy.config import ConfigError, load_settings
from tests.conftest import ProxyFactory, RunningProxy
from tests.support.fake_provider import FakeProvider

API = "orders-api"
JSON = {"Accept": "application/json"}


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str) -> RunningProxy:
    api = {"accept_bearer": True, "audiences": [API], "untyped_access_tokens": True}
    return await make_proxy(issuer=fake_provider.issuer, upstream=upstream, api=api)


async def status(proxy: RunningProxy, token: str) -> int:
    async with aiohttp.ClientSession() as client:
        headers = {"Authorization": f"Bearer {token}", **JSON}
        async with client.get(proxy.url + "/x", headers=headers, allow_redirects=False) as r:
            return r.status


def untyped(p: FakeProvider, **claims: Any) -> str:
    return p.access_token(drop=("typ",), aud=API, **claims)


Make = Callable[[FakeProvider], str]
CASES: list[tuple[str, Make, int]] = [
    ("untyped access token", lambda p: untyped(p), 200),
    ("Keycloak-typed", lambda p: p.access_token(aud=API), 200),
    (
        "RFC 9068 at+jwt",
        lambda p: p.access_token(
            drop=("typ",), aud=API, header={"alg": "RS256", "kid": "k1", "typ": "at+jwt"}
        ),
        200,
    ),  # fmt: skip
    (
        "no header typ",
        lambda p: p.access_token(drop=("typ",), aud=API, header={"alg": "RS256", "kid": "k1"}),
        200,
    ),  # fmt: skip
    ("our ID token", lambda p: p.id_token("n", "a"), 401),
    ("ID token for the API, nonce", lambda p: p.id_token("n", "a", aud=API), 401),
    ("untyped with nonce", lambda p: untyped(p, nonce="n"), 401),
    ("untyped with at_hash", lambda p: untyped(p, at_hash="x"), 401),
    ("untyped with c_hash", lambda p: untyped(p, c_hash="x"), 401),
    ("untyped with s_hash", lambda p: untyped(p, s_hash="x"), 401),
    ("typ ID", lambda p: p.access_token(aud=API, typ="ID"), 401),
    ("typ Refresh", lambda p: p.access_token(aud=API, typ="Refresh"), 401),
    ("typ Logout", lambda p: p.access_token(aud=API, typ="Logout"), 401),
    ("logout token for the API", lambda p: p.logout_token(aud=API), 401),
    (
        "logout token, header JWT",
        lambda p: p.logout_token(aud=API, header={"alg": "RS256", "kid": "k1", "typ": "JWT"}),
        401,
    ),  # fmt: skip
    ("events claim", lambda p: untyped(p, events={}), 401),
    (
        "header typ dpop+jwt",
        lambda p: p.access_token(
            drop=("typ",), aud=API, header={"alg": "RS256", "kid": "k1", "typ": "dpop+jwt"}
        ),
        401,
    ),  # fmt: skip
    ("audience is our client id", lambda p: p.access_token(drop=("typ",)), 401),
    ("expired", lambda p: untyped(p, exp=1000, iat=900), 401),
    ("other issuer", lambda p: untyped(p, iss="https://evil.example"), 401),
    ("no sub", lambda p: p.access_token(drop=("typ", "sub"), aud=API), 401),
]


@pytest.mark.parametrize(("make", "expected"), [(m, e) for _, m, e in CASES], ids=[c[0] for c in CASES])
async def test_untyped_access_tokens(
    proxy: RunningProxy, fake_provider: FakeProvider, make: Make, expected: int
) -> None:
    assert await status(proxy, make(fake_provider)) == expected


async def test_off_by_default(make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str) -> None:
    api = {"accept_bearer": True, "audiences": [API]}
    proxy = await make_proxy(issuer=fake_provider.issuer, upstream=upstream, api=api)
    assert await status(proxy, untyped(fake_provider)) == 401
    assert await status(proxy, fake_provider.access_token(aud=API)) == 200


BASE = {
    "provider": {"issuer_url": "https://idp.example.com", "client_id": "proxy", "client_secret": "s"},
    "cookie": {"secret": "x" * 32},
}


@pytest.mark.parametrize("audiences", [None, ["proxy"], [API, "proxy"]])
def test_refused_at_start_up_without_an_api_audience(audiences: list[str] | None) -> None:
    api: dict[str, Any] = {"accept_bearer": True, "untyped_access_tokens": True, "audiences": audiences}
    with pytest.raises(ConfigError) as info:
        load_settings(**BASE, api=api)
    assert "api.untyped_access_tokens" in str(info.value)
