"""Forged and broken tokens: ID tokens at the callback, logout tokens at back-channel logout.

Each ID token below is what the provider's token endpoint returns for an otherwise correct login; the
callback answers 401 and sets no session cookie:

  alg none, alg "None", alg "NONE", alg none keeping a real signature, signature stripped,
  HS256 keyed with the provider's public key (PEM), an algorithm the provider doesn't use (RS384 with
  the right key), payload changed under a real signature, unknown kid (another key), no kid (another
  key), the attacker's key embedded as a jwk header, a jku header naming the attacker's JWKS,
  wrong iss, iss with a trailing slash, aud another client, aud a list with another party as azp,
  no aud, expired beyond the 60 s leeway, issued an hour in the future, not valid before an hour from
  now, no exp, no iat, no sub, at_hash of another access token.
  (Already in tests/handlers/test_auth.py: signed by another key with the right kid, wrong nonce,
  wrong aud with azp, expired.)

Logout tokens, on top of tests/handlers/test_backchannel.py's table (alg none, HS256 with the public
key, wrong iss/aud, no/old/future iat, expired, no jti, events, sid/sub, nonce, typ): unknown kid, no
kid, embedded jwk, jku, alg "None", RS384 with the right key, payload changed under a real signature,
signature stripped, iss with a trailing slash, iat as a string, iat NaN. Each: 400, nothing ended.

Unknown kid: the JWKS is refetched once, then not again for 10 s whatever the flood: 50 logout tokens
with unknown kids cost one fetch; with the clock moved 9.9 s none, at 10 s one more.

A failing JWKS endpoint (500) and tokens with random kids, the proxy's clock injected:

  50 bearer tokens with random kids at once, keys cached     → each 401 invalid_token; one fetch
  a bearer token with a known kid, while backing off         → 200 from the cached keys; no fetch
  a logout token with an unknown kid, while backing off      → 400, nothing ended; no fetch
  50 more after 2 s (the first backoff)                      → 401 each; one more fetch
  the endpoint back, a rotated key, after the 4 s backoff    → the new key's token 200; one fetch
  an ID token with an unknown kid at the callback, failing   → the error page (401), no session; one
      fetch for two logins
  20 bearer tokens with the JWKS never fetched and failing   → 503 each; one fetch
  (tests/unit/oidc/test_jwks_backoff.py: 500, timeout, connection cut, malformed JSON, JSON that is no
  key set, an empty key set: one fetch per backoff; the backoff doubling from 2 s to a 60 s cap and
  reset by a success; 20 concurrent requests sharing one slow fetch.)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from authlib.oidc.core.util import create_half_hash
from joserfc import jws, jwt
from joserfc.jwk import KeySet, RSAKey

from proxy.errors import TokenInvalid
from proxy.keys import PROVIDERS
from proxy.oidc.discovery import JWKS_MIN_REFRESH, JWKS_RETRY_FIRST, Provider
from proxy.oidc.tokens import verify_logout_token
from tests.conftest import ProxyFactory, RunningProxy
from tests.security.conftest import KEY, ForgingProvider, is_live
from tests.support.browser import navigate, new_browser
from tests.support.fake_provider import FakeProvider
from tests.support.login import session_cookie, signed_in_browser

ATTACKER = RSAKey.generate_key(2048, parameters={"kid": "attacker"})


def b64(raw: bytes | dict[str, Any]) -> str:
    data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(alg: str) -> Callable[[FakeProvider, dict[str, Any]], str]:
    return lambda p, c: f"{b64({'alg': alg})}.{b64(c)}."


def none_keeping_signature(p: FakeProvider, c: dict[str, Any]) -> str:
    real = p.sign(c)
    return f"{b64({'alg': 'none'})}.{b64(c)}.{real.split('.')[2]}"


def signature_stripped(p: FakeProvider, c: dict[str, Any]) -> str:
    head, body, _ = p.sign(c).split(".")
    return f"{head}.{body}."


def hmac_with_public_key(p: FakeProvider, c: dict[str, Any], typ: str = "JWT") -> str:
    signing_input = f"{b64({'alg': 'HS256', 'kid': p.key.kid, 'typ': typ})}.{b64(c)}"
    mac = hmac.new(p.key.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def other_alg(p: FakeProvider, c: dict[str, Any], typ: str = "JWT") -> str:
    return jwt.encode({"alg": "RS384", "kid": p.key.kid, "typ": typ}, c, p.key, algorithms=["RS384"])


def payload_changed(p: FakeProvider, c: dict[str, Any]) -> str:
    head, _, sig = p.sign(c).split(".")
    return f"{head}.{b64({**c, 'sub': 'admin'})}.{sig}"


def unknown_kid(p: FakeProvider, c: dict[str, Any], typ: str = "JWT") -> str:
    return jwt.encode({"alg": "RS256", "kid": "unknown", "typ": typ}, c, ATTACKER)


def no_kid(p: FakeProvider, c: dict[str, Any], typ: str = "JWT") -> str:
    return jwt.encode({"alg": "RS256", "typ": typ}, c, ATTACKER)


def embedded_jwk(p: FakeProvider, c: dict[str, Any], typ: str = "JWT") -> str:
    header = {"alg": "RS256", "typ": typ, "jwk": ATTACKER.as_dict(private=False)}
    return jwt.encode(header, c, ATTACKER)


def jku(p: FakeProvider, c: dict[str, Any], typ: str = "JWT") -> str:
    header = {"alg": "RS256", "kid": "attacker", "typ": typ, "jku": "https://evil.example/jwks"}
    return jwt.encode(header, c, ATTACKER)


def claims(**changes: Any) -> Callable[[FakeProvider, dict[str, Any]], str]:
    """Signed with the right key; ``changes`` applied (``None`` drops the claim)."""

    def forge(p: FakeProvider, c: dict[str, Any]) -> str:
        c = {**c, **changes}
        return p.sign({k: v for k, v in c.items() if v is not None})

    return forge


NOW = int(time.time())

BAD_ID_TOKENS: dict[str, Callable[[FakeProvider, dict[str, Any]], str]] = {
    "alg none": unsigned("none"),
    "alg None": unsigned("None"),
    "alg NONE": unsigned("NONE"),
    "alg none keeping a real signature": none_keeping_signature,
    "signature stripped": signature_stripped,
    "HS256 keyed with the public key": hmac_with_public_key,
    "RS384 with the right key": other_alg,
    "payload changed under a real signature": payload_changed,
    "unknown kid": unknown_kid,
    "no kid": no_kid,
    "embedded jwk header": embedded_jwk,
    "jku header": jku,
    "wrong iss": claims(iss="https://evil.example/realms/demo"),
    "iss with a trailing slash": lambda p, c: claims(iss=p.issuer + "/")(p, c),
    "aud another client": claims(aud="other-client", azp=None),
    "aud a list, azp another party": claims(aud=["proxy", "other-client"], azp="other-client"),
    "no aud": claims(aud=None),
    "expired beyond the leeway": claims(iat=NOW - 600, exp=NOW - 120),
    "issued an hour in the future": claims(iat=NOW + 3600, exp=NOW + 7200),
    "not valid before an hour from now": claims(nbf=NOW + 3600),
    "no exp": claims(exp=None),
    "no iat": claims(iat=None),
    "no sub": claims(sub=None),
    "at_hash of another access token": claims(at_hash=create_half_hash("another", "RS256").decode()),
}


@pytest.fixture
async def forging_proxy(
    make_proxy: ProxyFactory, forging_provider: ForgingProvider, upstream: str
) -> RunningProxy:
    return await make_proxy(issuer=forging_provider.issuer, upstream=upstream, as_deployed=True)


@pytest.mark.parametrize("case", list(BAD_ID_TOKENS))
async def test_forged_id_token_at_the_callback(
    forging_proxy: RunningProxy, forging_provider: ForgingProvider, case: str
) -> None:
    forging_provider.forge = BAD_ID_TOKENS[case]
    async with new_browser() as browser:
        page = await navigate(browser, forging_proxy.url + "/oauth/start?rd=/oauth/userinfo")

        assert page.status == 401, page.text[:300]
        assert "Try again" in page.text and "Traceback" not in page.text
        assert not any(c.key == "_auth_proxy" for c in browser.cookie_jar)


async def test_the_forging_provider_signs_honestly_by_default(forging_proxy: RunningProxy) -> None:
    async with new_browser() as browser:
        assert (await navigate(browser, forging_proxy.url + "/oauth/start?rd=/oauth/userinfo")).status == 200


# --- logout tokens -------------------------------------------------------------------------------


def logout_forge(forge: Callable[..., str]) -> Callable[[FakeProvider], str]:
    """A forgery made from the claims of a valid logout token."""

    def make(p: FakeProvider) -> str:
        valid = jwt.decode(p.logout_token(), p.key).claims
        return forge(p, dict(valid), typ="logout+jwt")

    return make


def _raw_logout(p: FakeProvider, **changes: Any) -> str:
    """A logout token, correctly signed, whose claims JSON carries values joserfc wouldn't encode."""
    valid = dict(jwt.decode(p.logout_token(), p.key).claims)
    payload = json.dumps({**valid, **changes}, allow_nan=True).encode()
    return jws.serialize_compact({"alg": "RS256", "kid": p.key.kid, "typ": "logout+jwt"}, payload, p.key)


