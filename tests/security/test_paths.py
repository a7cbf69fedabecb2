r"""Path spellings against the real proxy: which upstream's rules apply, public or not, and what the
upstream actually receives (the echo upstream reports the raw path it got), or 400 (refused, never
forwarded). This table *is* the test: each row is parsed and tried, anonymously and signed in.

Columns: the raw path as sent; its canonical reading (``proxy.paths.canonical_path``: decoded once,
``\`` as ``/``, ``;params`` dropped from each segment, ``//`` merged, dot segments removed); the
answer to an anonymous client; the answer to user1 (groups staff, dev). ``sent`` = forwarded, the
upstream received the path exactly as written; ``sent:/x`` = forwarded, the upstream received
``/x``; ``public`` = forwarded without a session. Why a 400: some server (``proxy.paths.READERS``)
would read the path as another upstream's (or as none's), or, mapped onto the base path, above it.

Config "prefixes": ``/`` (everyone), ``/admin`` (group admins: user1 is refused), ``/api/`` (group
staff), all the same upstream; public route ``^/public/``.

    config    raw path                    canonical             anonymous  user1
    prefixes  /admin/x                    /admin/x              401        403
    prefixes  /page                       /page                 401        sent
    prefixes  /public/app.js              /public/app.js        public     public
    prefixes  /api/x                      /api/x                401        sent
    prefixes  /api                        /api                  401        sent
    prefixes  /admin;x/users              /admin/users          400        400
    prefixes  /admin;/users               /admin/users          400        400
    prefixes  /admin/x;y                  /admin/x              401        403
    prefixes  /admin/;x                   /admin/               401        403
    prefixes  /;x/admin/y                 /admin/y              400        400
    prefixes  /page;jsessionid=1          /page                 401        sent
    prefixes  /public/app.js;x            /public/app.js        401        sent
    prefixes  /public;x/app.js            /public/app.js        401        sent
    prefixes  /public/app.js%3Bx          /public/app.js        401        sent
    prefixes  /public%3bx/app.js          /public/app.js        401        sent
    prefixes  /admin%3Bx/users            /admin/users          400        400
    prefixes  /public/..;/admin           /admin                400        400
    prefixes  /public/..;x/admin          /admin                400        400
    prefixes  /public;/../admin           /admin                400        400
    prefixes  /public;x/../admin          /admin                400        400
    prefixes  /public/.;/app.js           /public/app.js        401        sent
    prefixes  /public/..%3B/admin         /admin                400        400
    prefixes  /public/%3B/../admin        /admin                400        400
    prefixes  /public/../admin            /admin                400        400
    prefixes  /public/./app.js            /public/app.js        401        sent
    prefixes  /api/../admin/x             /admin/x              400        400
    prefixes  /api/%2e%2e/admin           /admin                400        400
    prefixes  /api/%2E%2E/admin           /admin                400        400
    prefixes  /api/.%2e/admin             /admin                400        400
    prefixes  /api/..%2fadmin             /admin                400        400
    prefixes  /api/..%2Fadmin             /admin                400        400
    prefixes  /api/..%5cadmin             /admin                400        400
    prefixes  /api/..\admin               /admin                400        400
    prefixes  /api\..\admin               /admin                400        400
    prefixes  /api/%252e%252e/admin       /api/%2e%2e/admin     400        400
    prefixes  /api/%c0%ae%c0%ae/admin     /api/\udcc0\udcae\udcc0\udcae/admin  400  400
    prefixes  /api/%u002e%u002e/admin     /api/%u002e%u002e/admin  400     400
    prefixes  /api/%2561dmin              /api/%61dmin          401        sent
    prefixes  /api/x/../y                 /api/y                401        sent
    prefixes  /api/x/..                   /api/                 401        sent
    prefixes  /api//x                     /api/x                401        sent
    prefixes  //admin/x                   /admin/x              400        400
    prefixes  /./admin/x                  /admin/x              400        400
    prefixes  /admin/..                   /                     400        400
    prefixes  /admin/../page              /page                 400        400
    prefixes  /page/../admin              /admin                400        400
    prefixes  /%61dmin/x                  /admin/x              401        403
    prefixes  /%41dmin/x                  /Admin/x              401        sent
    prefixes  /ADMIN/x                    /ADMIN/x              401        sent
    prefixes  /Admin/x                    /Admin/x              401        sent
    prefixes  /admin./x                   /admin./x             401        sent
    prefixes  /admin../x                  /admin../x            401        sent
    prefixes  /admin%20/x                 /admin\x20/x          401        sent
    prefixes  /admin%00/x                 /admin\x00/x          400        400
    prefixes  /api/%00/../../admin        /admin                400        400
    prefixes  /page%2500                  /page%00              400        400
    prefixes  /api/%ff/x                  /api/\udcff/x         401        sent
    prefixes  /caf%C3%A9                  /café                 401        sent

Config "based": only ``/api/``, mapped onto ``http://upstream/base/``: nothing outside ``/api/``
reaches the upstream, nor anything above ``/base``.

    config    raw path                    canonical             anonymous  user1
    based     /api/x                      /api/x                401        sent:/base/x
    based     /api/                       /api/                 401        sent:/base/
    based     /api/x/../y                 /api/y                401        sent:/base/x/../y
    based     /other                      /other                401        404
    based     /api/../internal            /internal             400        400
    based     /api/%2e%2e/internal        /internal             400        400
    based     /api/..%2finternal          /internal             400        400
    based     /api/..;/internal           /internal             400        400
    based     /api/..\internal            /internal             400        400
    based     /api/%252e%252e/internal    /api/%2e%2e/internal  400        400
    based     /api/../api/x               /api/x                400        400
    based     /api/x/../../api/y          /api/y                400        400
    based     /api;x/y                    /api/y                400        400
    based     /api/x;/../../internal      /internal             400        400

Config "iis": ``/`` and ``/admin`` (group admins) both ``case_insensitive: true``. Config "mixed":
only ``/`` is; a path it would read as ``/admin``'s is refused.

    config    raw path                    canonical             anonymous  user1
    iis       /admin/x                    /admin/x              401        403
    iis       /ADMIN/x                    /ADMIN/x              401        403
    iis       /Admin./x                   /Admin./x             401        403
    iis       /admin%20/x                 /admin\x20/x          401        403
    iis       /page                       /page                 401        sent
    mixed     /ADMIN/x                    /ADMIN/x              400        400
    mixed     /admin./x                   /admin./x             400        400
    mixed     /admin/x                    /admin/x              401        403
    mixed     /Page                       /Page                 401        sent

Request targets no browser sends, over a raw socket (config "prefixes", found by review after the
table above passed): each is a 400 for anonymous and user1 alike, never forwarded.

    /admin#                  yarl would drop the fragment: /admin, judged as "/"'s
    /admin#/../page          likewise /admin
    /admin/x#/../../page     /admin/x
    /public/a#/../../admin/x public route + fragment
    host://x/admin/secret    absolute form: "host" glued to the upstream's host name (SSRF)
    http://x/admin/y         absolute form
    *                        asterisk form

Public routes (``^/public/``) and spellings only a lenient (decode-twice, IIS, overlong UTF-8)
server resolves: never public, at /oauth/auth as on the proxy path (``proxy.paths.is_unambiguous``).

    /public/%c0%ae%c0%ae/admin   /public/%25u002e%25u002e/admin   /public/%u002e%u002e/admin
    /public/..%c0%afadmin        /public/%e0%80%ae%e0%80%ae/admin
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, NamedTuple

import aiohttp
import pytest
from yarl import URL

from proxy.paths import READERS, canonical_path, is_unambiguous, readings
from tests.conftest import ProxyFactory, RunningProxy
from tests.support.fake_provider import FakeProvider
from tests.support.login import signed_in_browser
from tests.support.nginx import nginx


class Case(NamedTuple):
    config: str
    raw: str
    canonical: str
    anonymous: str
    user1: str


def _cases() -> list[Case]:
    rows = []
    for line in (__doc__ or "").splitlines():
        fields = line.split()
        if len(fields) == 5 and fields[0] in ("prefixes", "based", "iis", "mixed"):
            canonical = fields[2].encode("ascii", "backslashreplace").decode("unicode_escape")
            rows.append(Case(fields[0], fields[1], canonical, fields[3], fields[4]))
    return rows


CASES = _cases()

CONFIGS: dict[str, Callable[[str], dict[str, Any]]] = {
    "prefixes": lambda url: {
        "upstreams": [
            {"prefix": "/", "url": url},
            {"prefix": "/admin", "url": url, "allowed_groups": ["admins"]},
            {"prefix": "/api/", "url": url, "allowed_groups": ["staff"]},
        ],
        "authorization": {"skip_auth_routes": ["^/public/"]},
    },
    "based": lambda url: {"upstreams": [{"prefix": "/api/", "url": url + "/base/"}]},
    "iis": lambda url: {
        "upstreams": [
            {"prefix": "/", "url": url, "case_insensitive": True},
            {"prefix": "/admin", "url": url, "allowed_groups": ["admins"], "case_insensitive": True},
        ]
    },
    "mixed": lambda url: {
        "upstreams": [
            {"prefix": "/", "url": url, "case_insensitive": True},
            {"prefix": "/admin", "url": url, "allowed_groups": ["admins"]},
        ]
    },
}


def test_the_table_is_read() -> None:
    assert len(CASES) > 80 and {c.config for c in CASES} == set(CONFIGS)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.config}:{c.raw}")
def test_canonical_reading(case: Case) -> None:
    assert canonical_path(case.raw) == case.canonical


async def _outcome(client: aiohttp.ClientSession, proxy: RunningProxy, raw: str) -> str:
    """The answer as the table writes it."""
    url = URL(proxy.url + raw, encoded=True)  # sent as written: yarl would resolve "..", "%2e"
    async with client.get(url, headers={"Accept": "application/json"}, allow_redirects=False) as r:
        body = await r.json() if r.content_type == "application/json" else await r.text()
        if r.status != 200:
            assert r.status in (400, 401, 403, 404), (r.status, body)
            if r.status == 400:
                assert body["error"] == "Bad request path", body
            return str(r.status)
        assert isinstance(body, dict) and "path_qs" in body, body
        signed_in = any(name == "X-Forwarded-User" for name, _ in body["headers"])
        sent = body["path_qs"]
        if not signed_in:
            return "public" if sent == raw else f"public:{sent}"
        return "sent" if sent == raw else f"sent:{sent}"


@pytest.mark.parametrize("config", list(CONFIGS))
async def test_what_each_spelling_reaches(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str, config: str
) -> None:
    proxy = await make_proxy(issuer=fake_provider.issuer, as_deployed=True, **CONFIGS[config](upstream))
    cases = [c for c in CASES if c.config == config]
    wrong = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as anon:
        async with await signed_in_browser(proxy.url) as user1:
            for case in cases:
                got = (await _outcome(anon, proxy, case.raw), await _outcome(user1, proxy, case.raw))
                if got != (case.anonymous, case.user1):
                    wrong.append(f"{case.raw}: expected {case.anonymous}/{case.user1}, got {got[0]}/{got[1]}")
    assert not wrong, "\n".join(wrong)


async def test_a_refusal_is_logged(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = await make_proxy(issuer=fake_provider.issuer, **CONFIGS["based"](upstream))
    async with aiohttp.ClientSession() as anon:
        async with anon.get(URL(proxy.url + "/api/..;/internal", encoded=True)) as r:
            assert r.status == 400
    refusal = next(r for r in caplog.records if r.getMessage().startswith("path refused"))
    assert refusal.__dict__["status"] == 400 and refusal.__dict__["reading"] == "/api/..;/internal"


NGINX_SITE = """
server {
    listen 80;
    merge_slashes on;
    location / { default_type text/plain; return 200 "$uri"; }
}
"""


async def test_the_nginx_reading_is_how_nginx_reads() -> None:
    """``READERS``' "nginx" against the real nginx: ``$uri`` is the path nginx serves and matches
    ``location``s on. Paths nginx itself refuses (400: ``/..`` above the root, NUL) are skipped."""
    nginx_reader = [r.name for r in READERS].index("nginx")
    compared = 0
    with nginx(NGINX_SITE) as (port, _):
        async with aiohttp.ClientSession() as client:
            for raw in sorted({c.raw for c in CASES}):
                async with client.get(URL(f"http://127.0.0.1:{port}{raw}", encoded=True)) as r:
                    if r.status == 400:
                        continue
                    assert r.status == 200, raw
                    seen = await r.read()
                expected = readings(raw)[nginx_reader].encode("utf-8", "surrogateescape")
                assert seen == expected, raw
                compared += 1
    assert compared > 50


ODD_TARGETS = ["/admin#", "/admin#/../page", "/admin/x#/../../page", "/public/a#/../../admin/x",
               "host://x/admin/secret", "http://x/admin/y", "*"]  # fmt: skip
LENIENT_ONLY = ["/public/%c0%ae%c0%ae/admin", "/public/%25u002e%25u002e/admin", "/public/%u002e%u002e/admin",
                "/public/..%c0%afadmin", "/public/%e0%80%ae%e0%80%ae/admin"]  # fmt: skip


async def _raw_get(url: str, target: str, cookie: str = "") -> tuple[int, bytes]:
    parts = URL(url)
    reader, writer = await asyncio.open_connection(parts.host, parts.port)
    extra = f"Cookie: {cookie}\r\n" if cookie else ""
    head = f"GET {target} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n{extra}Connection: close\r\n\r\n"
    writer.write(head.encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize("target", ODD_TARGETS)
async def test_odd_request_targets_are_refused(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str, target: str
) -> None:
    proxy = await make_proxy(
        issuer=fake_provider.issuer, upstream=None, as_deployed=True, **CONFIGS["prefixes"](upstream)
    )
    async with await signed_in_browser(proxy.url) as user1:
        cookie = "; ".join(f"{c.key}={c.value}" for c in user1.cookie_jar)
    for who in ("", cookie):
        status, body = await _raw_get(proxy.url, target, who)
        assert status == 400, (target, status, body[:200])
        assert b"path_qs" not in body


@pytest.mark.parametrize("raw", LENIENT_ONLY)
def test_a_spelling_only_a_lenient_server_resolves_is_never_public(raw: str) -> None:
    assert not is_unambiguous(raw)
    assert len(set(readings(raw))) > 1


@pytest.mark.parametrize("raw", LENIENT_ONLY)
async def test_lenient_spellings_are_not_public_at_oauth_auth(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, raw: str
) -> None:
    proxy = await make_proxy(
        issuer=fake_provider.issuer,
        authorization={"skip_auth_routes": ["^/public/"]},
        auth_request={"front": "nginx"},
    )
    headers = {"X-Original-Method": "GET", "X-Original-URI": raw, "X-Forwarded-Proto": "http",
               "X-Forwarded-Host": "app.example"}  # fmt: skip
    async with aiohttp.ClientSession() as client:
        async with client.get(proxy.url + "/oauth/auth", headers=headers) as r:
            assert r.status == 401
        headers["X-Original-URI"] = "/public/app.js"
        async with client.get(proxy.url + "/oauth/auth", headers=headers) as r:
            assert r.status == 202
