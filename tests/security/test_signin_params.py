"""Sign-in parameters as an attacker would send them to ``/oauth/start``: values outside the
allow-list, smuggled line breaks and NULs, repeats, overlong values, and the parameters only the
proxy may set. Each is refused with 400 (a page and a ``param_refused`` log line) or, for names not
on the allow-list, never reaches the provider."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import ProxyFactory, RunningProxy
from tests.handlers.test_providers import authorize_query
from tests.support.two_providers import Pair, providers_config, start_pair, two_provider_proxy


@pytest.fixture
async def pair(aiohttp_server: Any) -> Pair:
    return await start_pair(aiohttp_server)


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, pair: Pair, upstream: str) -> RunningProxy:
    providers = providers_config(
        pair,
        pass_through_params={
            "login_hint": {"pattern": r"[a-z0-9._-]{1,64}@example\.test"},
            "prompt": {"values": ["login"]},
        },
    )
    upstreams = [{"prefix": "/", "url": upstream}, {"prefix": "/gold", "url": upstream, "acr": ["gold"]}]
    return await two_provider_proxy(make_proxy, pair, upstream, providers=providers, upstreams=upstreams)


@pytest.mark.parametrize(
    "query",
    [
        "login_hint=eve@evil.test",
        "login_hint=" + quote("ann@example.test\r\nSet-Cookie: x=1"),
        "login_hint=" + quote("ann@example.test\x00"),
        "login_hint=" + quote("ann@example.test&prompt=none"),
        "login_hint=" + quote("ANN@EXAMPLE.TEST"),
        "prompt=" + quote("login "),
        "prompt=" + quote("login\u200b"),
        "login_hint=" + quote("ann@example.test\nx"),
        "login_hint=" + "a" * 300 + "%40example.test",
        "prompt=none",
        "prompt=login&prompt=login",
        "acr_values=platinum",  # not a step-up any upstream asks for
        "acr_values=gold&acr_values=gold",
        "acr_values=" + quote("gold silver"),
    ],
)
async def test_disallowed_param_values_are_400(proxy: RunningProxy, query: str) -> None:
    status, _ = await authorize_query(proxy, "provider=a&" + query)
    assert status == 400


@pytest.mark.parametrize("name", ["redirect_uri", "client_id", "state", "nonce", "scope", "response_type",
                                  "code_challenge", "response_mode", "request_uri"])  # fmt: skip
async def test_reserved_params_in_the_query_are_never_passed(proxy: RunningProxy, name: str) -> None:
    status, q = await authorize_query(proxy, f"provider=a&{name}=https://evil.test/")
    assert status == 302
    assert "https://evil.test/" not in q.get(name, [])
