"""deploy/nginx/auth-proxy.conf as shipped, in the real nginx with its default buffer sizes, in front
of a sample app, with the proxy answering auth_request and the real Keycloak signing users in.

Which cases run through the real nginx: here, sign-in (the @signin flow brings the browser back to the
page it asked for, from X-Original-URI and X-Forwarded-Proto/-Host), forged identity headers, the
internal subrequest location, sign-out, big tokens. The attack table on the original request (hostile
Host values and paths, the client's X-Original-* / X-Forwarded-* headers) runs through the real nginx
in test_nginx_front.py, with this recipe and with ingress-nginx's auth-url location."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import ROOT, Keycloak, ProxyFactory, RunningProxy
from tests.support.browser import navigate, new_browser, submit_form, submit_login
from tests.support.keycloak_admin import logout_user
from tests.support.nginx import nginx

pytestmark = pytest.mark.keycloak
SITE = ROOT / "deploy" / "nginx" / "auth-proxy.conf"


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, keycloak: Keycloak, redis_url: str) -> RunningProxy:
    # Auth-only: no upstreams; nginx tells the proxy the original request (as the recipe's comment says).
    return await make_proxy(
        issuer=keycloak.issuer,
        server={"trusted_proxies": ["127.0.0.1/32"]},
        session={"store": "redis", "redis_url": redis_url},
        auth_request={"front": "nginx"},
    )


@pytest.fixture
def site(proxy: RunningProxy, upstream: str) -> Iterator[str]:
    text = SITE.read_text()
    text = text.replace("server 127.0.0.1:4180;", f"server {proxy.url.removeprefix('http://')};")
    text = text.replace("server 127.0.0.1:8080;", f"server {upstream.removeprefix('http://')};")
    with nginx(text) as (port, workdir):
        yield f"http://127.0.0.1:{port}"
        errors = (workdir / "error.log").read_text()
        assert "too big header" not in errors, errors


@pytest.fixture
async def browser(keycloak: Keycloak) -> AsyncIterator[aiohttp.ClientSession]:
    async with new_browser(keycloak.url) as b:
        yield b


async def test_sign_in_app_and_sign_out_through_nginx(
    site: str, browser: aiohttp.ClientSession, keycloak: Keycloak
) -> None:
    await logout_user(keycloak.url, keycloak.realm, "alice")
    page = await navigate(browser, site + "/reports?year=2026&q=a%26b")
    assert page.is_keycloak_login
    page = await submit_login(browser, page, "alice", "alice-password")
    assert page.status == 200 and page.url == site + "/reports?year=2026&q=a%26b"
    seen = json.loads(page.text)
    assert seen["path_qs"] == "/reports?year=2026&q=a%26b"
    headers = dict(seen["headers"])
    assert headers["X-Forwarded-User"] == "alice"
    assert headers["X-Forwarded-Email"] == "alice@example.test"
    assert "engineering" in headers["X-Forwarded-Groups"]

    spoof = {"X-Forwarded-User": "admin", "X-Forwarded-Groups": "admins", "X-Auth-Request-User": "admin"}
    async with browser.get(site + "/x", headers=spoof) as r:
        headers = dict((await r.json())["headers"])
    assert headers["X-Forwarded-User"] == "alice" and "admins" not in headers["X-Forwarded-Groups"]
    assert "X-Auth-Request-User" not in headers

    async with browser.get(site + "/oauth/auth", allow_redirects=False) as r:
        assert r.status == 404  # internal: browsers can't call the subrequest location

    page = await navigate(browser, site + "/oauth/sign_out?rd=/reports")
    assert page.is_keycloak_login, f"signed straight back in? {page.status} {page.url}"
    async with aiohttp.ClientSession() as anon, anon.get(site + "/reports", allow_redirects=False) as r:
        assert r.status == 302 and r.headers["Location"].startswith(keycloak.issuer)


async def test_hundreds_of_groups_pass_nginx_default_buffers(
    site: str, browser: aiohttp.ClientSession, keycloak: Keycloak
) -> None:
    """The seed problem: a 20 kB ID token must not need proxy_buffer_size tuning (no 502)."""
    await logout_user(keycloak.url, keycloak.realm, "bigtoken")
    page = await navigate(browser, site + "/dashboard")
    page = await submit_login(browser, page, "bigtoken", "bigtoken-password")
    assert page.status == 200, f"{page.status}: {page.text[:300]}"
    headers = dict(json.loads(page.text)["headers"])
    assert headers["X-Forwarded-User"] == "bigtoken"
    assert headers["X-Forwarded-Groups"].startswith("team-")
    assert headers["X-Forwarded-Groups-Truncated"] == "true"
    for _ in range(20):  # every request goes through auth_request
        async with browser.get(site + "/dashboard") as r:
            assert r.status == 200
    page = await navigate(browser, site + "/oauth/sign_out?rd=/dashboard")
    page = await submit_form(browser, page, "end-session")
    assert page.is_keycloak_login


def test_the_recipe_is_valid_nginx(tmp_path: Path) -> None:
    with nginx(SITE.read_text()):
        pass
