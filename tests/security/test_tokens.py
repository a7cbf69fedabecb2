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
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from authlib.oidc.core.util import create_half_hash
from joserfc import jws, jwt
from joserfc.jwk import RSAKey

from proxy.errors import TokenInvalid
from proxy.oidc.discovery import JWKS_MIN_REFRESH, Provider
from proxy.oidc.tokens import verify_logout_token
from tests.conftest import ProxyFactory, RunningProxy
from tests.security.conftest import ForgingProvider, is_live
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
