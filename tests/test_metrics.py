"""``GET /metrics``: what an operator reads off a running proxy, checked against what was done to it.

Every test drives a real proxy on a real port (the fake provider, the sample upstream) and then
scrapes it as Prometheus would."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.config import ConfigError, load_settings
from proxy.keys import COOKIES, STORE
from tests.conftest import ProxyFactory, RunningProxy
from tests.support.browser import navigate, new_browser
from tests.support.fake_provider import FakeProvider
from tests.support.login import session_cookie, signed_in_browser
from tests.support.servers import free_port
from tests.support.upstream_app import HOLD, make_upstream


async def scrape(url: str) -> str:
    async with aiohttp.ClientSession() as client, client.get(url) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("text/plain")
        return await r.text()


def value(text: str, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly ``labels``; 0 when the series doesn't exist (yet)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def get(browser: aiohttp.ClientSession, url: str, **kwargs: Any) -> int:
    async with browser.get(url, allow_redirects=False, **kwargs) as r:
        await r.read()
        return r.status


async def test_requests_by_route_class_and_status_logins_logouts_and_the_store(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    proxy = await make_proxy(issuer=fake_provider.issuer, upstream=upstream)
    api = {"Accept": "application/json"}
    async with aiohttp.ClientSession() as anonymous:
        assert await get(anonymous, proxy.url + "/api", headers=api) == 401
        assert await get(anonymous, proxy.url + "/oauth/auth") == 401
    async with await signed_in_browser(proxy.url) as browser:
        assert await get(browser, proxy.url + "/echo") == 200
        assert await get(browser, proxy.url + "/oauth/auth") == 202
        assert await get(browser, proxy.url + "/oauth/no-such-page") == 404
        assert await get(browser, proxy.url + "/ping") == 200
        assert await get(browser, proxy.url + "/oauth/sign_out") == 302
    async with await signed_in_browser(proxy.url) as browser:  # ended by the provider, back-channel
        async with browser.post(
            proxy.url + "/oauth/backchannel_logout", data={"logout_token": fake_provider.logout_token()}
        ) as r:
            assert r.status == 200
    text = await scrape(proxy.url + "/metrics")

    def requests(route: str, status: str) -> float:
        return value(text, "auth_proxy_requests_total", route=route, status=status)

    assert requests("proxy", "401") == 1
    assert requests("proxy", "200") == 1
    assert requests("auth_request", "401") == 1
    assert requests("auth_request", "202") == 1
    assert requests("login", "302") == 2
    assert requests("callback", "302") == 2
    assert requests("sign_out", "302") == 1
    assert requests("backchannel", "200") == 1
    assert requests("other", "404") == 1
    assert requests("other", "200") == 2  # /oauth/userinfo, where the logins landed
    assert requests("probe", "200") == 1  # /ping (this scrape is counted after it answers)
    assert value(text, "auth_proxy_request_duration_seconds_count", route="proxy") == 2
    assert value(text, "auth_proxy_upstream_duration_seconds_count") == 1  # only one request got through
    assert value(text, "auth_proxy_upstream_connections_active") == 0
    assert value(text, "auth_proxy_logins_total", outcome="success") == 2
    assert value(text, "auth_proxy_logins_total", outcome="failure") == 0
    assert value(text, "auth_proxy_logouts_total", kind="user") == 1
    assert value(text, "auth_proxy_logouts_total", kind="backchannel") == 1
    assert value(text, "auth_proxy_store_operations_total", op="get") >= 4
    assert value(text, "auth_proxy_store_operations_total", op="add_new") == 3  # 2 logins, 1 logout token
    assert value(text, "auth_proxy_store_errors_total", op="get") == 0
    assert value(text, "auth_proxy_store_operation_duration_seconds_count") > 0


async def test_a_failed_login_is_counted(make_proxy: ProxyFactory, fake_provider: FakeProvider) -> None:
    proxy = await make_proxy(issuer=fake_provider.issuer)
    fake_provider.token_mode = "500"
    async with new_browser() as browser:
        page = await navigate(browser, proxy.url + "/oauth/start?rd=/")  # to the provider and back
        assert page.status == 503 and page.url.startswith(proxy.url + "/oauth/callback")
    text = await scrape(proxy.url + "/metrics")
    assert value(text, "auth_proxy_logins_total", outcome="failure") == 1
    assert value(text, "auth_proxy_requests_total", route="callback", status="503") == 1


async def test_refreshes_by_outcome(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    proxy = await make_proxy(issuer=fake_provider.issuer, upstream=upstream)

    async def expire(browser: aiohttp.ClientSession) -> None:
        ticket = proxy.app[COOKIES].decode(session_cookie(browser))
        assert ticket is not None
        session = await proxy.app[STORE].load(ticket)
        assert session is not None
        await proxy.app[STORE].save(ticket, replace(session, access_expires_at=time.time() - 1))

    async with await signed_in_browser(proxy.url) as browser:
        await expire(browser)
        fake_provider.refresh_mode = "500"
        assert await get(browser, proxy.url + "/echo") == 503
        fake_provider.refresh_mode = "ok"
        assert await get(browser, proxy.url + "/echo") == 200
        await expire(browser)
        fake_provider.refresh_mode = "invalid_grant"
        assert await get(browser, proxy.url + "/echo", headers={"Accept": "application/json"}) == 401
    text = await scrape(proxy.url + "/metrics")
    assert value(text, "auth_proxy_token_refreshes_total", outcome="error") == 1
    assert value(text, "auth_proxy_token_refreshes_total", outcome="success") == 1
    assert value(text, "auth_proxy_token_refreshes_total", outcome="ended") == 1
    assert value(text, "auth_proxy_logouts_total", kind="refresh_failure") == 1


async def test_active_upstream_connections_follow_streams_and_websockets(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, aiohttp_server: Any
) -> None:
    upstream_app = make_upstream()
    up = await aiohttp_server(upstream_app, host="127.0.0.1")
    proxy = await make_proxy(issuer=fake_provider.issuer, upstream=str(up.make_url("")).rstrip("/"))

    async def active() -> float:
        return value(await scrape(proxy.url + "/metrics"), "auth_proxy_upstream_connections_active")

    async with await signed_in_browser(proxy.url) as browser:
        async with browser.get(proxy.url + "/held") as r:
            assert await r.content.readexactly(len(b"first-chunk;")) == b"first-chunk;"
            assert await active() == 1  # headers came long ago: the response is still streaming
            upstream_app[HOLD].set()
            assert await r.read() == b"second-chunk"
        assert await active() == 0
        async with browser.ws_connect(proxy.url + "/ws", origin=proxy.url) as ws:
            await ws.receive_str()
            assert await active() == 1
        assert await active() == 0


async def test_every_app_has_a_registry_of_its_own(
    make_proxy: ProxyFactory, fake_provider: FakeProvider
) -> None:
    one = await make_proxy(issuer=fake_provider.issuer)
    two = await make_proxy(issuer=fake_provider.issuer)
    async with aiohttp.ClientSession() as client:
        for _ in range(3):
            assert await get(client, one.url + "/ping") == 200
    assert (
        value(await scrape(one.url + "/metrics"), "auth_proxy_requests_total", route="probe", status="200")
        == 3
    )
    assert (
        value(await scrape(two.url + "/metrics"), "auth_proxy_requests_total", route="probe", status="200")
        == 0
    )


async def test_metrics_on_a_port_of_their_own(make_proxy: ProxyFactory, fake_provider: FakeProvider) -> None:
    port = free_port()
    proxy: RunningProxy = await make_proxy(
        issuer=fake_provider.issuer, server={"metrics_listen": f"127.0.0.1:{port}"}
    )
    async with aiohttp.ClientSession() as client:
        # On the main port /metrics is an ordinary path: it needs a session like any other.
        assert await get(client, proxy.url + "/metrics", headers={"Accept": "application/json"}) == 401
        assert await get(client, proxy.url + "/ping") == 200
    text = await scrape(f"http://127.0.0.1:{port}/metrics")
    assert value(text, "auth_proxy_requests_total", route="probe", status="200") == 1
    assert value(text, "auth_proxy_requests_total", route="proxy", status="401") == 1


async def test_openmetrics_when_the_scraper_asks_for_it(
    make_proxy: ProxyFactory, fake_provider: FakeProvider
) -> None:
    proxy = await make_proxy(issuer=fake_provider.issuer)
    async with aiohttp.ClientSession() as client:
        async with client.get(
            proxy.url + "/metrics", headers={"Accept": "application/openmetrics-text"}
        ) as r:
            assert r.headers["Content-Type"].startswith("application/openmetrics-text")
            assert (await r.text()).rstrip().endswith("# EOF")


def test_metrics_listen_is_checked() -> None:
    base: dict[str, Any] = {
        "provider": {"issuer_url": "http://kc/realms/x", "client_id": "p", "client_secret": "s"},
        "cookie": {"secret": "s" * 32},
    }
    with pytest.raises(ConfigError, match="server.metrics_listen: .*host:port"):
        load_settings(None, **base, server={"metrics_listen": "9180"})
    with pytest.raises(ConfigError, match="must differ from listen"):
        load_settings(None, **base, server={"listen": "0.0.0.0:4180", "metrics_listen": "0.0.0.0:4180"})
    settings = load_settings(
        None, **base, server={"metrics_listen": "127.0.0.1:9180", "shutdown_grace": "5s"}
    )
    assert settings.server.metrics_address == ("127.0.0.1", 9180)
    assert settings.server.shutdown_grace == 5.0


def test_tallied_requests_read_exactly_as_if_observed_one_by_one() -> None:
    """``Metrics.answered`` tallies and ``flush`` adds them later: the exposition must be the one
    direct observations give, bucket edges included."""
    from proxy.metrics_registry import LATENCY_BUCKETS, Metrics

    answers = [("auth_request", 202, s) for s in (*LATENCY_BUCKETS, 0.0, 0.0004, 0.0031, 99.0)]
    answers += [("proxy", 200, 0.012), ("proxy", 502, 5.0), ("proxy", 101, 60.0), ("login", 302, 0.2)]
    tallied, direct = Metrics(), Metrics()
    for route, status, seconds in answers:
        tallied.answered(route, status, seconds)  # type: ignore[arg-type]
        direct.requests.labels(route, str(status)).inc()
        if status != 101:
            direct.request_seconds.labels(route).observe(seconds)
    before_flush = tallied.exposition("")[0]
    assert value(before_flush.decode(), "auth_proxy_requests_total", route="proxy", status="200") == 1

    def samples(m: Metrics) -> list[tuple[str, str, float]]:
        text = m.exposition("")[0].decode()
        return sorted(
            (s.name, repr(sorted(s.labels.items())), s.value)
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if not s.name.endswith("_created")
        )

    assert samples(tallied) == samples(direct)
    tallied.answered("proxy", 200, 0.3)  # counted again after a flush, not lost or doubled
    assert (
        value(tallied.exposition("")[0].decode(), "auth_proxy_requests_total", route="proxy", status="200")
        == 2
    )
