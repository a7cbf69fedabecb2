"""The attack table of tests/deploy/attacks.py, sent as raw HTTP/1.1 to the REAL nginx, in front of an
upstream that records every request reaching it, with the proxy answering the auth subrequests
(``skip_auth_routes: ["GET=^/public$", "GET=^/$"]``, nobody signed in). Verdict per case: the upstream
is reached only by the real public routes (GET /public, with or without a query, and GET /, on a
plain Host); every other case ends in a redirect to sign in (a POST: 404, /oauth/start takes only
GET), or nginx's own 400 (it refuses a Host with ``/``, a space, an empty Host on HTTP/1.1, ...), or a
500 (the proxy's 400 for conflicting headers, as nginx reports it), never in the upstream.

Run through two configurations of the real nginx:

- ``deploy/nginx/auth-proxy.conf`` as shipped, proxy with ``auth_request.front: nginx``;
- the ``auth-url`` location ingress-nginx generates (its rootfs/etc/nginx/template/nginx.tmpl,
  reproduced in INGRESS_NGINX below: the same proxy_set_header lines, every client header passed on),
  proxy with ``auth_request.front: ingress-nginx``.

Cases (each for both): the public routes; with a query; a private path; POST to the public route;
Host ``x/public?``, ``x/public#``, ``x?``, ``x#``, ``x@y``, ``x y``, ``x%2Fpublic%3F``, empty, ``a,b``,
``[::1``, ``x:99999`` (on /private, and the odd ones on /public); no Host (HTTP/1.1 and 1.0); paths
with ``..``, ``%2e%2e``, ``%2f``, ``#``, ``;``, ``//``, upper case, a trailing slash, escapes; the
absolute forms ``http://x/public`` (nginx reads host x, path /public: the public route) and
``http://x/private``; the client's own X-Original-URL / -URI / -Method, X-Auth-Request-Redirect,
X-Forwarded-Uri / -Method / -Host / -Proto (each alone, all at once, all twice); a POST claiming GET.

Before the fix (path parsed out of ``$scheme://$http_host$request_uri``): Host ``x?`` or ``x#`` on
/private reached the upstream (the path came out empty, read as ``/``), and so did
``/public#/../private``, through both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import ROOT, ProxyFactory
from tests.deploy.attacks import (
    ATTACKS,
    PUBLIC,
    Attack,
    check_attack,
    raw_request,
    recording_upstream,
)
from tests.support.fake_provider import FakeProvider
from tests.support.nginx import nginx

SITE = ROOT / "deploy" / "nginx" / "auth-proxy.conf"

INGRESS_NGINX = """
upstream auth_proxy { server 127.0.0.1:4180; keepalive 32; }
upstream app { server 127.0.0.1:8080; keepalive 32; }
server {
    listen 80;
    server_name _;
    location /oauth/ {
        proxy_set_header Host $http_host;
        proxy_set_header X-Original-URI $request_uri;
        proxy_set_header X-Forwarded-Host $http_host;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_pass http://auth_proxy;
    }
    location = /_external-auth-Lw-Prefix {
        internal;
        proxy_intercept_errors      off;
        proxy_pass_request_body     off;
        proxy_set_header            Content-Length          "";
        proxy_set_header            X-Forwarded-Proto       "";
        proxy_set_header            X-Request-ID            $request_id;
        proxy_set_header            Host                    auth-proxy.auth-proxy.svc.cluster.local;
        proxy_set_header            X-Original-URL          $scheme://$http_host$request_uri;
        proxy_set_header            X-Original-Method       $request_method;
        proxy_set_header            X-Sent-From             "nginx-ingress-controller";
        proxy_set_header            X-Real-IP               $remote_addr;
        proxy_set_header            X-Forwarded-For        $remote_addr;
        proxy_set_header            X-Auth-Request-Redirect $request_uri;
        proxy_buffering             off;
        proxy_ssl_server_name       on;
        proxy_pass_request_headers  on;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        set $target http://auth_proxy/oauth/auth;
        proxy_pass $target;
    }
    location @64e9f3d5e8b2a3c1-signin {
        internal;
        return 302 https://$host/oauth/start;
    }
    location / {
        auth_request /_external-auth-Lw-Prefix;
        auth_request_set $auth_user $upstream_http_x_auth_request_user;
        proxy_set_header X-Auth-Request-User $auth_user;
        error_page 401 = @64e9f3d5e8b2a3c1-signin;
        proxy_set_header Host $http_host;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://app;
    }
}
"""


@pytest.fixture(params=["nginx", "ingress-nginx"])
async def site(
    request: pytest.FixtureRequest, make_proxy: ProxyFactory, fake_provider: FakeProvider
) -> AsyncIterator[tuple[int, list[bytes]]]:
    front = str(request.param)
    proxy = await make_proxy(
        issuer=fake_provider.issuer,
        server={"trusted_proxies": ["127.0.0.1"]},  # nginx connects from there
        authorization={"skip_auth_routes": PUBLIC},
        auth_request={"front": front},
    )
    text = SITE.read_text() if front == "nginx" else INGRESS_NGINX
    async with recording_upstream() as upstream:
        text = text.replace("server 127.0.0.1:4180;", f"server {proxy.url.removeprefix('http://')};")
        text = text.replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream.port};")
        with nginx(text) as (port, _):
            yield port, upstream.seen


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
async def test_only_the_public_route_reaches_the_upstream(
    site: tuple[int, list[bytes]], attack: Attack
) -> None:
    port, seen = site
    # 404: /oauth/start has no POST
    await check_attack(port, seen, attack, f"127.0.0.1:{port}", refused=(302, 400, 404, 500))


async def test_http_1_0_without_host_is_not_public(site: tuple[int, list[bytes]]) -> None:
    port, seen = site
    status, _ = await raw_request(port, Attack("", "/public", host=None).head("", "HTTP/1.0"))
    assert seen == [] and status in (302, 400, 500)
