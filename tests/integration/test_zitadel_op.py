"""The core flows against a second, non-Keycloak provider: zitadel/oidc's example OP (a Go library's
OpenID provider), with the real Redis and the real nginx. What differs from Keycloak, and how the
proxy adapts through discovery and configuration (never by provider name), is in
docs/providers.md (zitadel/oidc's example OP): profile claims only at the UserInfo endpoint,
encrypted (opaque) access tokens, no ``sid``, refresh tokens only with ``offline_access``, no
registered post-logout redirect URI."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from proxy.keys import COOKIES, PROVIDERS, STORE
from proxy.sessions.base import Session
from tests.conftest import ROOT, ProxyFactory, RunningProxy
from tests.support.browser import Page, navigate, new_browser
from tests.support.nginx import nginx
from tests.support.zitadel_op import CLIENT_ID, CLIENT_SECRET, ZitadelOP, is_login_form, submit_login

SITE = ROOT / "deploy" / "nginx" / "auth-proxy.conf"


async def start(make_proxy: ProxyFactory, op: ZitadelOP, redis_url: str, **overrides: Any) -> RunningProxy:
    config = op.provider_config()
    for key, value in overrides.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value  # type: ignore[dict-item]
    config.setdefault("session", {"store": "redis", "redis_url": redis_url})
    return await make_proxy(port=op.callback_port(), **config)


@pytest.fixture
async def proxy(
    make_proxy: ProxyFactory, zitadel_op: ZitadelOP, upstream: str, redis_url: str
) -> RunningProxy:
    return await start(make_proxy, zitadel_op, redis_url, upstream=upstream)


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    async with new_browser() as b:
        yield b


async def sign_in(browser: aiohttp.ClientSession, site: str, user: str, path: str = "/hello") -> Page:
    page = await navigate(browser, site + path)
    assert is_login_form(page), f"expected the OP's login form, got {page.status} at {page.url}"
    before = page.history
    page = await submit_login(browser, page, user, f"{user}-password")
    assert page.status == 200 and page.url == site + path, (page.status, page.url, page.text[:300])
    return replace(page, history=before + page.history)


async def stored(proxy: RunningProxy, browser: aiohttp.ClientSession) -> tuple[Any, Session]:
    ticket = proxy.app[COOKIES].decode(next(c.value for c in browser.cookie_jar if c.key == "_auth_proxy"))
    assert ticket is not None
    session = await proxy.app[STORE].load(ticket, cached=False)
    assert session is not None
    return ticket, session


async def op_refresh(op: ZitadelOP, refresh_token: str) -> tuple[int, dict[str, Any]]:
    """Use a refresh token at the OP directly (Basic auth, as the proxy does)."""
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    async with aiohttp.ClientSession() as http:
        meta = await (await http.get(op.issuer + ".well-known/openid-configuration")).json()
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        async with http.post(
            meta["token_endpoint"], data=form, headers={"Authorization": f"Basic {basic}"}
        ) as r:
            return r.status, await r.json(content_type=None)


def forwarded(page: Page) -> dict[str, str]:
    return dict(json.loads(page.text)["headers"])


async def test_sign_in_with_pkce_and_nonce_reaches_the_app_with_userinfo_identity(
    proxy: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    page = await sign_in(browser, proxy.url, "alice", "/hello?x=1")
    authorize = next(url for _, url in page.history if "/auth?" in url)
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"][0] and query["code_challenge"][0]
    assert "offline_access" in query["scope"][0].split()
    # The ID token carries only sub: user, email and username come from the UserInfo endpoint.
    headers = forwarded(page)
    assert headers["X-Forwarded-User"] == "alice"
    assert headers["X-Forwarded-Email"] == "alice@example.test"
    assert headers["X-Forwarded-Preferred-Username"] == "alice"
    assert "X-Forwarded-Groups" not in headers or headers["X-Forwarded-Groups"] == ""
    _, session = await stored(proxy, browser)
    assert session.sid is None and session.refresh_token
    assert session.access_token.count(".") == 4  # a JWE: opaque to us
    async with browser.get(proxy.url + "/oauth/userinfo") as r:
        info = await r.json()
    assert info["email"] == "alice@example.test" and info["sub"] == "alice-id"


async def test_without_userinfo_only_the_subject_is_known(
    make_proxy: ProxyFactory,
    zitadel_op: ZitadelOP,
    upstream: str,
    redis_url: str,
    browser: aiohttp.ClientSession,
) -> None:
    proxy = await start(make_proxy, zitadel_op, redis_url, upstream=upstream, provider={"userinfo": "never"})
    headers = forwarded(await sign_in(browser, proxy.url, "alice"))
    assert headers["X-Forwarded-User"] == "alice-id" and "X-Forwarded-Email" not in headers


async def test_unverified_email_passes_email_rules_only_without_require_verified_email(
    make_proxy: ProxyFactory,
    zitadel_op: ZitadelOP,
    upstream: str,
    redis_url: str,
    browser: aiohttp.ClientSession,
) -> None:
    """The OP leaves ``email_verified`` out when it is false (Go ``omitempty``): only
    ``authorization.require_verified_email`` tells that apart from a provider that never says."""
    rules = {"allowed_email_domains": ["example.test"]}
    lenient = await start(make_proxy, zitadel_op, redis_url, upstream=upstream, authorization=rules)
    page = await navigate(browser, lenient.url + "/hello")
    page = await submit_login(browser, page, "bob", "bob-password")  # bob's email is not verified
    assert page.status == 200  # nothing said: the address counts
    browser.cookie_jar.clear()
    strict_rules = {**rules, "require_verified_email": True}
    strict = await start(make_proxy, zitadel_op, redis_url, upstream=upstream, authorization=strict_rules)
    page = await navigate(browser, strict.url + "/hello")
    assert (await submit_login(browser, page, "bob", "bob-password")).status == 403
    browser.cookie_jar.clear()
    await sign_in(browser, strict.url, "alice")  # email_verified: true


async def test_refresh_rotates_the_tokens_and_keeps_the_identity(
    proxy: RunningProxy, browser: aiohttp.ClientSession, zitadel_op: ZitadelOP
) -> None:
    await sign_in(browser, proxy.url, "alice")
    ticket, before = await stored(proxy, browser)
    await proxy.app[STORE].save(ticket, replace(before, access_expires_at=time.time() - 1))
    async with browser.get(proxy.url + "/again") as r:
        assert r.status == 200
        headers = dict((await r.json())["headers"])
    assert headers["X-Forwarded-Email"] == "alice@example.test"  # userinfo read again with the new token
    _, after = await stored(proxy, browser)
    assert after.refresh_token and after.refresh_token != before.refresh_token
    assert after.access_token != before.access_token and after.id_token != before.id_token
    assert (after.access_expires_at or 0) > time.time() + 60
    assert before.refresh_token is not None
    status, body = await op_refresh(zitadel_op, before.refresh_token)  # rotated: the old one is spent
    assert status == 400 and body["error"] == "invalid_grant"


async def test_without_offline_access_there_is_no_refresh_token_and_the_session_lives_on(
    make_proxy: ProxyFactory,
    zitadel_op: ZitadelOP,
    upstream: str,
    redis_url: str,
    browser: aiohttp.ClientSession,
) -> None:
    """This OP issues a refresh token only for ``offline_access`` (Keycloak always does): the session
    then lasts its ``session.lifetime`` with no refresh, and the proxy never asks for one."""
    scopes = ["openid", "email", "profile"]
    proxy = await start(make_proxy, zitadel_op, redis_url, upstream=upstream, provider={"scopes": scopes})
    await sign_in(browser, proxy.url, "alice")
    ticket, session = await stored(proxy, browser)
    assert session.refresh_token is None
    await proxy.app[STORE].save(ticket, replace(session, access_expires_at=time.time() - 600))
    async with browser.get(proxy.url + "/later") as r:
        assert r.status == 200 and dict((await r.json())["headers"])["X-Forwarded-User"] == "alice"
    _, after = await stored(proxy, browser)
    assert after.access_token == session.access_token  # no refresh was tried


async def test_sign_out_goes_through_the_end_session_endpoint_and_ends_the_op_session(
    proxy: RunningProxy, browser: aiohttp.ClientSession, zitadel_op: ZitadelOP, redis_url: str
) -> None:
    await sign_in(browser, proxy.url, "alice")
    _, session = await stored(proxy, browser)
    page = await navigate(browser, proxy.url + "/oauth/sign_out?rd=/hello")
    end_session = next(url for _, url in page.history if "/end_session?" in url)
    query = parse_qs(urlsplit(end_session).query)
    assert query["id_token_hint"] == [session.id_token] and query["client_id"] == [CLIENT_ID]
    assert "post_logout_redirect_uri" not in query  # logout.send_post_logout_redirect_uri: false
    assert page.status == 200 and page.url == zitadel_op.issuer + "logged-out", (page.status, page.text[:300])
    assert session.refresh_token is not None
    status, body = await op_refresh(zitadel_op, session.refresh_token)  # the OP ended its session
    assert status == 400 and body["error"] == "invalid_grant"
    page = await navigate(browser, proxy.url + "/hello")
    assert is_login_form(page)


async def test_the_op_refuses_a_post_logout_redirect_uri_it_has_not_registered(
    make_proxy: ProxyFactory,
    zitadel_op: ZitadelOP,
    upstream: str,
    redis_url: str,
    browser: aiohttp.ClientSession,
) -> None:
    """Why ``logout.send_post_logout_redirect_uri: false`` exists: with it on, this OP says 400 and
    keeps its session (the local one has ended all the same)."""
    proxy = await start(
        make_proxy, zitadel_op, redis_url, upstream=upstream, logout={"send_post_logout_redirect_uri": True}
    )
    await sign_in(browser, proxy.url, "alice")
    page = await navigate(browser, proxy.url + "/oauth/sign_out")
    assert page.status == 400 and "post_logout_redirect_uri invalid" in page.text
    assert is_login_form(await navigate(browser, proxy.url + "/hello"))


async def test_backend_sign_out_and_revocation(
    make_proxy: ProxyFactory,
    zitadel_op: ZitadelOP,
    upstream: str,
    redis_url: str,
    browser: aiohttp.ClientSession,
) -> None:
    proxy = await start(
        make_proxy,
        zitadel_op,
        redis_url,
        upstream=upstream,
        logout={"mode": "backend", "revoke_tokens": True},
    )
    await sign_in(browser, proxy.url, "alice")
    _, session = await stored(proxy, browser)
    page = await navigate(browser, proxy.url + "/oauth/sign_out?rd=/oauth/signed_out")
    assert page.url == proxy.url + "/oauth/signed_out", page.text[:300]
    assert session.refresh_token is not None
    status, body = await op_refresh(zitadel_op, session.refresh_token)
    assert status == 400 and body["error"] == "invalid_grant"


async def test_its_access_tokens_are_opaque_so_bearer_access_is_refused(
    make_proxy: ProxyFactory,
    zitadel_op: ZitadelOP,
    upstream: str,
    redis_url: str,
    browser: aiohttp.ClientSession,
) -> None:
    """The example's clients get encrypted access tokens (JWE): not a JWT the proxy could verify with
    the JWKS, so ``api.accept_bearer`` can't accept them (no introspection): 401, never a pass."""
    proxy = await start(make_proxy, zitadel_op, redis_url, upstream=upstream, api={"accept_bearer": True})
    await sign_in(browser, proxy.url, "alice")
    _, session = await stored(proxy, browser)
    headers = {"Authorization": f"Bearer {session.access_token}", "Accept": "application/json"}
    async with aiohttp.ClientSession() as api, api.get(proxy.url + "/hello", headers=headers) as r:
        assert r.status == 401
        assert "invalid_token" in r.headers.get("WWW-Authenticate", "")
    assert proxy.app[PROVIDERS].default.discovery.metadata.userinfo_endpoint


