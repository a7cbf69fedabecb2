"""A failing JWKS endpoint is not refetched for every token naming an unknown kid: failures back off
(``JWKS_RETRY_FIRST`` doubling up to ``JWKS_RETRY_MAX``, reset by a success), concurrent requests
share the fetch in flight, and known kids keep verifying from the cached keys. The clock is injected;
the provider is a tiny aiohttp app whose JWKS answers are scripted (aioresponses 0.7.9 can't build a
response for aiohttp 3.14). tests/security/test_tokens.py runs the same against a real proxy.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from proxy.errors import ProviderUnavailable, TokenInvalid
from proxy.oidc.bearer import verify_access_token
from proxy.oidc.discovery import JWKS_MIN_REFRESH, JWKS_RETRY_FIRST, JWKS_RETRY_MAX, Provider
from tests.support.fake_provider import FakeProvider

KEYS = KeySet([FakeProvider().key]).as_dict(private=False)
OTHER = RSAKey.generate_key(2048, parameters={"kid": "other"})
Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _500(request: web.Request) -> web.StreamResponse:
    return web.Response(status=500, text="down")


async def _hang(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(5)  # past the client's timeout
    return web.json_response(KEYS)


async def _cut(request: web.Request) -> web.StreamResponse:
    assert request.transport is not None
    request.transport.close()
    return web.Response()


async def _bad_json(request: web.Request) -> web.StreamResponse:
    return web.Response(text="{not json", content_type="application/json")


async def _no_key_set(request: web.Request) -> web.StreamResponse:
    return web.json_response({"keys": "nope"})


async def _empty(request: web.Request) -> web.StreamResponse:
    return web.json_response({"keys": []})


def keys(*extra: RSAKey) -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.json_response(KeySet([FakeProvider().key, *extra]).as_dict(private=False))

    return answer


FAILURES: dict[str, Answer] = {
    "500": _500,
    "timeout": _hang,
    "connection cut": _cut,
    "malformed JSON": _bad_json,
    "JSON but no key set": _no_key_set,
    "an empty key set": _empty,
}


HITS_PER_FETCH = {"connection cut": 2}
"""aiohttp's client sends a GET once more when the server drops the connection without an answer."""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Idp:
    """The provider: discovery, and a JWKS endpoint giving the scripted answers in turn."""

    issuer: str = ""
    script: list[Answer] = field(default_factory=list)
    fetches: int = 0
    tokens: FakeProvider = field(default_factory=FakeProvider)

    def then(self, answer: Answer, times: int = 1) -> None:
        self.script.extend([answer] * times)

    async def _discovery(self, request: web.Request) -> web.StreamResponse:
        base = self.issuer
        return web.json_response({"issuer": base, "authorization_endpoint": base + "/auth",
                                  "token_endpoint": base + "/token", "jwks_uri": base + "/jwks"})  # fmt: skip

    async def _jwks(self, request: web.Request) -> web.StreamResponse:
        self.fetches += 1
        return await self.script.pop(0)(request)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        return app


@pytest.fixture
async def idp(aiohttp_server: Any) -> Idp:
    idp = Idp()
    server = await aiohttp_server(idp.app(), host="127.0.0.1")
    idp.issuer = idp.tokens.issuer = str(server.make_url("")).rstrip("/")
    return idp


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as session:
        yield session


def random_kid_token() -> str:
    claims = {"iss": "x", "aud": "proxy", "sub": "x", "typ": "Bearer", "exp": 2**40}
    return jwt.encode({"alg": "RS256", "kid": secrets.token_hex(8), "typ": "JWT"}, claims, OTHER)


async def verify(provider: Provider, token: str) -> dict[str, Any]:
    return await verify_access_token(provider, token, audiences=["proxy"])


@pytest.fixture
async def started(idp: Idp, http: aiohttp.ClientSession) -> tuple[Provider, Clock]:
    """A provider that has fetched its keys once (the JWKS endpoint's later answers: scripted)."""
    clock = Clock()
    provider = Provider(idp.issuer, http, clock=clock)
    await provider.discover()
    idp.then(keys())
    await provider.keys()
    return provider, clock


async def flood(provider: Provider, n: int = 50) -> None:
    """``n`` tokens with random kids, all at once: each one is refused as an unknown key."""
    results = await asyncio.gather(
        *(verify(provider, random_kid_token()) for _ in range(n)), return_exceptions=True
    )
    assert all(isinstance(r, TokenInvalid) and "invalid_key_id" in r.message for r in results), results[:3]


