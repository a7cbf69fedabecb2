"""Two providers (the Keycloak realms demo and demo2) behind the shipped nginx recipe: nginx's
@signin brings the browser to the proxy's provider chooser, which keeps the page it asked for; a
location that asks ``/oauth/auth?providers=staff`` lets only the staff realm's sessions through."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.conftest import ROOT, Keycloak, ProxyFactory, RunningProxy
from tests.support.browser import navigate, new_browser, submit_login
from tests.support.keycloak_admin import logout_user
from tests.support.keycloak_realms import demo2_realm  # noqa: F401  (the fixture "demo2")
from tests.support.nginx import nginx

pytestmark = pytest.mark.keycloak
SITE = ROOT / "deploy" / "nginx" / "auth-proxy.conf"


@pytest.fixture
async def proxy(
    make_proxy: ProxyFactory, keycloak: Keycloak, demo2: Keycloak, redis_url: str
) -> RunningProxy:
    common = {"client_id": "proxy", "client_secret": "proxy-secret"}
    providers = [
        {"id": "staff", "display_name": "Staff", "issuer_url": keycloak.issuer, **common},
        {"id": "partners", "display_name": "Partners", "issuer_url": demo2.issuer, **common},
    ]
    return await make_proxy(
        issuer="unused", providers=providers, server={"trust_forwarded_headers": True},
        session={"store": "redis", "redis_url": redis_url}, auth_request={"front": "nginx"},
    )  # fmt: skip


def staff_only(text: str) -> str:
    """The recipe plus a location /staff/ whose subrequest asks /oauth/auth?providers=staff."""
    start = text.index("    location = /oauth/auth {")
    end = text.index("    }\n", start) + len("    }\n")
    sub = text[start:end].replace("location = /oauth/auth {", "location = /oauth/auth-staff {")
    sub = sub.replace(
        "proxy_pass http://auth_proxy;", "proxy_pass http://auth_proxy/oauth/auth?providers=staff;"
    )
    start = text.index("    location / {")
    end = text.index("\n    }\n", start) + len("\n    }\n")
    app = text[start:end].replace("location / {", "location /staff/ {")
    app = app.replace("auth_request /oauth/auth;", "auth_request /oauth/auth-staff;")
    return text[:start] + sub + app + text[start:]


@pytest.fixture
def site(proxy: RunningProxy, upstream: str) -> Iterator[str]:
    text = staff_only(SITE.read_text())
    text = text.replace("server 127.0.0.1:4180;", f"server {proxy.url.removeprefix('http://')};")
    text = text.replace("server 127.0.0.1:8080;", f"server {upstream.removeprefix('http://')};")
    with nginx(text) as (port, _):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
async def browser(keycloak: Keycloak) -> AsyncIterator[aiohttp.ClientSession]:
    async with new_browser(keycloak.url) as b:
        yield b


async def test_choose_a_provider_through_nginx_and_a_staff_only_location(
    site: str, browser: aiohttp.ClientSession, keycloak: Keycloak
) -> None:
    await logout_user(keycloak.url, "demo2", "alice")
    page = await navigate(browser, site + "/reports?year=2026")
    assert page.status == 200 and "Sign in with Partners" in page.text  # the chooser, via @signin
    assert "rd=http%3A%2F%2F127.0.0.1" in page.text and "reports%3Fyear%3D2026" in page.text
    start = next(u for u in _links(page.text) if "provider=partners" in u)
    page = await navigate(browser, site + start)
    page = await submit_login(browser, page, "alice", "alice-password")
    assert page.status == 200 and page.url == site + "/reports?year=2026", page.text[:300]
    headers = dict(json.loads(page.text)["headers"])
    assert headers["X-Forwarded-Email"] == "alice@partners.example.test"
    async with browser.get(site + "/staff/x", allow_redirects=False) as r:
        assert r.status == 403  # a partners session, at a staff-only location


def _links(text: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'href="([^"]+)"', text)]