@pytest.fixture
async def auth_only(make_proxy: ProxyFactory, zitadel_op: ZitadelOP, redis_url: str) -> RunningProxy:
    return await make_proxy(
        **zitadel_op.provider_config(),
        server={"trusted_proxies": ["127.0.0.1/32"]},
        session={"store": "redis", "redis_url": redis_url},
        auth_request={"front": "nginx"},
    )


@pytest.fixture
def site(auth_only: RunningProxy, upstream: str, zitadel_op: ZitadelOP) -> Iterator[str]:
    text = SITE.read_text()
    text = text.replace("server 127.0.0.1:4180;", f"server {auth_only.url.removeprefix('http://')};")
    text = text.replace("server 127.0.0.1:8080;", f"server {upstream.removeprefix('http://')};")
    with nginx(text, port=zitadel_op.callback_port()) as (port, _):
        yield f"http://127.0.0.1:{port}"


async def test_auth_request_through_nginx(
    site: str, browser: aiohttp.ClientSession, zitadel_op: ZitadelOP
) -> None:
    async with aiohttp.ClientSession() as anon, anon.get(site + "/reports", allow_redirects=False) as r:
        assert r.status == 302
    page = await sign_in(browser, site, "alice", "/reports?year=2026")
    headers = forwarded(page)
    assert headers["X-Forwarded-User"] == "alice" and headers["X-Forwarded-Email"] == "alice@example.test"
    spoof = {"X-Forwarded-User": "admin", "X-Auth-Request-User": "admin"}
    async with browser.get(site + "/x", headers=spoof) as r:
        assert dict((await r.json())["headers"])["X-Forwarded-User"] == "alice"
    page = await navigate(browser, site + "/oauth/sign_out?rd=/reports")
    assert page.url == zitadel_op.issuer + "logged-out"
    assert is_login_form(await navigate(browser, site + "/reports"))
