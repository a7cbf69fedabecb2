"""Attack table for headers.inject: a client's copies of injected names in every spelling are
dropped (also when no value is injected), and claim values built to break out of their header
(CR/LF, NUL, the separator) never reach the upstream."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict
from yarl import URL

from proxy.config import load_settings
from proxy.forward_headers import upstream_request_headers
from proxy.identity import Identity
from proxy.inject import Injections
from proxy.routing import Upstream
from proxy.trusted_proxies import Trust
from tests.conftest import ProxyFactory
from tests.support.fake_provider import FakeProvider
from tests.support.login import signed_in_browser

BASE: dict[str, Any] = {
    "provider": {"issuer_url": "https://idp.example.com/realms/main", "client_id": "proxy",
                 "client_secret": "client-s3cret"},
    "cookie": {"secret": "c" * 32},
    "headers": {"inject": [{"name": "X-Forwarded-Roles", "source": "roles"},
                           {"name": "X-Tenant", "claim": "tenant"},
                           {"name": "Authorization", "source": "access_token", "prefix": "Bearer "}]},
}  # fmt: skip
INJ = Injections.of(load_settings(**BASE))
UP = Upstream("/", URL("http://app:8080"), 30.0, True)

SPELLINGS = [
    "X-Forwarded-Roles", "x-forwarded-roles", "X_Forwarded_Roles", "X-Forwarded_Roles", "x_forwarded_roles",
    "X-Forwarded-Roles-Truncated", "X_Forwarded_Roles_Truncated", "X-Tenant", "X_Tenant", "x-tenant",
    "X-Tenant-Truncated", "Authorization", "authorization",
]  # fmt: skip


@pytest.mark.parametrize("name", SPELLINGS)
@pytest.mark.parametrize("signed_in", [True, False])
def test_client_copies_never_reach_the_upstream(name: str, signed_in: bool) -> None:
    request = make_mocked_request("GET", "/x", headers=CIMultiDict([(name, "forged")]))
    identity = Identity(sub="s") if signed_in else None  # no roles, no tenant: nothing injected
    peer = Trust(()).resolve(request.remote, request.headers)
    out = upstream_request_headers(
        request, UP, identity, drop_cookies=frozenset(), client=peer, scheme="http", host="h",
        strip=INJ.strip,
    )  # fmt: skip
    assert "forged" not in out.values()


@pytest.mark.parametrize(
    "evil",
    ["acme\r\nX-Forwarded-User: root", "acme\nX-Forwarded-User: root", "acme\r", "acme\x00", "acme,root",
     "\x1b[31m", "acme\x7f", "\u2028"],
)  # fmt: skip
def test_claim_values_that_break_out_are_left_out(evil: str) -> None:
    who = Identity(sub="s", roles=("viewer", evil), claims=(("tenant", (evil,)),))
    for auth in (False, True):
        out = INJ.everywhere.headers(who, "tok\r\nX-A: b", None, auth=auth)
        for value in out.values():
            assert "\r" not in value and "\n" not in value and "\x00" not in value and "root" not in value
        assert list(out.values())[0] == "viewer" or evil == "\u2028"


# --- end to end: claims built to break out, through the real proxy -----------------------------


async def test_crlf_in_claims_never_reaches_the_upstream(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    fake_provider.claims["groups"] = ["staff", "evil\r\nX-Forwarded-User: root", "a,admins"]
    fake_provider.claims["tenant"] = "acme\r\nX-Injected: 1"
    fake_provider.claims["unit"] = ["u1", "u2\x00"]
    proxy = await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream,
        headers={"inject": [{"name": "X-Forwarded-Roles", "source": "roles"},
                            {"name": "X-Groups", "source": "groups"},
                            {"name": "X-Tenant", "claim": "tenant"},
                            {"name": "X-Unit", "claim": "unit"}]},
    )  # fmt: skip
    browser = await signed_in_browser(proxy.url)
    async with browser:
        async with browser.get(proxy.url + "/x", headers={"X_Tenant": "forged", "X-Unit": "forged"}) as r:
            seen = {k.lower(): v for k, v in (await r.json())["headers"]}
    assert seen["x-groups"] == "staff"
    assert "x-tenant" not in seen and "x_tenant" not in seen and "x-injected" not in seen
    assert seen["x-unit"] == "u1"
    assert seen["x-forwarded-user"] != "root"
