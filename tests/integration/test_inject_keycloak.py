"""headers.inject against the real Keycloak: roles by default, a claim, the access token as
Authorization, groups_filter; client copies of each name dropped (underscore spellings too); and
the same values through the real nginx from /oauth/auth's X-Auth-Request-* answer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from proxy.keys import COOKIES, STORE
from tests.conftest import ROOT, Keycloak, ProxyFactory, RunningProxy
from tests.support.browser import navigate, new_browser, submit_login
from tests.support.keycloak_authz import ensure_authz_realm
from tests.support.nginx import nginx

pytestmark = pytest.mark.keycloak

INJECT: list[dict[str, Any]] = [
    {"name": "X-Forwarded-Roles", "source": "roles"},
    {"name": "X-Forwarded-Mail", "claim": "email"},
    {"name": "X-Forwarded-Realm-Roles", "claim": "realm_access.roles", "separator": " "},
    {"name": "Authorization", "source": "access_token", "prefix": "Bearer ", "max_bytes": 16384},
]
SPOOF = {
    "X-Forwarded-Roles": "admin", "X_Forwarded_Roles": "admin", "X-Forwarded-Roles-Truncated": "x",
    "X-Forwarded-Mail": "boss@example.com", "X_Forwarded_Mail": "boss@example.com",
    "Authorization": "Bearer forged", "X-Forwarded-Groups": "admins",
}  # fmt: skip


@pytest.fixture
async def realm(keycloak: Keycloak) -> Keycloak:
    await ensure_authz_realm(keycloak.url, keycloak.realm)
    return keycloak


def names(headers: list[list[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in headers:
        out.setdefault(name.lower(), []).append(value)
    return out


async def test_claims_to_headers_on_the_proxy_path(
    make_proxy: ProxyFactory, realm: Keycloak, upstream: str, redis_url: str
) -> None:
    proxy = await make_proxy(
        issuer=realm.issuer, session={"store": "redis", "redis_url": redis_url},
        upstreams=[{"prefix": "/", "url": upstream},
                   {"prefix": "/fin", "url": upstream, "headers": {"groups_filter": "fin"}}],
        headers={"inject": INJECT, "groups_filter": "nothing-matches-"},
    )  # fmt: skip
    async with new_browser(realm.url) as browser:
        page = await navigate(browser, proxy.url + "/x")
        page = await submit_login(browser, page, "carol", "carol-password")
        assert page.status == 200
        for path, groups in (("/x", None), ("/fin/x", ["finance"])):
            async with browser.get(proxy.url + path, headers=SPOOF) as r:
                seen = names((await r.json())["headers"])
            roles = seen["x-forwarded-roles"][0].split(",")
            assert {"auditor", "proxy:editor"} <= set(roles) and "admin" not in roles
            assert seen["x-forwarded-mail"] == ["carol@example.com"]
            assert "auditor" in seen["x-forwarded-realm-roles"][0].split(" ")
            assert len(seen["authorization"]) == 1 and seen["authorization"][0].startswith("Bearer ey")
            assert "x-forwarded-roles-truncated" not in seen and "x_forwarded_roles" not in seen
            assert "x_forwarded_mail" not in seen
            assert seen.get("x-forwarded-groups") == groups  # filtered: none at /, finance at /fin


@pytest.fixture
async def auth_only(make_proxy: ProxyFactory, realm: Keycloak, redis_url: str) -> RunningProxy:
    return await make_proxy(
        issuer=realm.issuer, server={"trusted_proxies": ["127.0.0.1/32"]},
        session={"store": "redis", "redis_url": redis_url}, auth_request={"front": "nginx"},
    )  # fmt: skip


@pytest.fixture
def site(auth_only: RunningProxy, upstream: str) -> Iterator[str]:
    text = (ROOT / "deploy" / "nginx" / "auth-proxy.conf").read_text()
    text = text.replace("server 127.0.0.1:4180;", f"server {auth_only.url.removeprefix('http://')};")
    text = text.replace("server 127.0.0.1:8080;", f"server {upstream.removeprefix('http://')};")
    with nginx(text) as (port, _):
        yield f"http://127.0.0.1:{port}"


async def test_default_roles_header_through_nginx(site: str, realm: Keycloak) -> None:
    async with new_browser(realm.url) as browser:
        page = await navigate(browser, site + "/x")
        page = await submit_login(browser, page, "carol", "carol-password")
        assert page.status == 200
        async with browser.get(site + "/y", headers=SPOOF) as r:
            seen = names((await r.json())["headers"])
    assert {"auditor", "proxy:editor"} <= set(seen["x-forwarded-roles"][0].split(","))
    assert "admin" not in seen["x-forwarded-roles"][0].split(",")
    assert "x-forwarded-roles-truncated" not in seen
    assert json.dumps(seen).count("admins") == 0


async def test_injected_values_are_refreshed_with_the_tokens(
    make_proxy: ProxyFactory, realm: Keycloak, upstream: str, redis_url: str
) -> None:
    proxy = await make_proxy(
        issuer=realm.issuer, upstream=upstream, session={"store": "redis", "redis_url": redis_url},
        headers={"inject": INJECT},
    )  # fmt: skip
    async with new_browser(realm.url) as browser:
        page = await navigate(browser, proxy.url + "/x")
        page = await submit_login(browser, page, "carol", "carol-password")
        assert page.status == 200
        cookie = next(c.value for c in browser.cookie_jar if c.key == "_auth_proxy")
        ticket = proxy.app[COOKIES].decode(cookie)
        assert ticket is not None
        session = await proxy.app[STORE].load(ticket)
        assert session is not None and session.identity.claim("email") == ("carol@example.com",)
        stale = replace(session.identity, claims=(("email", ("stale@example.com",)),))
        await proxy.app[STORE].save(
            ticket, replace(session, identity=stale, access_expires_at=time.time() - 1)
        )
        async with browser.get(proxy.url + "/x") as r:
            seen = names((await r.json())["headers"])
    assert seen["x-forwarded-mail"] == ["carol@example.com"]  # read again at the refresh
    assert seen["authorization"] != [f"Bearer {session.access_token}"]  # the new token
    renewed = await proxy.app[STORE].load(ticket)
    assert renewed is not None and seen["authorization"] == [f"Bearer {renewed.access_token}"]
