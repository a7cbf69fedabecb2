"""Attack table for ``file:///dir`` upstreams: no spelling of a path reaches a file outside the
directory (encoded, double-encoded, backslash, ``..;``, NUL, overlong UTF-8, symlinks pointing out,
a precompressed sibling pointing out), directories are never listed, only GET and HEAD. Sent over
the wire as written, by a signed-in user (so every case reaches the file server unless the router
refuses it first) and by nobody (public route)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from tests.conftest import ProxyFactory, RunningProxy
from tests.support.fake_provider import FakeProvider
from tests.support.login import signed_in_browser

SECRET = b"TOP-SECRET outside the served directory"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "secret.txt").write_bytes(SECRET)
    public = tmp_path / "public"
    (public / "docs").mkdir(parents=True)
    (public / "index.html").write_text("<h1>home</h1>")
    (public / "a.txt").write_text("file a")
    (public / "docs" / "b.txt").write_text("file b")
    (public / "nested-no-index").mkdir()
    (public / "nested-no-index" / "c.txt").write_text("c")
    (public / "%2e%2e").write_text("a file literally named %2e%2e")
    os.symlink(tmp_path / "secret.txt", public / "link-out.txt")
    os.symlink("../secret.txt", public / "relative-link-out.txt")
    os.symlink(tmp_path, public / "dir-link-out")
    os.symlink(public / "a.txt", public / "link-in.txt")
    (public / "z.txt").write_text("z plain")
    os.symlink(tmp_path / "secret.txt", public / "z.txt.gz")  # FileResponse would pick it for gzip
    return public


@pytest.fixture
async def proxy(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str, site: Path
) -> RunningProxy:
    return await make_proxy(
        issuer=fake_provider.issuer,
        upstreams=[{"prefix": "/", "url": upstream}, {"prefix": "/files/", "url": f"file://{site}"}],
        authorization={"skip_auth_routes": ["^/files/"]},
        as_deployed=True,
    )


@pytest.fixture
async def browser(proxy: RunningProxy) -> AsyncIterator[aiohttp.ClientSession]:
    async with await signed_in_browser(proxy.url) as b:
        yield b


# raw path → what the file server answers: a body it served, or a status
SERVED = [
    ("/files/a.txt", b"file a"),
    ("/files/docs/b.txt", b"file b"),
    ("/files/", b"<h1>home</h1>"),
    ("/files/index.html", b"<h1>home</h1>"),
    ("/files/%61.txt", b"file a"),
    ("/files/docs/../a.txt", b"file a"),  # resolved inside: fine, and what every server reads
    ("/files/link-in.txt", b"file a"),  # a symlink that stays inside
]
REFUSED = [
    # dot segments out of the directory, in every spelling
    "/files/../secret.txt",
    "/files/%2e%2e/secret.txt",
    "/files/%2E%2E/secret.txt",
    "/files/.%2e/secret.txt",
    "/files/%252e%252e/secret.txt",
    "/files/%252e%252e",  # a name to most servers, '..' to one decoding twice: refused
    "/files/..%2fsecret.txt",
    "/files/..%2Fsecret.txt",
    "/files/..%252fsecret.txt",
    "/files/..\\secret.txt",
    "/files/..%5csecret.txt",
    "/files/%5c..%5csecret.txt",
    "/files/..;/secret.txt",
    "/files/..%3b/secret.txt",
    "/files/docs/..;/..;/secret.txt",
    "/files/%c0%ae%c0%ae/secret.txt",
    "/files/%e0%80%ae%e0%80%ae/secret.txt",
    "/files/%u002e%u002e/secret.txt",
    "/files//../secret.txt",
    "/files/docs/../../secret.txt",
    "/files/a.txt%00.html",
    "/files/a.txt%00",
    # symlinks that point out
    "/files/link-out.txt",
    "/files/relative-link-out.txt",
    "/files/dir-link-out/secret.txt",
    "/files/dir-link-out/",
    # directories: never a listing
    "/files/docs/",
    "/files/docs",
    "/files/nested-no-index/",
    # not there / not a file
    "/files/missing.txt",
    "/files/a.txt/",
    "/files/%ff%fe.txt",
]


async def _get(
    client: aiohttp.ClientSession, proxy: RunningProxy, raw: str, **headers: str
) -> tuple[int, bytes]:
    async with client.get(URL(proxy.url + raw, encoded=True), allow_redirects=False, headers=headers) as r:
        return r.status, await r.read()


@pytest.mark.parametrize(("raw", "body"), SERVED)
async def test_files_inside_are_served(proxy: RunningProxy, browser: aiohttp.ClientSession, raw: str,
                                       body: bytes) -> None:  # fmt: skip
    status, got = await _get(browser, proxy, raw)
    assert (status, got) == (200, body)


async def test_every_escape_attempt_fails_for_a_user_and_for_nobody(
    proxy: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    wrong = []
    async with aiohttp.ClientSession() as anon:
        for raw in REFUSED:
            for who, client in (("user", browser), ("anonymous", anon)):
                status, body = await _get(client, proxy, raw)
                if SECRET in body or status == 200 or status >= 500:
                    wrong.append(f"{who} {raw}: {status} {body[:60]!r}")
                elif status not in (400, 404) and not (who == "anonymous" and status in (302, 401)):
                    wrong.append(f"{who} {raw}: unexpected {status}")
    assert not wrong, "\n".join(wrong)


async def test_a_precompressed_sibling_pointing_out_is_never_sent(
    proxy: RunningProxy, browser: aiohttp.ClientSession
) -> None:
    for encoding in ("gzip", "identity"):
        status, body = await _get(browser, proxy, "/files/z.txt", **{"Accept-Encoding": encoding})
        assert SECRET not in body and status == 404, (encoding, status)


async def test_only_get_and_head(proxy: RunningProxy, browser: aiohttp.ClientSession) -> None:
    async with browser.head(proxy.url + "/files/a.txt") as r:
        assert r.status == 200 and r.headers["Content-Length"] == "6"
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        async with browser.request(method, proxy.url + "/files/a.txt", data=b"x") as r:
            assert r.status == 405 and r.headers["Allow"] == "GET, HEAD", method
    async with browser.get(proxy.url + "/files/a.txt") as r:
        assert r.headers["X-Content-Type-Options"] == "nosniff"
