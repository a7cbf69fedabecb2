"""Two fake providers behind one proxy, for the several-providers tests: ``a`` and ``b`` with keys
of their own and, by default, the same ``sub`` and ``sid`` (what a mix-up or a collision needs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from joserfc.jwk import RSAKey

from tests.conftest import ProxyFactory, RunningProxy
from tests.support.fake_provider import FakeProvider

B_KEY = RSAKey.generate_key(2048, parameters={"kid": "kb"})


@dataclass
class Pair:
    a: FakeProvider
    b: FakeProvider


async def start_pair(aiohttp_server: Any) -> Pair:
    pair = Pair(FakeProvider(), FakeProvider(key=B_KEY))
    pair.b.claims["sid"] = pair.a.claims["sid"]  # the same provider session id at both
    for fake in (pair.a, pair.b):
        server = await aiohttp_server(fake.app(), host="127.0.0.1")
        fake.issuer = str(server.make_url("")).rstrip("/")
    return pair


def providers_config(pair: Pair, **extra_a: Any) -> list[dict[str, Any]]:
    common = {"client_id": "proxy", "client_secret": "proxy-secret"}
    return [
        {"id": "a", "display_name": "Provider A", "issuer_url": pair.a.issuer, **common, **extra_a},
        {"id": "b", "display_name": "Provider B", "issuer_url": pair.b.issuer, **common},
    ]


async def two_provider_proxy(
    make_proxy: ProxyFactory, pair: Pair, upstream: str, **overrides: Any
) -> RunningProxy:
    providers = overrides.pop("providers", None) or providers_config(pair)
    return await make_proxy(issuer="unused", upstream=upstream, providers=providers, **overrides)
