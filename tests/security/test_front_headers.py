"""/oauth/auth believes only the front named in ``auth_request.front`` (proxy/fronts.py).

In-process: the proxy is called the way each front calls it, with ``authorization.skip_auth_routes:
["GET=^/public$"]``, and no session unless a case says so. "public" = 202 without identity, "login" =
401 (nobody; needs a session). The same attacks through the real nginx: tests/deploy/test_nginx_front.py.

Per front (nginx, ingress-nginx, traefik):

  the front's own headers naming GET /public                               → public
  the front's own headers naming GET /private, or POST /public             → login
  the front's headers naming /private, the two other fronts' naming /public → login (others ignored)
  only the other fronts' headers naming /public                            → login
  the front's method / path / host header sent twice                       → 400, logged (signed in too)
  another front's header sent twice                                        → ignored (public)
  host odd: "x#", "x?", "x/public?", "x@y", "x y", "x%2F", "", "a,b", "[::1", "x:0", "x:99999",
            "x:a", "é.example"                                              → login; ?redirect=1: 401
  host plain: "app.example", "APP.example:8443", "127.0.0.1:80", "[::1]:8080", "my_svc"  → public
  path "/public#x", "http://x/public" (absolute form), "public", "/pub lic"  → login
  method "get" (lower case), "G-ET", missing                               → login
  ?redirect=1 signed out, GET, plain host: 302 to <origin>/oauth/start?rd=<original URL>; POST: 401

ingress-nginx only:

  X-Original-URL "http://x/public?/private" + X-Auth-Request-Redirect "/private" → login (the host
      "x/public?" is odd: the path is never parsed out of the URL)
  X-Original-URL not ending with X-Auth-Request-Redirect                     → 400 (conflict)
  X-Original-URL without X-Auth-Request-Redirect (the old reading)           → login

front none (the default): every front's headers naming /public → login; ?redirect=1 → 401.
proxy/fronts.py alone: each front's headers read back (host lower-cased), nothing sent → nothing known,
every header sent twice → FrontConflict; none reads nothing.
Configuration: auth_request.front: "apache" → start-up error naming auth_request.front.
"""

from __future__ import annotations

import logging
from typing import Any, cast
from urllib.parse import quote

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from proxy.config import ConfigError, load_settings
from proxy.fronts import Front, FrontConflict, Original, headers_read, read_original, valid_authority
from tests.conftest import ProxyFactory, RunningProxy
from tests.support.fake_provider import FakeProvider
from tests.support.login import signed_in_browser

HOST = "app.example"
FRONTS = ("nginx", "ingress-nginx", "traefik")


def front_headers(front: str, method: str | None, uri: str, host: str = HOST) -> list[tuple[str, str]]:
    """What ``front`` sends to /oauth/auth for ``method uri`` on ``http://host``."""
    m = [] if method is None else [(name, method) for name in _METHOD[front]]
    if front == "nginx":
        return [*m, ("X-Original-URI", uri), ("X-Forwarded-Proto", "http"), ("X-Forwarded-Host", host)]
    if front == "ingress-nginx":
        return [*m, ("X-Original-URL", f"http://{host}{uri}"), ("X-Auth-Request-Redirect", uri)]
    return [*m, ("X-Forwarded-Uri", uri), ("X-Forwarded-Proto", "http"), ("X-Forwarded-Host", host)]


_METHOD = {"nginx": ["X-Original-Method"], "ingress-nginx": ["X-Original-Method"],
           "traefik": ["X-Forwarded-Method"]}  # fmt: skip


async def make(make_proxy: ProxyFactory, issuer: str, front: str) -> RunningProxy:
    return await make_proxy(
        issuer=issuer,
        authorization={"skip_auth_routes": ["GET=^/public$"]},
        auth_request={"front": front},
    )


