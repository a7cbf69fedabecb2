"""The exact paths answered ahead of the router (``proxy.dispatch``): the handler a request reaches
is the one the router would pick, and anything but the plain spelling of such a path goes the
application's own way."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from proxy import dispatch
from proxy.app import create_app, hot_paths
from proxy.config import Settings, load_settings
from proxy.keys import METRICS
from tests.conftest import ProxyFactory
from tests.support.fake_provider import FakeProvider

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND")


def _settings(prefix: str = "/oauth") -> Settings:
    return load_settings(
        None,
        server={"proxy_prefix": prefix},
        provider={"issuer_url": "http://127.0.0.1:9/realms/x", "client_id": "p", "client_secret": "s"},
        cookie={"secret": "x" * 32, "secure": False},
        session={"store": "memory"},
        upstreams=[{"prefix": "/", "url": "http://127.0.0.1:9"}],
    )


@pytest.mark.parametrize("prefix", ["/oauth", "/_auth"])
@pytest.mark.parametrize("method", METHODS)
async def test_each_hot_path_reaches_the_handler_the_router_picks(prefix: str, method: str) -> None:
    settings = _settings(prefix)
    app = create_app(settings)
    table = dispatch.fast_paths(app, hot_paths(settings))
    assert set(table) == {f"{prefix}/auth"}
    for path, (handler, info) in table.items():
        routed = await app.router.resolve(make_mocked_request(method, path, app=app))
        assert routed.http_exception is None
        assert routed.handler is handler
        assert info.route is routed.route
        assert dict(info) == dict(routed) == {}
        assert info.current_app is app


def test_a_path_that_is_not_one_route_for_every_method_is_refused_at_start_up() -> None:
    app = create_app(_settings())
    for path in ("/ping", "/oauth/nowhere", "/{tail:.*}"):  # GET only; no such route; dynamic
        with pytest.raises(ValueError, match="not one plain route for every method"):
            dispatch.fast_paths(app, [path])


@pytest.mark.parametrize(
    ("target", "headers", "fast"),
    [
        ("/oauth/auth", {}, True),
        ("/oauth/auth?allowed_groups=admins", {}, True),
        ("/oauth/%61uth", {}, False),  # the same path, spelled otherwise: the router decides
        ("/oauth/auth/", {}, False),
        ("/oauth//auth", {}, False),
        ("/oauth/authx", {}, False),
        ("/oauth/auth", {"Expect": "100-continue"}, False),  # the application answers 100 Continue
        ("/ping", {}, False),
        ("/", {}, False),
    ],
)
async def test_only_the_plain_spelling_takes_the_short_way(
    target: str, headers: dict[str, str], fast: bool
) -> None:
    seen: list[web.Request] = []
    slow_calls: list[str] = []

    async def recorded(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        return web.Response(status=202)

    async def slow(request: web.BaseRequest) -> web.StreamResponse:
        slow_calls.append(request.raw_path)
        return web.Response(status=299)

    app = web.Application()
    app.router.add_route("*", "/oauth/auth", recorded)
    app.router.add_route("*", "/{tail:.*}", recorded)
    go = dispatch.dispatcher(app, ["/oauth/auth"], slow)
    answer = await go(make_mocked_request("GET", target, headers=headers))
    if fast:
        assert (answer.status, slow_calls) == (202, [])
        assert seen[0].match_info.route.resource is not None
        assert seen[0].match_info.route.resource.canonical == "/oauth/auth"
        assert seen[0].app is app
    else:
        assert (answer.status, slow_calls, seen) == (299, [target], [])


async def test_the_proxy_answers_a_check_alike_either_way(
    make_proxy: ProxyFactory, fake_provider: FakeProvider
) -> None:
    """Served as deployed (the dispatcher installed): the short way and the router's way give the
    same answers, counted as auth requests, each with its request id."""
    proxy = await make_proxy(issuer=fake_provider.issuer)
    async with aiohttp.ClientSession() as client:
        for target in ("/oauth/auth", "/oauth/%61uth", "/oauth/auth?redirect=0"):
            async with client.get(proxy.url + target, headers={"X-Request-ID": "r-" + str(len(target))}) as r:
                assert r.status == 401, target
                assert r.headers["X-Request-ID"] == "r-" + str(len(target))
                assert r.headers["Cache-Control"] == "no-store"
    metrics = proxy.app[METRICS]
    metrics.flush()
    assert metrics.requests.labels("auth_request", "401")._value.get() == 3
