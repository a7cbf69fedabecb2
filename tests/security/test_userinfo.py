"""The UserInfo endpoint as an input (``provider.userinfo``, proxy/oidc/userinfo.py): what a provider
(or whoever answers in its place) can make the proxy believe through it. The answer only fills in
claims the verified ID token lacks, only for the ID token's ``sub``, never the ``sid``; anything
broken fails the sign-in closed (503 page, no session, a log line, no stack trace).

    sub of another user, no sub, sub of another type        401, no session
    500, 401, a redirect (not followed), text/html, a JWT,
    a JSON array, broken JSON, more than 256 kB               503, no session
    'always' with no userinfo_endpoint in discovery          503
    email / sub / iss / nonce in the answer vs the ID token   the ID token's win
    sid in the answer                                         ignored (back-channel logout matches
                                                              the ID token's sid only)
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from proxy.keys import COOKIES, STORE
from tests.conftest import ProxyFactory
from tests.support.browser import navigate, new_browser
from tests.support.fake_provider import FakeProvider

SUB_ONLY = {"sub": "user-1"}
"""An ID token with no profile claims, as zitadel/oidc issues them alongside an access token."""
PROFILE = {"sub": "user-1", "email": "u1@example.test", "preferred_username": "u1", "email_verified": True}


async def sign_in(
    make_proxy: ProxyFactory, fake: FakeProvider, upstream: str, **provider: Any
) -> tuple[Any, Any]:
    proxy = await make_proxy(issuer=fake.issuer, upstream=upstream, provider=provider)
    browser = new_browser()
    page = await navigate(browser, proxy.url + "/oauth/start?rd=/oauth/userinfo")
    await browser.close()
    return proxy, page


BROKEN = [
    pytest.param({"json": {**PROFILE, "sub": "someone-else"}}, 401, id="other-sub"),
    pytest.param({"json": {"email": "u1@example.test"}}, 401, id="no-sub"),
    pytest.param({"json": {**PROFILE, "sub": 1}}, 401, id="numeric-sub"),
    pytest.param({"status": 500}, 503, id="500"),
    pytest.param({"status": 401}, 503, id="401"),
    pytest.param({"status": 302}, 503, id="redirect"),
    pytest.param({"raw": (b"<html>hi</html>", "text/html")}, 503, id="html"),
    pytest.param({"raw": (b"eyJhbGciOiJSUzI1NiJ9.e30.sig", "application/jwt")}, 503, id="signed-jwt"),
    pytest.param({"raw": (b"[1, 2]", "application/json")}, 503, id="array"),
    pytest.param({"raw": (b'{"sub": "user-1"', "application/json")}, 503, id="broken-json"),
    pytest.param({"raw": (b"[" * 100000 + b"]" * 100000, "application/json")}, 503, id="deep-json"),
    pytest.param(
        {"raw": (json.dumps({**PROFILE, "x": "a" * 300_000}).encode(), "application/json")}, 503, id="too-big"
    ),  # fmt: skip
]


@pytest.mark.parametrize(("answer", "status"), BROKEN)
async def test_a_broken_userinfo_answer_fails_the_sign_in_closed(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str, answer: dict[str, Any], status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    fake_provider.claims = dict(SUB_ONLY)
    fake_provider.userinfo = answer.get("json")
    fake_provider.userinfo_raw = answer.get("raw")
    fake_provider.userinfo_status = answer.get("status", 200)
    proxy, page = await sign_in(make_proxy, fake_provider, upstream)
    assert page.status == status, page.text[:300]
    assert "Traceback" not in page.text and "<html" in page.text.lower()
    assert len(fake_provider.userinfo_requests) == 1
    assert fake_provider.userinfo_requests[0].startswith("Bearer ")
    assert [r for r in caplog.records if getattr(r, "event", None) == "login_failed"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_always_without_a_userinfo_endpoint_fails_closed(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    fake_provider.discovery_extra = {"userinfo_endpoint": None}
    _, page = await sign_in(make_proxy, fake_provider, upstream, userinfo="always")
    assert page.status == 503 and not fake_provider.userinfo_requests


async def test_the_id_token_wins_and_sid_never_comes_from_userinfo(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    fake_provider.claims = {"sub": "user-1", "email": "real@example.test"}
    fake_provider.userinfo = {
        "sub": "user-1", "email": "admin@example.test", "preferred_username": "admin", "sid": "victim-sid",
        "iss": "https://evil.example", "nonce": "x", "groups": ["staff"],
    }  # fmt: skip
    proxy = await make_proxy(issuer=fake_provider.issuer, upstream=upstream, provider={"userinfo": "always"})
    async with new_browser() as browser:
        page = await navigate(browser, proxy.url + "/oauth/start?rd=/oauth/userinfo")
        assert page.status == 200, page.text[:300]
        info = json.loads(page.text)
        ticket = proxy.app[COOKIES].decode(
            next(c.value for c in browser.cookie_jar if c.key == "_auth_proxy")
        )
        assert ticket is not None
        session = await proxy.app[STORE].load(ticket)
    assert info["email"] == "real@example.test"  # the ID token's
    assert info["preferred_username"] == "admin" and info["groups"] == ["staff"]  # filled in
    assert session is not None and session.sid is None


@pytest.mark.parametrize(
    ("mode", "id_claims", "asked"),
    [
        ("auto", SUB_ONLY, True),
        ("auto", {"sub": "user-1", "name": "U"}, False),  # the ID token has a profile claim
        ("never", SUB_ONLY, False),
        ("always", PROFILE, True),
    ],
)
async def test_when_userinfo_is_asked(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str, mode: str,
    id_claims: dict[str, Any], asked: bool,
) -> None:  # fmt: skip
    fake_provider.claims = dict(id_claims)
    fake_provider.userinfo = PROFILE
    _, page = await sign_in(make_proxy, fake_provider, upstream, userinfo=mode)
    assert page.status == 200
    assert bool(fake_provider.userinfo_requests) is asked
    assert (json.loads(page.text).get("email") == PROFILE["email"]) is asked