BAD_LOGOUT_TOKENS: dict[str, Callable[[FakeProvider], str]] = {
    "unknown kid": logout_forge(unknown_kid),
    "no kid": logout_forge(no_kid),
    "embedded jwk header": logout_forge(embedded_jwk),
    "jku header": logout_forge(jku),
    "RS384 with the right key": logout_forge(other_alg),
    "HS256 keyed with the public key, kid of the real key": logout_forge(hmac_with_public_key),
    "alg None": lambda p: f"{b64({'alg': 'None', 'typ': 'logout+jwt'})}.{p.logout_token().split('.')[1]}.",
    "payload changed under a real signature": lambda p: payload_changed(
        p, dict(jwt.decode(p.logout_token(), p.key).claims)
    ),
    "signature stripped": lambda p: p.logout_token().rpartition(".")[0] + ".",
    "iss with a trailing slash": lambda p: p.logout_token(iss=p.issuer + "/"),
    "iat as a string": lambda p: _raw_logout(p, iat=str(int(time.time()))),
    "iat NaN": lambda p: _raw_logout(p, iat=float("nan")),
}


async def post_logout(proxy: RunningProxy, token: str) -> int:
    async with aiohttp.ClientSession() as client:
        async with client.post(proxy.url + "/oauth/backchannel_logout", data={"logout_token": token}) as r:
            return r.status