@pytest.mark.parametrize("case", list(FAILURES))
async def test_a_failing_jwks_is_fetched_once_per_backoff(
    started: tuple[Provider, Clock], idp: Idp, case: str
) -> None:
    provider, clock = started
    idp.then(FAILURES[case], times=6)
    per = HITS_PER_FETCH.get(case, 1)

    await flood(provider)
    assert idp.fetches == 1 + per  # the start-up fetch, and one for the whole flood

    clock.now += JWKS_RETRY_FIRST - 0.01
    await flood(provider)
    assert idp.fetches == 1 + per
    clock.now += 0.01
    await flood(provider)
    assert idp.fetches == 1 + 2 * per  # and now 2 × JWKS_RETRY_FIRST without one
    clock.now += 2 * JWKS_RETRY_FIRST - 0.01
    await flood(provider)
    assert idp.fetches == 1 + 2 * per


async def test_known_kids_verify_while_backing_off(started: tuple[Provider, Clock], idp: Idp) -> None:
    provider, _ = started
    idp.then(_500)
    await flood(provider, 5)
    assert (await verify(provider, idp.tokens.access_token()))["sub"] == idp.tokens.claims["sub"]
    assert idp.fetches == 2


async def test_the_backoff_doubles_up_to_the_cap(started: tuple[Provider, Clock], idp: Idp) -> None:
    provider, clock = started
    idp.then(_500, times=9)
    times: list[float] = []
    while len(times) < 9:
        before = idp.fetches
        await flood(provider, 1)
        if idp.fetches > before:
            times.append(clock.now)
        clock.now += 0.5
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert gaps == [min(JWKS_RETRY_FIRST * 2**i, JWKS_RETRY_MAX) for i in range(8)]
    assert gaps[-1] == JWKS_RETRY_MAX


async def test_recovery_after_the_backoff_resets_it(started: tuple[Provider, Clock], idp: Idp) -> None:
    provider, clock = started
    idp.then(_500, times=3)  # the flood, then 2 s later, then 4 s later: backing off 8 s now
    for wait in (0, JWKS_RETRY_FIRST, 2 * JWKS_RETRY_FIRST):
        clock.now += wait
        await flood(provider, 3)
    rotated = RSAKey.generate_key(2048, parameters={"kid": "rotated"})
    idp.then(keys(rotated))
    token = idp.tokens.access_token(key=rotated)
    with pytest.raises(TokenInvalid):
        await verify(provider, token)  # still backing off: not fetched
    assert idp.fetches == 4

    clock.now += 4 * JWKS_RETRY_FIRST
    assert (await verify(provider, token))["sub"] == idp.tokens.claims["sub"]  # fetched: the new key
    assert idp.fetches == 5

    idp.then(_500, times=2)  # a later failure starts again from JWKS_RETRY_FIRST
    clock.now += JWKS_MIN_REFRESH
    await flood(provider, 3)
    clock.now += JWKS_RETRY_FIRST
    await flood(provider, 3)
    assert idp.fetches == 7


async def test_concurrent_requests_share_the_fetch_in_flight(idp: Idp, http: aiohttp.ClientSession) -> None:
    idp.then(_hang)
    provider = Provider(idp.issuer, http, clock=Clock())
    await provider.discover()
    results = await asyncio.gather(*(provider.keys() for _ in range(20)), return_exceptions=True)
    assert idp.fetches == 1
    assert all(isinstance(r, ProviderUnavailable) for r in results)


@pytest.mark.parametrize("case", list(FAILURES))
async def test_without_any_keys_the_provider_is_unavailable_and_backs_off(
    idp: Idp, http: aiohttp.ClientSession, case: str
) -> None:
    clock = Clock()
    per = HITS_PER_FETCH.get(case, 1)
    idp.then(FAILURES[case], times=per)
    idp.then(keys())
    provider = Provider(idp.issuer, http, clock=clock)
    await provider.discover()
    for _ in range(20):
        with pytest.raises(ProviderUnavailable):
            await verify(provider, idp.tokens.access_token())
    assert idp.fetches == per

    clock.now += JWKS_RETRY_FIRST
    assert (await verify(provider, idp.tokens.access_token()))["sub"] == idp.tokens.claims["sub"]
    assert idp.fetches == per + 1
