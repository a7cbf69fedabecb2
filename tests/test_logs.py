"""The access log: one JSON line per request with its id, method, path, status, duration and user
(``sub``), never a token, a cookie or a code; and the request id, taken from a sane ``X-Request-ID``
or made up, reaches the upstream and comes back in the response."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from proxy.app import create_app
from proxy.config import load_settings
from proxy.keys import PROVIDERS
from proxy.logs import AccessLogger, JsonFormatter
from tests.conftest import COOKIE_SECRET
from tests.support.fake_provider import FakeProvider
from tests.support.login import session_cookie, signed_in_browser


@pytest.fixture
async def proxy_url(aiohttp_server: Any, fake_provider: FakeProvider, upstream: str) -> str:
    settings = load_settings(
        None,
        provider={"issuer_url": fake_provider.issuer, "client_id": "proxy", "client_secret": "proxy-secret"},
        cookie={"secret": COOKIE_SECRET, "secure": False},
        session={"store": "memory"},
        upstreams=[{"prefix": "/", "url": upstream}],
    )
    app = create_app(settings)
    server = await aiohttp_server(app, host="127.0.0.1", access_log_class=AccessLogger)  # as __main__
    await app[PROVIDERS].default.discovery.discover()
    return str(server.make_url("")).rstrip("/")


async def access_lines(caplog: pytest.LogCaptureFixture, path: str) -> list[dict[str, Any]]:
    """The access lines for ``path`` as the JSON formatter writes them (the line is written just
    after the response is sent: wait for it, within a bound)."""
    for _ in range(200):
        lines = [
            json.loads(JsonFormatter().format(r))
            for r in caplog.records
            if r.name == "aiohttp.access" and r.msg == "request" and r.__dict__.get("path") == path
        ]
        if lines:
            return lines
        await asyncio.sleep(0.01)
    raise AssertionError(f"no access line for {path}")


async def test_one_line_per_request_with_id_user_and_no_secrets(
    proxy_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    async with await signed_in_browser(proxy_url) as browser:
        cookie = session_cookie(browser)
        headers = {"X-Request-ID": "req-123.abc", "Authorization": "Bearer SECRET-TOKEN"}
        async with browser.get(proxy_url + "/echo?code=SECRET-CODE&x=1", headers=headers) as r:
            assert r.status == 200 and r.headers["X-Request-ID"] == "req-123.abc"
            upstream_saw = dict((await r.json())["headers"])
    assert upstream_saw["X-Request-ID"] == "req-123.abc"
    [line] = await access_lines(caplog, "/echo")
    assert line["request_id"] == "req-123.abc"
    assert (line["method"], line["path"], line["status"], line["sub"]) == ("GET", "/echo", 200, "user-1")
    assert isinstance(line["duration_ms"], float)
    ours = [r for r in caplog.records if r.name.startswith("proxy") or r.msg == "request"]  # not the
    raw = "\n".join(JsonFormatter().format(r) for r in ours)  # test upstream's and provider's lines
    for secret in (cookie, "SECRET-TOKEN", "SECRET-CODE"):
        assert secret not in raw


@pytest.mark.parametrize("sent", [None, "has spaces", "x" * 129, "ünïcode"])
async def test_an_unfit_or_missing_request_id_is_replaced_everywhere(
    proxy_url: str, caplog: pytest.LogCaptureFixture, sent: str | None
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    headers = {"X-Request-ID": sent} if sent is not None else {}
    async with await signed_in_browser(proxy_url) as browser:
        async with browser.get(proxy_url + "/echo", headers=headers) as r:
            made = r.headers["X-Request-ID"]
            upstream_saw = [v for k, v in (await r.json())["headers"] if k.lower() == "x-request-id"]
    assert made != sent and len(made) == 16
    assert upstream_saw == [made]  # exactly one: the client's copy is gone
    [line] = await access_lines(caplog, "/echo")
    assert line["request_id"] == made


async def test_a_line_without_a_session_has_no_user(proxy_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    async with await signed_in_browser(proxy_url) as browser:
        browser.cookie_jar.clear()
        async with browser.get(proxy_url + "/api", headers={"Accept": "application/json"}) as r:
            assert r.status == 401
    [line] = await access_lines(caplog, "/api")
    assert line["sub"] is None and line["status"] == 401


def test_static_fields_are_on_every_line() -> None:
    record = logging.LogRecord("proxy.x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    line = json.loads(JsonFormatter({"worker": 2}).format(record))
    assert line["msg"] == "hello there" and line["worker"] == 2 and line["level"] == "info"


def test_new_request_ids_are_distinct_within_and_across_processes() -> None:
    from proxy.middlewares import RequestIds

    one, other = RequestIds(), RequestIds()  # two processes (or replicas) each make their own
    ids = [one.new() for _ in range(1000)] + [other.new() for _ in range(1000)]
    assert len(set(ids)) == 2000
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