async def ask(
    proxy: RunningProxy, headers: list[tuple[str, str]], query: str = "", session: Any = None
) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as anon:
        client = session or anon
        async with client.get(
            f"{proxy.url}/oauth/auth{query}", headers=CIMultiDict(headers), allow_redirects=False
        ) as r:
            await r.read()
            return r


@pytest.fixture(params=FRONTS)
async def front(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, fake_provider: FakeProvider, front: str) -> RunningProxy:
    return await make(make_proxy, fake_provider.issuer, front)


async def test_own_headers_decide(proxy: RunningProxy, front: str) -> None:
    r = await ask(proxy, front_headers(front, "GET", "/public"))
    assert r.status == 202 and "X-Auth-Request-User" not in r.headers
    assert (await ask(proxy, front_headers(front, "GET", "/private"))).status == 401
    assert (await ask(proxy, front_headers(front, "POST", "/public"))).status == 401


async def test_other_fronts_headers_are_ignored(proxy: RunningProxy, front: str) -> None:
    others = [h for f in FRONTS if f != front for h in front_headers(f, "GET", "/public")]
    own = front_headers(front, "GET", "/private")
    spoofed = [h for h in others if h[0].lower() not in {k.lower() for k, _ in own}]
    assert (await ask(proxy, own + spoofed)).status == 401
    alone = [h for h in others if h[0].lower() not in {k.lower() for k, _ in own}]
    assert (await ask(proxy, alone)).status == 401


@pytest.mark.parametrize("which", ["method", "path", "host"])
async def test_a_header_sent_twice_is_refused(
    proxy: RunningProxy, front: str, which: str, caplog: pytest.LogCaptureFixture
) -> None:
    headers = front_headers(front, "GET", "/public")
    index = {"method": 0, "path": 1, "host": -1}[which]
    name, value = headers[index]
    twice = [*headers, (name, value if which != "path" else "/private")]
    with caplog.at_level(logging.WARNING, logger="proxy.handlers.auth_request"):
        r = await ask(proxy, twice)
    assert r.status == 400
    assert any(getattr(rec, "event", "") == "front_conflict" for rec in caplog.records)
    async with await signed_in_browser(proxy.url) as browser:
        assert (await ask(proxy, twice, session=browser)).status == 400
        assert (await ask(proxy, headers, session=browser)).status == 202


async def test_another_fronts_header_twice_is_ignored(proxy: RunningProxy, front: str) -> None:
    other = "X-Forwarded-Uri" if front != "traefik" else "X-Original-URI"
    headers = [*front_headers(front, "GET", "/public"), (other, "/a"), (other, "/b")]
    assert (await ask(proxy, headers)).status == 202


ODD_HOSTS = ["x#", "x?", "x/public?", "x@y", "x y", "x%2F", "", "a,b", "[::1", "x:0", "x:99999", "x:a",
             "é.example"]  # fmt: skip
PLAIN_HOSTS = ["app.example", "APP.example:8443", "127.0.0.1:80", "[::1]:8080", "my_svc"]


@pytest.mark.parametrize("host", ODD_HOSTS)
async def test_an_odd_host_is_never_public_nor_a_redirect(proxy: RunningProxy, front: str, host: str) -> None:
    headers = front_headers(front, "GET", "/public", host)
    assert (await ask(proxy, headers)).status == 401
    assert (await ask(proxy, headers, "?redirect=1")).status == 401


@pytest.mark.parametrize("host", PLAIN_HOSTS)
async def test_a_plain_host_is_fine(proxy: RunningProxy, front: str, host: str) -> None:
    assert valid_authority(host)
    assert (await ask(proxy, front_headers(front, "GET", "/public", host))).status == 202


@pytest.mark.parametrize("uri", ["/public#x", "http://x/public", "public", "/pub lic"])
async def test_odd_paths_are_not_public(proxy: RunningProxy, front: str, uri: str) -> None:
    assert (await ask(proxy, front_headers(front, "GET", uri))).status == 401


