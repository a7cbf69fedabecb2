"""Who may pass, against the real Keycloak: realm roles, client roles, groups (the group membership
mapper), emails and email domains, each allowing carol and denying dave, on the proxy path and on
/oauth/auth; global rules and per-upstream replacements; the 403 page's way out; and Keycloak's own
access tokens as bearer tokens (and its other tokens refused).

    carol  realm role auditor, client role proxy:editor, group finance, carol@example.com
    dave   realm role proxy-user, client role other-app:viewer, group support, dave@example.net
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import Keycloak, ProxyFactory, RunningProxy
from tests.support.browser import navigate, new_browser, submit_form, submit_login
from tests.support.keycloak_authz import ensure_authz_realm

pytestmark = pytest.mark.keycloak

JSON = {"Accept": "application/json"}

# prefix → (the upstream's own rule, the same rule as /oauth/auth narrowing)
RULES: dict[str, tuple[dict[str, list[str]], str]] = {
    "/groups": ({"allowed_groups": ["finance"]}, "allowed_groups=finance"),
    "/realm-role": ({"allowed_roles": ["auditor"]}, "allowed_roles=auditor"),
    "/client-role": ({"allowed_roles": ["proxy:editor"]}, "allowed_roles=proxy:editor"),
    "/email": ({"allowed_emails": ["carol@example.com"]}, "allowed_emails=carol@example.com"),
    "/domain": ({"allowed_email_domains": ["example.com"]}, "allowed_email_domains=example.com"),
}

_ready: set[str] = set()


@pytest.fixture
async def realm(keycloak: Keycloak) -> Keycloak:
    """carol, dave and their roles exist (added to a running Keycloak if its realm predates them)."""
    if keycloak.url not in _ready:
        await ensure_authz_realm(keycloak.url, keycloak.realm)
        _ready.add(keycloak.url)
    return keycloak


async def start_proxy(
    make_proxy: ProxyFactory, realm: Keycloak, upstream: str, redis_url: str, **overrides: Any
) -> RunningProxy:
    overrides.setdefault(
        "upstreams",
        [{"prefix": "/", "url": upstream}]
        + [{"prefix": prefix, "url": upstream, **rule} for prefix, (rule, _) in RULES.items()],
    )
    overrides.setdefault("api", {"accept_bearer": True})
    return await make_proxy(
        issuer=realm.issuer, session={"store": "redis", "redis_url": redis_url}, **overrides
    )


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, realm: Keycloak, upstream: str, redis_url: str) -> RunningProxy:
    return await start_proxy(make_proxy, realm, upstream, redis_url)


@pytest.fixture
async def browser(keycloak: Keycloak) -> AsyncIterator[aiohttp.ClientSession]:
    async with new_browser(keycloak.url) as b:
        yield b


async def sign_in(
    browser: aiohttp.ClientSession, proxy: RunningProxy, user: str, path: str = "/whoami"
) -> Any:
    page = await navigate(browser, proxy.url + path)
    assert page.is_keycloak_login, f"expected Keycloak's login form, got {page.status} at {page.url}"
    return await submit_login(browser, page, user, f"{user}-password")


async def status(client: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, dict[str, str]]:
    async with client.get(url, headers=headers, allow_redirects=False) as r:
        await r.read()
        return r.status, dict(r.headers)


async def password_grant(realm: Keycloak, user: str, client: str = "proxy") -> dict[str, str]:
    """Keycloak's tokens for ``user`` from ``client`` (the realm's clients allow the password grant)."""
    form = {"grant_type": "password", "client_id": client, "client_secret": f"{client}-secret",
            "username": user, "password": f"{user}-password", "scope": "openid"}  # fmt: skip
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{realm.issuer}/protocol/openid-connect/token", data=form) as r:
            assert r.status == 200, await r.text()
            tokens: dict[str, str] = await r.json()
            return tokens


# --- each rule, allow and deny, on both paths -------------------------------------------------


@pytest.mark.parametrize("prefix", list(RULES))
@pytest.mark.parametrize(("user", "allowed"), [("carol", True), ("dave", False)])
async def test_each_rule_allows_carol_and_denies_dave(
    proxy: RunningProxy, browser: aiohttp.ClientSession, prefix: str, user: str, allowed: bool
) -> None:
    page = await sign_in(browser, proxy, user)
    assert page.status == 200  # the unrestricted upstream
    code, _ = await status(browser, proxy.url + prefix + "/x", **JSON)
    assert code == (200 if allowed else 403)
    code, headers = await status(browser, proxy.url + "/oauth/auth?" + RULES[prefix][1])
    assert code == (202 if allowed else 403)
    assert (headers.get("X-Auth-Request-User") == user) is allowed


async def test_the_session_knows_groups_and_both_kinds_of_roles(
    proxy: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    page = await sign_in(browser, proxy, "carol")
    seen = dict(json.loads(page.text)["headers"])
    assert seen["X-Forwarded-User"] == "carol" and seen["X-Forwarded-Groups"] == "finance"
    async with browser.get(proxy.url + "/oauth/userinfo") as r:
        me = await r.json()
    # her own realm and client roles, next to Keycloak's defaults (offline_access, account:..., ...)
    assert {"auditor", "proxy:editor"} <= set(me["roles"]) and me["groups"] == ["finance"]
    assert "proxy-user" not in me["roles"]


async def test_global_rules_and_an_upstream_that_replaces_them(
    make_proxy: ProxyFactory, realm: Keycloak, upstream: str, redis_url: str
) -> None:
    proxy = await start_proxy(
        make_proxy, realm, upstream, redis_url,
        authorization={"allowed_roles": ["proxy-user"]},
        upstreams=[{"prefix": "/", "url": upstream},
                   {"prefix": "/finance", "url": upstream,
                    "allowed_groups": ["finance"], "allowed_roles": []}],
    )  # fmt: skip
    expected = {"dave": (200, 202, 403), "carol": (403, 403, 200)}
    for user, (root, auth, finance) in expected.items():
        async with new_browser(realm.url) as browser:
            page = await sign_in(browser, proxy, user, "/finance/x")
            assert page.status == finance
            assert (await status(browser, proxy.url + "/x", **JSON))[0] == root
            assert (await status(browser, proxy.url + "/oauth/auth"))[0] == auth


async def test_denied_user_can_sign_out_and_come_back_as_someone_else(
    proxy: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    page = await sign_in(browser, proxy, "dave", "/groups/report")
    assert page.status == 403 and "dave (dave@example.net)" in page.text
    page = await submit_form(browser, page, "sign-out")  # ends Keycloak's session too
    assert page.is_keycloak_login, f"still signed in at Keycloak? {page.status} {page.url}"
    page = await submit_login(browser, page, "carol", "carol-password")
    assert page.status == 200 and page.url == proxy.url + "/groups/report"
    assert dict(json.loads(page.text)["headers"])["X-Forwarded-User"] == "carol"


# --- Keycloak's tokens as bearer tokens -------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **JSON}


async def test_keycloak_access_tokens_are_bearer_tokens(proxy: RunningProxy, realm: Keycloak) -> None:
    carol = (await password_grant(realm, "carol"))["access_token"]
    dave = (await password_grant(realm, "dave"))["access_token"]
    async with aiohttp.ClientSession() as api:
        async with api.get(proxy.url + "/client-role/x", headers=bearer(carol)) as r:
            assert r.status == 200
            seen = dict((await r.json())["headers"])
        assert seen["X-Forwarded-User"] == "carol" and seen["X-Forwarded-Groups"] == "finance"
        for prefix in RULES:
            assert (await status(api, proxy.url + prefix, **bearer(carol)))[0] == 200, prefix
            assert (await status(api, proxy.url + prefix, **bearer(dave)))[0] == 403, prefix
        code, headers = await status(
            api, proxy.url + "/oauth/auth?allowed_roles=proxy:editor", **bearer(carol)
        )
        assert code == 202 and headers["X-Auth-Request-User"] == "carol"
        assert (await status(api, proxy.url + "/oauth/auth?allowed_roles=proxy:editor", **bearer(dave)))[
            0
        ] == 403


async def test_keycloak_tokens_that_are_not_for_us_are_refused(proxy: RunningProxy, realm: Keycloak) -> None:
    carol = await password_grant(realm, "carol")
    dave_elsewhere = await password_grant(realm, "dave", "other-app")  # aud: none
    refused = {
        "id token": carol["id_token"],  # aud proxy, signed by the realm: only its typ tells it apart
        "refresh token": carol["refresh_token"],
        "access token of another client": dave_elsewhere["access_token"],
        "tampered": carol["access_token"][:-4] + "AAAA",
    }
    async with aiohttp.ClientSession() as api:
        for what, token in refused.items():
            for path in ("/whoami", "/oauth/auth"):
                code, headers = await status(api, proxy.url + path, **bearer(token))
                assert code == 401, (what, path)
                assert headers["WWW-Authenticate"] == 'Bearer realm="auth-proxy", error="invalid_token"'


async def test_authorized_parties_narrow_the_clients(
    make_proxy: ProxyFactory, realm: Keycloak, upstream: str, redis_url: str
) -> None:
    # carol's token from other-app names the proxy in aud (Keycloak's audience resolve: it carries
    # proxy client roles), so it is accepted unless only some clients' tokens are
    elsewhere = (await password_grant(realm, "carol", "other-app"))["access_token"]
    here = (await password_grant(realm, "carol"))["access_token"]
    default = await start_proxy(make_proxy, realm, upstream, redis_url)
    strict = await start_proxy(
        make_proxy, realm, upstream, redis_url, api={"accept_bearer": True, "authorized_parties": ["proxy"]}
    )
    async with aiohttp.ClientSession() as api:
        assert (await status(api, default.url + "/whoami", **bearer(elsewhere)))[0] == 200
        assert (await status(api, strict.url + "/whoami", **bearer(elsewhere)))[0] == 401
        assert (await status(api, strict.url + "/whoami", **bearer(here)))[0] == 200
