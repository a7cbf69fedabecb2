"""authorization.rules against the real Keycloak: carol (realm role auditor, group finance,
carol@example.com) and dave (proxy-user, support), on the proxy path and through the real nginx
with deploy/nginx/auth-proxy.conf (auth_request on the original method and URI)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import ROOT, Keycloak, ProxyFactory, RunningProxy
from tests.integration.test_authz_keycloak import sign_in
from tests.support.browser import navigate, new_browser, submit_login
from tests.support.keycloak_authz import ensure_authz_realm
from tests.support.nginx import nginx

pytestmark = pytest.mark.keycloak
JSON = {"Accept": "application/json"}


@pytest.fixture
async def realm(keycloak: Keycloak) -> Keycloak:
    """carol, dave and their roles exist (added to a running Keycloak if its realm predates them)."""
    await ensure_authz_realm(keycloak.url, keycloak.realm)
    return keycloak


RULES: list[dict[str, Any]] = [
    {"path": "/admin", "methods": ["DELETE"], "deny": True, "name": "no deletes"},
    {"path": "/admin", "allowed_roles": ["auditor"]},
    {"path": "^/api/v[0-9]+/mail/", "claims": {"email": ["carol@example.com"]}},
    {"path": "/reports/", "methods": ["GET"], "require": "any",
     "allowed_groups": ["finance"], "claims": {"realm_access.roles": ["nobody-has-this"]}},
    {"path": "/reports/", "deny": True},
]  # fmt: skip

# (method, path, extra headers) → status for carol, for dave
CASES: list[tuple[str, str, dict[str, str], int, int]] = [
    ("GET", "/admin/users", {}, 200, 403),
    ("GET", "/%61dmin/users", {}, 200, 403),
    ("GET", "/admin;x=1/users", {}, 200, 403),
    ("DELETE", "/admin/users", {}, 403, 403),
    ("POST", "/admin/users", {"X-HTTP-Method-Override": "DELETE"}, 403, 403),
    ("POST", "/admin/users?_method=DELETE", {}, 403, 403),
    ("GET", "/api/v1/mail/inbox", {}, 200, 403),
    ("GET", "/reports/q1", {}, 200, 403),
    ("HEAD", "/reports/q1", {}, 200, 403),
    ("POST", "/reports/q1", {}, 403, 403),
    ("GET", "/other", {}, 200, 200),
]


@pytest.mark.parametrize("user", ["carol", "dave"])
async def test_rules_on_the_proxy_path(
    make_proxy: ProxyFactory, realm: Keycloak, upstream: str, redis_url: str,
    user: str, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    proxy = await make_proxy(
        issuer=realm.issuer, upstream=upstream, session={"store": "redis", "redis_url": redis_url},
        authorization={"rules": RULES},
    )  # fmt: skip
    async with new_browser(realm.url) as browser:
        page = await sign_in(browser, proxy, user, "/other")
        assert page.status == 200
        caplog.set_level(logging.INFO, logger="proxy")
        for method, path, headers, carol, dave in CASES:
            async with browser.request(method, proxy.url + path, headers={**JSON, **headers},
                                       allow_redirects=False) as r:  # fmt: skip
                await r.read()
                assert r.status == (carol if user == "carol" else dave), (method, path, headers)
    denials = [r for r in caplog.records if getattr(r, "rule", None) == "authorization.rules"]
    assert denials and {getattr(r, "rule_index", None) for r in denials} <= {0, 1, 2, 3, 4}
    assert any(r.getMessage() == "denied by authorization.rules[0]: deny" for r in denials)


@pytest.fixture
async def auth_only(make_proxy: ProxyFactory, realm: Keycloak, redis_url: str) -> RunningProxy:
    return await make_proxy(
        issuer=realm.issuer, server={"trusted_proxies": ["127.0.0.1/32"]},
        session={"store": "redis", "redis_url": redis_url}, auth_request={"front": "nginx"},
        authorization={"rules": RULES},
    )  # fmt: skip


@pytest.fixture
def site(auth_only: RunningProxy, upstream: str) -> Iterator[str]:
    text = (ROOT / "deploy" / "nginx" / "auth-proxy.conf").read_text()
    text = text.replace("server 127.0.0.1:4180;", f"server {auth_only.url.removeprefix('http://')};")
    text = text.replace("server 127.0.0.1:8080;", f"server {upstream.removeprefix('http://')};")
    with nginx(text) as (port, _):
        yield f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("user", ["carol", "dave"])
async def test_rules_through_nginx_auth_request(site: str, realm: Keycloak, user: str) -> None:
    async with new_browser(realm.url) as browser:
        page = await navigate(browser, site + "/other")
        page = await submit_login(browser, page, user, f"{user}-password")
        assert page.status == 200 and json.loads(page.text)["path_qs"] == "/other"
        for method, path, headers, carol, dave in CASES:
            # spoofed copies of the front's headers are replaced by nginx
            spoof = {"X-Original-Method": "GET", "X-Original-URI": "/other", **headers}
            async with browser.request(method, site + path, headers=spoof, allow_redirects=False) as r:
                await r.read()
                assert r.status == (carol if user == "carol" else dave), (method, path, headers)


async def test_without_a_front_rules_fail_closed_at_oauth_auth(
    make_proxy: ProxyFactory,
    realm: Keycloak,
    redis_url: str,
) -> None:
    proxy = await make_proxy(
        issuer=realm.issuer, session={"store": "redis", "redis_url": redis_url},
        authorization={"rules": [{"path": "/admin", "allowed_roles": ["auditor"]}]},
    )  # fmt: skip
    async with new_browser(realm.url) as browser:
        page = await navigate(browser, proxy.url + "/oauth/start?rd=/oauth/userinfo")
        page = await submit_login(browser, page, "carol", "carol-password")
        headers = {"X-Original-Method": "GET", "X-Original-URI": "/x"}  # front none: not read
        async with browser.get(proxy.url + "/oauth/auth", headers=headers) as r:
            assert r.status == 403
    async with aiohttp.ClientSession() as anon, anon.get(proxy.url + "/oauth/auth") as r:
        assert r.status == 401
