"""static:// and rewritten upstreams on the proxy path: the rules are judged on the request's own
path first, then the rewrite decides what the upstream (or the directory) receives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from tests.conftest import ProxyFactory, RunningProxy
from tests.support.fake_provider import FakeProvider
from tests.support.login import signed_in_browser


@pytest.fixture
async def proxy(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str, tmp_path: Path
) -> RunningProxy:
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "app.js").write_text("console.log(2)")
    return await make_proxy(
        issuer=fake_provider.issuer,
        upstreams=[
            {"prefix": "/", "url": upstream},
            {"prefix": "/healthz", "url": "static://204"},
            {"prefix": "/closed/", "url": "static://404"},
            {
                "prefix": "/admin/",
                "url": upstream,
                "allowed_groups": ["admins"],
                "rewrite": {"pattern": r"^/admin/(.*)$", "replacement": r"/internal/\1"},
            },
            {
                "prefix": "/api/",
                "url": upstream,
                "rewrite": {"pattern": r"^/api/v(\d{1,2})/(.*)$", "replacement": r"/\2"},
            },
            {
                "prefix": "/assets/",
                "url": f"file://{tmp_path}",
                "rewrite": {"pattern": r"^/assets/(.*)$", "replacement": r"/v2/\1"},
            },
        ],
        authorization={"skip_auth_routes": ["GET=^/healthz$"]},
    )


@pytest.fixture
async def browser(proxy: RunningProxy) -> AsyncIterator[aiohttp.ClientSession]:
    async with await signed_in_browser(proxy.url) as b:
        yield b


async def test_static_answers_without_reaching_an_upstream(
    proxy: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    async with aiohttp.ClientSession() as anon, anon.get(proxy.url + "/healthz") as r:
        assert r.status == 204 and await r.read() == b""  # public route: no session needed
    async with browser.post(proxy.url + "/closed/anything", data=b"x") as r:
        assert r.status == 404 and await r.read() == b""
    async with aiohttp.ClientSession() as anon:
        async with anon.get(proxy.url + "/closed/x", headers={"Accept": "application/json"}) as r:
            assert r.status == 401  # not public: sign-in first, like any upstream


async def test_rewrite_comes_after_the_rules(proxy: RunningProxy, browser: aiohttp.ClientSession) -> None:
    async with browser.get(proxy.url + "/admin/users", headers={"Accept": "application/json"}) as r:
        assert r.status == 403  # the user is not in "admins": judged on /admin/, never rewritten


async def test_rewritten_path_reaches_the_upstream_canonical(
    proxy: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    url = URL(proxy.url + "/api/v1/a/./b;x/%63?q=%2F&z", encoded=True)
    async with browser.get(url) as r:
        assert r.status == 200
        assert (await r.json())["path_qs"] == "/a/b/c?q=%2F&z"
    async with browser.get(proxy.url + "/api/other") as r:  # no match: the path goes on unchanged
        assert (await r.json())["path_qs"] == "/api/other"


async def test_a_rewrite_into_a_directory(proxy: RunningProxy, browser: aiohttp.ClientSession) -> None:
    async with browser.get(proxy.url + "/assets/app.js") as r:
        assert r.status == 200 and await r.text() == "console.log(2)"


async def test_a_rewrite_that_would_leave_origin_form_is_a_400(
    proxy: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    # %2F decoded is '/', but the router refuses it first; a decoded '?' is what a rewrite must catch
    async with browser.get(URL(proxy.url + "/api/v1/x%3Fadmin=1", encoded=True)) as r:
        assert r.status == 400
    async with browser.get(URL(proxy.url + "/api/v1/" + "a" * 2100, encoded=True)) as r:
        assert r.status == 414