@pytest.mark.parametrize("case", list(BAD_LOGOUT_TOKENS))
async def test_forged_logout_token_ends_nothing(
    proxy: RunningProxy, fake_provider: FakeProvider, case: str
) -> None:
    async with await signed_in_browser(proxy.url) as browser:
        assert await post_logout(proxy, BAD_LOGOUT_TOKENS[case](fake_provider)) == 400

        assert await is_live(proxy, session_cookie(browser))


# --- the unknown-kid refetch is rate limited -------------------------------------------------


async def test_a_flood_of_unknown_kids_costs_one_jwks_fetch(
    proxy: RunningProxy, fake_provider: FakeProvider
) -> None:
    async with await signed_in_browser(proxy.url):
        pass  # the keys are cached now
    before = fake_provider.jwks_requests
    forged = [logout_forge(unknown_kid)(fake_provider) for _ in range(50)]

    statuses = await asyncio.gather(*(post_logout(proxy, t) for t in forged))

    assert set(statuses) == {400}
    assert fake_provider.jwks_requests - before <= 1


async def test_the_refetch_waits_10_seconds_between_floods(fake_provider: FakeProvider) -> None:
    now = [1000.0]
    async with aiohttp.ClientSession() as http:
        provider = Provider(fake_provider.issuer, http, clock=lambda: now[0])
        await provider.discover()
        await provider.keys()
        forged = [logout_forge(unknown_kid)(fake_provider) for _ in range(20)]

        async def flood() -> int:
            before = fake_provider.jwks_requests
            for token in forged:
                with pytest.raises(TokenInvalid):
                    await verify_logout_token(provider, token, client_id="proxy")
            return fake_provider.jwks_requests - before

        assert await flood() == 1
        now[0] += JWKS_MIN_REFRESH - 0.1
        assert await flood() == 0
        now[0] += 0.1
        assert await flood() == 1


# --- a failing JWKS endpoint backs off ---------------------------------------------------------