@pytest.mark.parametrize("method", ["get", "G-ET", None])
async def test_odd_methods_are_not_public(proxy: RunningProxy, front: str, method: str | None) -> None:
    assert (await ask(proxy, front_headers(front, method, "/public"))).status == 401


async def test_redirect_to_the_original_page(proxy: RunningProxy, front: str) -> None:
    r = await ask(proxy, front_headers(front, "GET", "/app?a=1&b=%2F"), "?redirect=1")
    assert r.status == 302
    rd = quote(f"http://{HOST}/app?a=1&b=%2F", safe="")
    assert r.headers["Location"] == f"http://{HOST}/oauth/start?rd={rd}"
    assert (await ask(proxy, front_headers(front, "POST", "/app"), "?redirect=1")).status == 401


@pytest.mark.parametrize("front", ["ingress-nginx"])
async def test_ingress_nginx_url_is_cut_not_parsed(proxy: RunningProxy) -> None:
    moved = [("X-Original-Method", "GET"), ("X-Original-URL", "http://x/public?/private"),
             ("X-Auth-Request-Redirect", "/private")]  # fmt: skip
    assert (await ask(proxy, moved)).status == 401
    mismatch = [("X-Original-Method", "GET"), ("X-Original-URL", "http://x/private"),
                ("X-Auth-Request-Redirect", "/public")]  # fmt: skip
    assert (await ask(proxy, mismatch)).status == 400
    old = [("X-Original-Method", "GET"), ("X-Original-URL", "http://x/public")]
    assert (await ask(proxy, old)).status == 401


async def test_front_none_believes_no_header(make_proxy: ProxyFactory, fake_provider: FakeProvider) -> None:
    proxy = await make(make_proxy, fake_provider.issuer, "none")
    everything = [h for f in FRONTS for h in front_headers(f, "GET", "/public")]
    assert (await ask(proxy, everything)).status == 401
    assert (await ask(proxy, everything, "?redirect=1")).status == 401
    default = await make_proxy(issuer=fake_provider.issuer, authorization={"skip_auth_routes": ["^/public$"]})
    assert default.settings.auth_request.front == "none"
    assert (await ask(default, everything)).status == 401


def test_an_unknown_front_is_a_start_up_error() -> None:
    base: dict[str, Any] = {
        "provider": {"issuer_url": "https://idp.example", "client_id": "c", "client_secret": "s"},
        "cookie": {"secret": "x" * 32},
    }
    with pytest.raises(ConfigError, match=r"auth_request\.front: Input should be 'none', 'nginx'"):
        load_settings(None, **base, auth_request={"front": "apache"})


# --- proxy/fronts.py on its own ---------------------------------------------------------------


def _read(front: str, headers: list[tuple[str, str]]) -> Original:
    return read_original(cast(Front, front), CIMultiDictProxy(CIMultiDict(headers)))


@pytest.mark.parametrize("front", FRONTS)
def test_read_original_of_each_front(front: str) -> None:
    original = _read(front, front_headers(front, "GET", "/a?b=%2F", "App.Example:8443"))
    assert (original.method, original.uri, original.origin) == ("GET", "/a?b=%2F", "http://app.example:8443")
    assert original.url == "http://app.example:8443/a?b=%2F"
    assert original.public_candidate() == ("GET", "/a?b=%2F")
    sent = dict(front_headers(front, "GET", "/"))
    assert headers_read(cast(Front, front)) and all(name in sent for name in headers_read(cast(Front, front)))
    assert _read(front, []) == Original()
    assert _read(front, front_headers(front, "GET", "/", "x?")).public_candidate() is None
    with pytest.raises(FrontConflict):
        _read(front, front_headers(front, "GET", "/") * 2)


def test_read_original_of_none() -> None:
    everything = [h for f in FRONTS for h in front_headers(f, "GET", "/public")]
    assert _read("none", everything) == Original() and headers_read("none") == ()
