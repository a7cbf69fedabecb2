"""Back-channel logout against the fake provider: a valid token ends exactly the right sessions;
every malformed, forged or replayed token is refused with 400 and ends nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
import pytest
from joserfc.jwk import RSAKey

from proxy.keys import COOKIES, STORE
from tests.conftest import ProxyFactory, RunningProxy
from tests.support.fake_provider import FakeProvider
from tests.support.login import session_cookie, signed_in_browser


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str) -> RunningProxy:
    return await make_proxy(issuer=fake_provider.issuer, upstream=upstream)


async def live(proxy: RunningProxy, browser: aiohttp.ClientSession) -> bool:
    ticket = proxy.app[COOKIES].decode(session_cookie(browser))
    return ticket is not None and await proxy.app[STORE].load(ticket) is not None


async def post(
    proxy: RunningProxy, token: str | None, content_type: str | None = None
) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as client:
        data: Any = {"logout_token": token} if token is not None else {"other": "x"}
        if content_type == "json":
            data = json.dumps(data)
        headers = {"Content-Type": "application/json"} if content_type == "json" else None
        async with client.post(proxy.url + "/oauth/backchannel_logout", data=data, headers=headers) as r:
            await r.read()
            return r


async def test_logout_by_sid_ends_that_provider_sessions_only(
    proxy: RunningProxy, fake_provider: FakeProvider
) -> None:
    first_sid = fake_provider.claims["sid"]
    async with await signed_in_browser(proxy.url) as a1, await signed_in_browser(proxy.url) as a2:
        fake_provider.claims["sid"] = "sid-other"
        async with await signed_in_browser(proxy.url) as other:
            r = await post(proxy, fake_provider.logout_token(sid=first_sid))
            assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
            assert not await live(proxy, a1) and not await live(proxy, a2)
            assert await live(proxy, other)
            async with a1.get(proxy.url + "/", allow_redirects=False) as resp:
                assert resp.status == 302  # the next request goes to sign in


async def test_logout_by_sub_alone_ends_all_of_the_users_sessions(
    proxy: RunningProxy, fake_provider: FakeProvider
) -> None:
    async with await signed_in_browser(proxy.url) as a1:
        fake_provider.claims["sid"] = "sid-2"
        async with await signed_in_browser(proxy.url) as a2:
            fake_provider.claims.update(sub="user-2", sid="sid-3")
            async with await signed_in_browser(proxy.url) as someone_else:
                r = await post(proxy, fake_provider.logout_token(sub="user-1", drop=("sid",)))
                assert r.status == 200
                assert not await live(proxy, a1) and not await live(proxy, a2)
                assert await live(proxy, someone_else)


async def test_unknown_session_is_still_200(proxy: RunningProxy, fake_provider: FakeProvider) -> None:
    assert (await post(proxy, fake_provider.logout_token(sid="never-seen"))).status == 200


async def test_replayed_token_is_refused(proxy: RunningProxy, fake_provider: FakeProvider) -> None:
    token = fake_provider.logout_token()
    assert (await post(proxy, token)).status == 200
    assert (await post(proxy, token)).status == 400


def b64(obj: dict[str, Any] | bytes) -> str:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unsigned(fake: FakeProvider) -> str:
    now = int(time.time())
    claims = {"iss": fake.issuer, "aud": "proxy", "iat": now, "jti": "x", "sid": "sid-1",
              "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}  # fmt: skip
    return f"{b64({'alg': 'none', 'typ': 'logout+jwt'})}.{b64(claims)}."


def _hmac_with_public_key(fake: FakeProvider) -> str:
    public_pem = fake.key.as_pem(private=False)
    now = int(time.time())
    claims = {"iss": fake.issuer, "aud": "proxy", "iat": now, "jti": "y", "sid": "sid-1",
              "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}  # fmt: skip
    # Forged by hand: joserfc itself refuses to use a public key as an HMAC secret.
    signing_input = f"{b64({'alg': 'HS256', 'kid': 'k1', 'typ': 'logout+jwt'})}.{b64(claims)}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


BAD_TOKENS = {
    "wrong signature": lambda f: f.logout_token(key=RSAKey.generate_key(2048, parameters={"kid": "k1"})),
    "alg none": _unsigned,
    "HS256 keyed with the public key": _hmac_with_public_key,
    "wrong issuer": lambda f: f.logout_token(iss="https://evil.example"),
    "wrong audience": lambda f: f.logout_token(aud="someone-else"),
    "no iat": lambda f: f.logout_token(drop=("iat",)),
    "issued an hour ago": lambda f: f.logout_token(iat=int(time.time()) - 3600, exp=int(time.time()) + 60),
    "issued in the future": lambda f: f.logout_token(iat=int(time.time()) + 3600),
    "expired": lambda f: f.logout_token(exp=int(time.time()) - 600),
    "no jti": lambda f: f.logout_token(drop=("jti",)),
    "no events": lambda f: f.logout_token(drop=("events",)),
    "wrong event": lambda f: f.logout_token(events={"http://example.com/other": {}}),
    "event not an object": lambda f: f.logout_token(
        events={"http://schemas.openid.net/event/backchannel-logout": 1}
    ),
    "neither sid nor sub": lambda f: f.logout_token(drop=("sid", "sub")),
    "has a nonce (an ID token?)": lambda f: f.logout_token(nonce="n"),
    "typ of an access token": lambda f: f.logout_token(header={"alg": "RS256", "kid": "k1", "typ": "at+jwt"}),
    "garbage": lambda f: "not.a.jwt",
    "empty": lambda f: "",
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_bad_tokens_are_refused_and_end_nothing(
    proxy: RunningProxy, fake_provider: FakeProvider, case: str
) -> None:
    async with await signed_in_browser(proxy.url) as browser:
        r = await post(proxy, BAD_TOKENS[case](fake_provider))
        assert r.status == 400 and r.headers["Cache-Control"] == "no-store"
        assert await live(proxy, browser)


async def test_body_must_be_a_form_with_a_token(proxy: RunningProxy, fake_provider: FakeProvider) -> None:
    assert (await post(proxy, None)).status == 400
    assert (await post(proxy, fake_provider.logout_token(), content_type="json")).status == 400


# Front-channel logout: tests/security/test_logout_races.py.
