"""Who may pass, against the fake provider: rules per upstream and global, the 403 page, public
routes (and the spellings that must not reach them), and bearer tokens, on the proxy path and on
/oauth/auth."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from yarl import URL

from proxy.keys import COOKIES, STORE
from tests.conftest import ProxyFactory, RunningProxy
from tests.sessions.test_refresh import expire_access_token
from tests.support.browser import navigate, submit_form
from tests.support.fake_provider import FakeProvider
from tests.support.login import session_cookie, signed_in_browser
from tests.support.servers import free_port

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}


@pytest.fixture
def provider(fake_provider: FakeProvider) -> FakeProvider:
    # user1: groups staff, dev; roles (from the access token, as Keycloak sends them): proxy-user,
    # proxy:editor, other-app:viewer; email user1@example.test
    fake_provider.access_token_jwt = True
    return fake_provider


def upstreams(url: str) -> list[dict[str, Any]]:
    return [
        {"prefix": "/", "url": url},
        {"prefix": "/admin", "url": url, "allowed_groups": ["admins"]},
        {"prefix": "/editors", "url": url, "allowed_roles": ["proxy:editor"]},
        {"prefix": "/auditors", "url": url, "allowed_roles": ["auditor"]},
        {
            "prefix": "/staff",
            "url": url,
            "allowed_groups": ["staff"],
            "allowed_emails": ["user1@example.test"],
        },
        {"prefix": "/org", "url": url, "allowed_email_domains": ["example.org"]},
        {"prefix": "/open", "url": url, "allowed_email_domains": []},
    ]


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, provider: FakeProvider, upstream: str) -> RunningProxy:
    return await make_proxy(
        issuer=provider.issuer,
        upstreams=upstreams(upstream),
        authorization={"skip_auth_routes": ["GET=^/health$", "^/static/"], "skip_auth_preflight": True},
        api={"accept_bearer": True},
        headers={"pass_access_token": True},
        auth_request={"front": "nginx"},
    )


@pytest.fixture
async def browser(proxy: RunningProxy) -> AsyncIterator[aiohttp.ClientSession]:
    async with await signed_in_browser(proxy.url) as b:
        yield b


async def get(client: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, Any, dict[str, str]]:
    # encoded=True: send the path as written (yarl would resolve "%2e%2e" and "..")
    async with client.get(URL(url, encoded=True), headers=headers, allow_redirects=False) as r:
        text = await r.text()
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        return r.status, body, dict(r.headers)


def upstream_saw(body: Any) -> dict[str, str]:
    assert isinstance(body, dict) and "headers" in body, body
    return dict(body["headers"])


# --- rules on the proxy path ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/page", 200),
        ("/editors/x", 200),  # client role proxy:editor, from the access token
        ("/staff/x", 200),
        ("/open/x", 200),
        ("/admin/x", 403),
        ("/auditors/x", 403),
        ("/org/x", 403),
    ],
)
async def test_each_upstream_applies_its_rules(
    proxy: RunningProxy, browser: aiohttp.ClientSession, path: str, status: int
) -> None:
    code, body, _ = await get(browser, proxy.url + path, **JSON)
    assert code == status
    if status == 200:
        assert upstream_saw(body)["X-Forwarded-User"] == "user1"
    else:
        assert body["error"] == "forbidden" and "headers" not in body  # the upstream never saw it


async def test_the_session_holds_the_roles(proxy: RunningProxy, browser: aiohttp.ClientSession) -> None:
    _, body, _ = await get(browser, proxy.url + "/oauth/userinfo")
    assert body["roles"] == ["proxy-user", "proxy:editor", "other-app:viewer"]
    assert body["groups"] == ["staff", "dev"]


async def test_denied_page_says_who_and_offers_sign_out(
    proxy: RunningProxy, browser: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="proxy")
    code, text, headers = await get(browser, proxy.url + "/admin/x?y=1", **HTML)
    assert code == 403 and headers["Content-Type"].startswith("text/html")
    assert "Access denied" in text and "user1 (user1@example.test)" in text
    assert 'id="sign-out" method="post" action="/oauth/sign_out?rd=%2Fadmin%2Fx%3Fy%3D1"' in text
    denied = [r for r in caplog.records if getattr(r, "event", None) == "denied"]
    assert len(denied) == 1
    logged = vars(denied[0])
    assert (logged["rule"], logged["user"], logged["path"]) == ("allowed_groups", "user1", "/admin/x")

    code, body, _ = await get(browser, proxy.url + "/admin/x", **JSON)
    assert code == 403
    assert body["user"] == "user1" and body["email"] == "user1@example.test"
    assert body["sign_out"] == "/oauth/sign_out?rd=%2Fadmin%2Fx"


async def test_the_sign_out_form_signs_out(proxy: RunningProxy, browser: aiohttp.ClientSession) -> None:
    ticket = proxy.app[COOKIES].decode(session_cookie(browser))
    assert ticket is not None
    page = await navigate(browser, proxy.url + "/admin/x")
    assert page.status == 403
    await submit_form(browser, page, "sign-out")
    assert not any(c.key == "_auth_proxy" and c.value for c in browser.cookie_jar)
    assert await proxy.app[STORE].load(ticket) is None


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/%61dmin/x", 403),
        # 400: some servers read these as /admin/x, others as a path of "/" (tests/security/test_paths.py)
        ("/page/../admin/x", 400),
        ("/page/%2e%2e/admin/x", 400),
        ("/page/..%2fadmin/x", 400),
        ("//admin/x", 400),
        ("/./admin/x", 400),
        ("/open/../admin/x", 400),
    ],
)
async def test_spellings_of_a_path_get_its_rules(
    proxy: RunningProxy, browser: aiohttp.ClientSession, path: str, status: int
) -> None:
    assert (await get(browser, proxy.url + path, **JSON))[0] == status, path


async def test_global_rules_apply_where_no_upstream_replaces_them(
    make_proxy: ProxyFactory, provider: FakeProvider, upstream: str
) -> None:
    proxy = await make_proxy(
        issuer=provider.issuer,
        upstreams=upstreams(upstream),
        authorization={"allowed_email_domains": ["example.org"], "allowed_roles": ["proxy-user"]},
    )
    async with await signed_in_browser(proxy.url) as browser:
        assert (await get(browser, proxy.url + "/page", **JSON))[0] == 403
        assert (await get(browser, proxy.url + "/editors/x", **JSON))[0] == 403  # still example.org
        assert (await get(browser, proxy.url + "/open/x", **JSON))[0] == 200  # [] lifts the domain rule


async def test_roles_follow_a_refresh(
    make_proxy: ProxyFactory, provider: FakeProvider, upstream: str, redis_url: str
) -> None:
    proxy = await make_proxy(
        issuer=provider.issuer,
        upstreams=upstreams(upstream),
        session={"store": "redis", "redis_url": redis_url},
    )
    async with await signed_in_browser(proxy.url) as browser:
        assert (await get(browser, proxy.url + "/editors/x", **JSON))[0] == 200
        assert (await get(browser, proxy.url + "/auditors/x", **JSON))[0] == 403
        provider.access_claims = {"realm_access": {"roles": ["auditor"]}}  # changed at the provider
        await expire_access_token(proxy, browser)
        assert (await get(browser, proxy.url + "/auditors/x", **JSON))[0] == 200
        assert (await get(browser, proxy.url + "/editors/x", **JSON))[0] == 403
        assert provider.refreshes == 1


async def test_sessions_stored_before_roles_read_as_no_roles(
    proxy: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    ticket = proxy.app[COOKIES].decode(session_cookie(browser))
    assert ticket is not None
    session = await proxy.app[STORE].load(ticket)
    assert session is not None
    old = json.loads(session.to_bytes())
    del old["identity"]["roles"], old["identity"]["email_verified"]
    await proxy.app[STORE].save(ticket, type(session).from_bytes(json.dumps(old).encode()))
    assert (await get(browser, proxy.url + "/editors/x", **JSON))[0] == 403
    assert (await get(browser, proxy.url + "/staff/x", **JSON))[0] == 200


# --- public routes ----------------------------------------------------------------------------


async def test_public_routes_need_no_session_and_carry_no_identity(proxy: RunningProxy) -> None:
    spoof = {"X-Forwarded-User": "admin", "X-Auth-Request-User": "admin", "X_Forwarded_Email": "a@b.c"}
    async with aiohttp.ClientSession() as anon:
        for path in ("/health", "/static/app.js", "/h%65alth"):
            code, body, _ = await get(anon, proxy.url + path, **JSON, **spoof)
            assert code == 200, path
            seen = {k.lower() for k in upstream_saw(body)}
            assert not seen & {"x-forwarded-user", "x-auth-request-user", "x_forwarded_email"}
        async with anon.post(proxy.url + "/static/upload", headers=JSON) as r:
            assert r.status == 200  # ^/static/ names no method: any will do
        async with anon.post(proxy.url + "/health", headers=JSON) as r:
            assert r.status == 401  # GET only


async def test_a_signed_in_user_on_a_public_route_is_not_named(
    proxy: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    _, body, _ = await get(browser, proxy.url + "/health", **JSON)
    assert "X-Forwarded-User" not in upstream_saw(body)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/static/../admin/x", 400),  # 400: /admin/x to some servers, a path of "/" to others
        ("/static/%2e%2e/admin/x", 400),
        ("/static/..%2fadmin/x", 400),
        ("/static/..%2Fpage", 401),
        ("/static/..\\admin", 400),
        ("/static/%252e%252e/admin", 400),
        ("//static/x", 401),
        ("/static%2fx", 401),
        ("/health/", 401),
        ("/healthz", 401),
        ("/%2573tatic/x", 401),
    ],
)
async def test_spellings_that_must_not_reach_a_public_route(
    proxy: RunningProxy, path: str, status: int
) -> None:
    async with aiohttp.ClientSession() as anon:
        assert (await get(anon, proxy.url + path, **JSON))[0] == status, path


async def test_cors_preflight(proxy: RunningProxy) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    async with aiohttp.ClientSession() as anon:
        async with anon.options(proxy.url + "/api/x", headers=preflight) as r:
            assert r.status == 200 and (await r.json())["method"] == "OPTIONS"
        async with anon.options(proxy.url + "/api/x", headers={"Origin": "https://app.example"}) as r:
            assert r.status == 401  # not a preflight


async def test_public_routes_work_while_the_store_is_down(
    make_proxy: ProxyFactory, provider: FakeProvider, upstream: str
) -> None:
    proxy = await make_proxy(
        issuer=provider.issuer,
        upstream=upstream,
        session={"store": "redis", "redis_url": f"redis://127.0.0.1:{free_port()}/0"},
        authorization={"skip_auth_routes": ["GET=^/health$"]},
    )
    async with aiohttp.ClientSession() as anon:
        assert (await get(anon, proxy.url + "/health", Cookie="_auth_proxy=x.y"))[0] == 200


# --- /oauth/auth ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("allowed_roles=proxy:editor", 202),
        ("allowed_roles=auditor,proxy-user", 202),
        ("allowed_roles=auditor", 403),
        ("allowed_roles=editor", 403),
        ("allowed_roles=proxy:editor&allowed_groups=admins", 403),
    ],
)
async def test_auth_request_narrows_by_role(
    proxy: RunningProxy, browser: aiohttp.ClientSession, query: str, status: int
) -> None:
    code, _, headers = await get(browser, proxy.url + "/oauth/auth?" + query)
    assert code == status
    assert ("X-Auth-Request-User" in headers) is (status == 202)


async def test_auth_request_applies_the_global_rules(
    make_proxy: ProxyFactory, provider: FakeProvider
) -> None:
    proxy = await make_proxy(issuer=provider.issuer, authorization={"allowed_groups": ["admins"]})
    async with await signed_in_browser(proxy.url) as browser:
        assert (await get(browser, proxy.url + "/oauth/auth"))[0] == 403
        assert (await get(browser, proxy.url + "/oauth/auth?allowed_groups=staff"))[0] == 403
    proxy = await make_proxy(issuer=provider.issuer, authorization={"allowed_groups": ["staff"]})
    async with await signed_in_browser(proxy.url) as browser:
        assert (await get(browser, proxy.url + "/oauth/auth"))[0] == 202


def nginx(uri: str, method: str) -> dict[str, str]:
    """What deploy/nginx/auth-proxy.conf sends to /oauth/auth about ``method uri``."""
    return {"X-Original-URI": uri, "X-Original-Method": method, "X-Forwarded-Proto": "http",
            "X-Forwarded-Host": "app.example"}  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (nginx("/health", "GET"), 202),  # auth_request.front: nginx (tests/security/test_front_headers.py)
        (nginx("/h%65alth?x=1", "GET"), 202),
        (nginx("/health", "POST"), 401),
        (nginx("/static/../admin", "GET"), 401),
        (nginx("/static/%2e%2e/admin", "GET"), 401),
        (nginx("/static/..%2fadmin", "GET"), 401),
        (nginx("/admin", "GET"), 401),
        (nginx("/static/app.js", "POST"), 202),
        (nginx("/static//app.js", "GET"), 401),
        ({**nginx("/api", "OPTIONS"), "Origin": "https://x.example", "Access-Control-Request-Method": "PUT"},
         202),
        ({}, 401),  # the caller didn't say which request: no public route can apply
    ],
)  # fmt: skip
async def test_auth_request_public_routes_see_the_original_request(
    proxy: RunningProxy, headers: dict[str, str], status: int
) -> None:
    async with aiohttp.ClientSession() as anon:
        code, _, answer = await get(anon, proxy.url + "/oauth/auth", **headers)
    assert code == status
    assert "X-Auth-Request-User" not in answer


# --- bearer tokens ----------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **JSON}


async def test_bearer_token_reaches_the_upstream_as_its_user(
    proxy: RunningProxy, provider: FakeProvider
) -> None:
    token = provider.access_token()
    async with aiohttp.ClientSession() as api:
        spoof = {"X-Forwarded-User": "root"}
        code, body, _ = await get(api, proxy.url + "/editors/x", **bearer(token), **spoof)
    assert code == 200
    seen = upstream_saw(body)
    assert seen["X-Forwarded-User"] == "user1" and seen["X-Forwarded-Groups"] == "staff,dev"
    assert seen["Authorization"] == f"Bearer {token}"  # the API may check it again


@pytest.mark.parametrize(("path", "status"), [("/admin/x", 403), ("/auditors/x", 403), ("/staff/x", 200)])
async def test_bearer_tokens_meet_the_same_rules(
    proxy: RunningProxy, provider: FakeProvider, path: str, status: int
) -> None:
    async with aiohttp.ClientSession() as api:
        code, body, _ = await get(api, proxy.url + path, **bearer(provider.access_token()))
    assert code == status
    if status == 403:
        assert body["user"] == "user1" and "sign_out" not in body


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p.access_token(exp=int(time.time()) - 600),
        lambda p: p.access_token(aud="account"),
        lambda p: p.access_token(iss="http://evil.example"),
        lambda p: p.id_token("n", "a"),
        lambda p: p.logout_token(),
        lambda p: "opaque-token",
        lambda p: "",
    ],
    ids=["expired", "wrong-aud", "wrong-iss", "id-token", "logout-token", "opaque", "empty"],
)
async def test_invalid_bearer_tokens_are_401_invalid_token(
    proxy: RunningProxy, provider: FakeProvider, make: Any
) -> None:
    async with aiohttp.ClientSession() as api:
        for path in ("/page", "/oauth/auth"):
            code, _, headers = await get(api, proxy.url + path, **bearer(make(provider)))
            assert code == 401, path
            assert headers["WWW-Authenticate"] == 'Bearer realm="auth-proxy", error="invalid_token"'


async def test_a_bad_bearer_token_is_not_rescued_by_a_session(
    proxy: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    assert (await get(browser, proxy.url + "/page", **bearer("nonsense")))[0] == 401
    assert (await get(browser, proxy.url + "/page", Authorization="Basic dTpw", **JSON))[0] == 200


async def test_two_authorization_headers_are_refused(proxy: RunningProxy, provider: FakeProvider) -> None:
    async with aiohttp.ClientSession() as api:
        headers = [("Authorization", f"Bearer {provider.access_token()}"), ("Authorization", "Basic dTpw")]
        async with api.get(proxy.url + "/page", headers=headers) as r:
            assert r.status == 401


async def test_without_credentials_the_api_is_told_bearer_works(proxy: RunningProxy) -> None:
    async with aiohttp.ClientSession() as api:
        code, _, headers = await get(api, proxy.url + "/page", **JSON)
        assert code == 401 and headers["WWW-Authenticate"] == 'Bearer realm="auth-proxy"'
        code, _, headers = await get(api, proxy.url + "/oauth/auth")
        assert code == 401 and headers["WWW-Authenticate"] == 'Bearer realm="auth-proxy"'


async def test_bearer_tokens_are_ignored_unless_accepted(
    make_proxy: ProxyFactory, provider: FakeProvider, upstream: str
) -> None:
    proxy = await make_proxy(issuer=provider.issuer, upstream=upstream)
    async with aiohttp.ClientSession() as api:
        code, body, headers = await get(api, proxy.url + "/page", **bearer(provider.access_token()))
    assert code == 401 and body["error"] == "unauthorized" and "WWW-Authenticate" not in headers


async def test_configured_audiences_and_parties(
    make_proxy: ProxyFactory, provider: FakeProvider, upstream: str
) -> None:
    proxy = await make_proxy(
        issuer=provider.issuer,
        upstream=upstream,
        api={"accept_bearer": True, "audiences": ["orders-api"], "authorized_parties": ["proxy"]},
    )
    async with aiohttp.ClientSession() as api:
        ok = provider.access_token(aud=["orders-api", "account"])
        assert (await get(api, proxy.url + "/x", **bearer(ok)))[0] == 200
        assert (await get(api, proxy.url + "/x", **bearer(provider.access_token())))[0] == 401
        other_client = provider.access_token(aud="orders-api", azp="other-app")
        assert (await get(api, proxy.url + "/x", **bearer(other_client)))[0] == 401


async def test_auth_request_with_a_bearer_token(proxy: RunningProxy, provider: FakeProvider) -> None:
    token = provider.access_token()
    async with aiohttp.ClientSession() as api:
        code, _, headers = await get(api, proxy.url + "/oauth/auth", **bearer(token))
        assert code == 202 and headers["X-Auth-Request-User"] == "user1"
        assert headers["X-Auth-Request-Access-Token"] == token
        code, _, _ = await get(api, proxy.url + "/oauth/auth?allowed_roles=auditor", **bearer(token))
        assert code == 403


async def test_bearer_clients_are_never_sent_to_sign_in(proxy: RunningProxy) -> None:
    async with aiohttp.ClientSession() as browserish:
        code, _, _ = await get(browserish, proxy.url + "/page", Authorization="Bearer x", **HTML)
        assert code == 401