@dataclass
class FlakyJwksProvider(ForgingProvider):
    """The forging provider, whose JWKS endpoint can be down (500) or serve more keys."""

    jwks_down: bool = False
    more_keys: list[RSAKey] = field(default_factory=list)

    async def jwks(self, request: web.Request) -> web.Response:
        self.jwks_requests += 1
        if self.jwks_down:
            return web.Response(status=500, text="down")
        return web.json_response(KeySet([self.key, *self.more_keys]).as_dict(private=False))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def flaky(aiohttp_server: Any) -> FlakyJwksProvider:
    provider = FlakyJwksProvider(key=KEY, access_token_jwt=True)
    server = await aiohttp_server(provider.app(), host="127.0.0.1")
    provider.issuer = str(server.make_url("")).rstrip("/")
    return provider


@pytest.fixture
async def flaky_proxy(
    make_proxy: ProxyFactory, flaky: FlakyJwksProvider, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[RunningProxy, Clock]:
    proxy = await make_proxy(
        issuer=flaky.issuer, upstream=upstream, as_deployed=True, api={"accept_bearer": True}
    )
    clock = Clock()
    monkeypatch.setattr(proxy.app[PROVIDERS].default.discovery, "_clock", clock)
    return proxy, clock


def random_kid_bearer(p: FakeProvider) -> str:
    claims = dict(jwt.decode(p.access_token(), p.key).claims)
    return jwt.encode({"alg": "RS256", "kid": secrets.token_hex(8), "typ": "JWT"}, claims, ATTACKER)


async def bearer(proxy: RunningProxy, token: str) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    async with aiohttp.ClientSession() as client:
        async with client.get(proxy.url + "/api", headers=headers) as r:
            return r.status, r.headers.get("WWW-Authenticate", "")


async def bearer_flood(proxy: RunningProxy, p: FakeProvider, n: int = 50) -> None:
    answers = await asyncio.gather(*(bearer(proxy, random_kid_bearer(p)) for _ in range(n)))
    assert all(status == 401 and 'error="invalid_token"' in h for status, h in answers), answers[:3]


async def test_a_failing_jwks_is_not_hammered_by_unknown_kids(
    flaky_proxy: tuple[RunningProxy, Clock], flaky: FlakyJwksProvider
) -> None:
    proxy, clock = flaky_proxy
    async with await signed_in_browser(proxy.url) as browser:
        assert (await bearer(proxy, flaky.access_token()))[0] == 200  # the keys are cached now
        flaky.jwks_down = True
        before = flaky.jwks_requests

        await bearer_flood(proxy, flaky)
        assert flaky.jwks_requests - before == 1
        assert (await bearer(proxy, flaky.access_token()))[0] == 200
        assert await post_logout(proxy, logout_forge(unknown_kid)(flaky)) == 400
        assert await is_live(proxy, session_cookie(browser))
        assert flaky.jwks_requests - before == 1

        clock.now += JWKS_RETRY_FIRST
        await bearer_flood(proxy, flaky)
        assert flaky.jwks_requests - before == 2

        rotated = RSAKey.generate_key(2048, parameters={"kid": "rotated"})
        flaky.jwks_down, flaky.more_keys = False, [rotated]
        clock.now += 2 * JWKS_RETRY_FIRST
        assert (await bearer(proxy, flaky.access_token(key=rotated)))[0] == 200
        assert flaky.jwks_requests - before == 3


async def test_the_callback_refuses_an_unknown_kid_while_the_jwks_fails(
    flaky_proxy: tuple[RunningProxy, Clock], flaky: FlakyJwksProvider
) -> None:
    proxy, _ = flaky_proxy
    async with await signed_in_browser(proxy.url):
        pass  # the keys are cached now
    flaky.jwks_down, flaky.forge = True, unknown_kid
    before = flaky.jwks_requests
    for _ in range(2):
        async with new_browser() as browser:
            page = await navigate(browser, proxy.url + "/oauth/start?rd=/oauth/userinfo")
            assert page.status == 401, page.text[:300]
            assert "Try again" in page.text and "Traceback" not in page.text
            assert not any(c.key == "_auth_proxy" for c in browser.cookie_jar)
    assert flaky.jwks_requests - before == 1


async def test_without_keys_a_failing_jwks_is_503_and_fetched_once(
    flaky_proxy: tuple[RunningProxy, Clock], flaky: FlakyJwksProvider
) -> None:
    proxy, _ = flaky_proxy
    flaky.jwks_down = True
    answers = await asyncio.gather(*(bearer(proxy, flaky.access_token()) for _ in range(20)))
    assert {status for status, _ in answers} == {503}
    assert flaky.jwks_requests == 1
