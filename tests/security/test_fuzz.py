"""Fuzzing the parsers that read what others send: one table of targets, each a hypothesis strategy
and the property that must hold for every value it draws.

  cookie decode          any text, near-miss and mutated real values → ``None``, or a ticket whose
                         encoding is exactly the input (one value, one spelling); never raises
  safe_redirect          any text, URL-shaped attack pieces → ``None`` or a URL on the proxy's own or
                         an allowed host, as both urllib and yarl read it; never raises
  verify_id_token        any text, JWT-shaped values (random header and claims, signed with the
                         provider's real key or not) → verified claims with a string ``sub``, or
                         ``TokenInvalid`` / ``ProviderUnavailable``; nothing else
  verify_logout_token    the same, for back-channel logout tokens
  Identity.from_claims   any JSON object with a ``sub`` → an Identity of strings; never raises
  Session.from_bytes     any bytes, JSON objects shaped like sessions → a Session or ``ValueError``
  TokenResponse.parse    any JSON value, token-response-shaped objects → a TokenResponse or
                         ``ProviderUnavailable``
  Metadata.parse         any JSON value, discovery-shaped objects → Metadata whose algorithms never
                         include ``none`` or HS*, or ``ValueError``
  parse_duration         any value a YAML file or the environment can hold → a positive finite number
                         of seconds, or ``ValueError`` (which config validation reports)

``test_quick`` runs every target briefly in the default test run. ``test_long`` (marked ``fuzz``,
run with ``LONG_FUZZ=1`` as scripts/test.sh does) runs each for many thousands of examples: about
two and a half minutes in all. Hypothesis prints the falsifying value of any failure.
"""

from __future__ import annotations

import base64
import json
import math
import string
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import KeySet, RSAKey

from proxy.config import CookieConfig, parse_duration
from proxy.cookies import CookieCodec
from proxy.errors import ProviderUnavailable, TokenInvalid
from proxy.identity import Identity
from proxy.oidc.client import TokenResponse
from proxy.oidc.discovery import Metadata, Provider
from proxy.oidc.tokens import verify_id_token, verify_logout_token
from proxy.redirects import safe_redirect
from proxy.sessions.base import Session, Ticket
from tests.security.conftest import LONG_FUZZ
from tests.security.test_open_redirects import ALLOWED, ORIGIN, lands_on_own_or_allowed, url_like

ISSUER = "https://idp.example.com/realms/demo"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
CODEC = CookieCodec(CookieConfig.model_validate({"secret": "fuzz-cookie-secret-0123456789abcdef"}), 3600)
B64URL = string.ascii_letters + string.digits + "-_"

# --- values --------------------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
"""What ``json.loads`` can return (NaN and Infinity included: Python's json reads them)."""


def keyed(names: list[str], plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects whose keys are mostly the ones a parser looks for, with plausible or odd values."""
    return st.dictionaries(
        st.sampled_from(names) | st.text(max_size=6), plausible | json_values, max_size=len(names) + 2
    )


# --- cookie values -------------------------------------------------------------------------------


@st.composite
def mutated_cookie(draw: st.DrawFn) -> str:
    value = CODEC.encode(Ticket.new())
    i = draw(st.integers(0, len(value)))
    j = draw(st.integers(i, len(value)))
    return value[:i] + draw(st.text(alphabet=B64URL + ".=+/ %", max_size=4)) + value[j:]


def check_cookie(value: str) -> None:
    ticket = CODEC.decode(value)
    assert ticket is None or CODEC.encode(ticket) == value


# --- tokens ----------------------------------------------------------------------------------------

NOW = int(time.time())
_times = (
    st.sampled_from([NOW, NOW - 30, NOW + 30, NOW - 3600, NOW + 3600, 0, -1, 2**53, 10**20]) | json_values
)
_claim_values = st.one_of(
    st.sampled_from(
        [ISSUER, ISSUER + "/", "proxy", ["proxy"], ["proxy", "other"], "other", "user-1", "n0nce"]
    ),
    _times,
    st.just({"http://schemas.openid.net/event/backchannel-logout": {}}),
)
_CLAIMS = [
    "iss",
    "aud",
    "sub",
    "exp",
    "iat",
    "nbf",
    "nonce",
    "azp",
    "at_hash",
    "sid",
    "jti",
    "events",
    "auth_time",
]
_headers = st.fixed_dictionaries(
    {
        "alg": st.sampled_from(["RS256", "none", "None", "HS256", "RS384", "ES256", "", "PS256"])
        | st.text(max_size=5)
    },
    optional={
        "kid": st.sampled_from(["k1", "k2", ""]) | json_values,
        "typ": st.sampled_from(["JWT", "logout+jwt", "at+jwt", "application/logout+jwt"]) | json_values,
        "crit": json_values,
        "jku": st.just("https://evil.example/jwks"),
    },
)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@st.composite
def jwt_like(draw: st.DrawFn) -> str:
    """Claims as JSON (NaN allowed); either signed by the provider's real key, so that every claim
    check runs, or with a drawn header and signature."""
    claims = draw(keyed(_CLAIMS, _claim_values))
    payload = json.dumps(claims, allow_nan=True).encode()
    if draw(st.booleans()):
        return jws.serialize_compact({"alg": "RS256", "kid": "k1"}, payload, KEY)
    header = json.dumps(draw(_headers), allow_nan=True).encode()
    signature = draw(st.binary(max_size=300))
    return f"{_b64(header)}.{_b64(payload)}.{_b64(signature)}"


_tokens = st.one_of(st.text(), st.text(alphabet=B64URL + ".", max_size=200), jwt_like())


class StaticProvider(Provider):
    """A provider already discovered, with one key: no I/O, so verification never suspends."""

    def __init__(self) -> None:
        self.issuer = ISSUER
        endpoints = {"authorization_endpoint": f"{ISSUER}/auth", "token_endpoint": f"{ISSUER}/token"}
        self._static_metadata = Metadata.parse(
            {"issuer": ISSUER, "jwks_uri": f"{ISSUER}/certs", **endpoints}, ISSUER
        )
        self._static_keys = KeySet([KEY])

    @property
    def metadata(self) -> Metadata:
        return self._static_metadata

    async def keys(self, *, refresh: bool = False) -> KeySet:
        return self._static_keys


PROVIDER = StaticProvider()


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """The result of a coroutine that never awaits anything pending (StaticProvider does no I/O)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise AssertionError("the coroutine waited for I/O")


def check_id_token(token: str) -> None:
    try:
        claims = run(verify_id_token(PROVIDER, token, client_id="proxy", nonce="n0nce", access_token="at"))
    except (TokenInvalid, ProviderUnavailable):
        return
    assert isinstance(claims["sub"], str) and claims["sub"]


def check_logout_token(token: str) -> None:
    try:
        claims = run(verify_logout_token(PROVIDER, token, client_id="proxy"))
    except (TokenInvalid, ProviderUnavailable):
        return
    assert isinstance(claims.get("sid"), str) or isinstance(claims.get("sub"), str)


# --- the other parsers ---------------------------------------------------------------------------

_identity_claims = keyed(
    ["sub", "email", "preferred_username", "name", "groups", "email_verified"],
    st.text(max_size=10) | st.lists(st.text(max_size=5) | st.integers(-5, 5), max_size=4),
).map(lambda d: {**d, "sub": d.get("sub") if isinstance(d.get("sub"), str) else "s"})


def check_identity(claims: dict[str, Any]) -> None:
    identity = Identity.from_claims(claims)
    assert isinstance(identity.sub, str)
    assert all(isinstance(g, str) for g in identity.groups)
    for value in (identity.email, identity.preferred_username, identity.name):
        assert value is None or isinstance(value, str)


_SESSION_KEYS = ["identity", "id_token", "access_token", "refresh_token", "sid", "created_at", "expires_at",
                 "access_expires_at", "refresh_expires_at", "version"]  # fmt: skip
_session_json = keyed(
    _SESSION_KEYS, st.just({"sub": "s"}) | st.integers(-2, 3) | st.text(max_size=5) | st.floats()
).map(lambda d: json.dumps(d, allow_nan=True).encode())


def check_session(raw: bytes) -> None:
    try:
        Session.from_bytes(raw)
    except ValueError:
        return


_token_response = keyed(
    ["access_token", "id_token", "refresh_token", "token_type", "expires_in", "refresh_expires_in"],
    st.sampled_from(["Bearer", "bearer", "at", ""]) | st.floats() | st.integers(-5, 10**6),
)


def check_token_response(doc: Any) -> None:
    try:
        parsed = TokenResponse.parse(doc)
    except ProviderUnavailable:
        return
    assert isinstance(parsed.access_token, str) and parsed.access_token
    assert parsed.expires_in is None or (parsed.expires_in > 0 and not math.isnan(parsed.expires_in))


_discovery = keyed(
    ["issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "end_session_endpoint",
     "id_token_signing_alg_values_supported", "token_endpoint_auth_methods_supported"],
    st.sampled_from([ISSUER, ISSUER + "/", "https://x/y", ""])
    | st.lists(st.sampled_from(["RS256", "none", "HS256", "HS512", "ES256", "hs256"]), max_size=4),
)  # fmt: skip


def check_metadata(doc: Any) -> None:
    try:
        meta = Metadata.parse(doc, ISSUER)
    except ValueError:
        return
    assert meta.id_token_algs and not any(a == "none" or a.startswith("HS") for a in meta.id_token_algs)


_durations = st.one_of(
    st.text(max_size=12),
    st.from_regex(r"\A\s*\d{1,400}(\.\d{1,20})?\s*(ms|s|m|h|d)?\s*\Z"),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    json_values,
)


def check_duration(value: Any) -> None:
    try:
        seconds = parse_duration(value)
    except ValueError:
        return
    assert isinstance(seconds, float) and math.isfinite(seconds) and seconds > 0


def check_redirect(target: str) -> None:
    result = safe_redirect(target, ORIGIN, ALLOWED)
    assert result is None or lands_on_own_or_allowed(result), result


# --- the table -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], None]
    quick: int
    """Examples in the default test run."""
    long: int
    """Examples in the long run (``LONG_FUZZ=1``)."""


_cookies = st.one_of(
    st.text(), st.text(alphabet=B64URL + ".=", max_size=120).map(lambda t: "1." + t), mutated_cookie()
)
_claims = st.one_of(_identity_claims, json_values.map(lambda v: {"sub": "s", "groups": v}))

TARGETS = {
    "cookie decode": Target(_cookies, check_cookie, 100, 30_000),
    "safe_redirect": Target(st.one_of(st.text(), url_like()), check_redirect, 100, 30_000),
    "verify_id_token": Target(_tokens, check_id_token, 40, 9_000),
    "verify_logout_token": Target(_tokens, check_logout_token, 40, 9_000),
    "Identity.from_claims": Target(_claims, check_identity, 100, 7_000),
    "Session.from_bytes": Target(st.one_of(st.binary(), _session_json), check_session, 100, 11_000),
    "TokenResponse.parse": Target(st.one_of(json_values, _token_response), check_token_response, 100, 9_000),
    "Metadata.parse": Target(st.one_of(json_values, _discovery), check_metadata, 100, 8_000),
    "parse_duration": Target(_durations, check_duration, 100, 11_000),
}  # fmt: skip


def fuzz(target: Target, examples: int) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(target.strategy)
    def holds(value: Any) -> None:
        target.check(value)

    holds()


@pytest.mark.parametrize("name", list(TARGETS))
def test_quick(name: str) -> None:
    fuzz(TARGETS[name], TARGETS[name].quick)


@pytest.mark.fuzz
@pytest.mark.skipif(not LONG_FUZZ, reason="the long fuzz run: LONG_FUZZ=1 (scripts/test.sh sets it)")
@pytest.mark.parametrize("name", list(TARGETS))
def test_long(name: str) -> None:
    fuzz(TARGETS[name], TARGETS[name].long)


# --- regressions the fuzzing found ---------------------------------------------------------------


def test_a_duration_too_large_for_a_float_is_a_value_error() -> None:
    """YAML reads ``lifetime: 1000...0`` (400 digits) as an int; float() of it overflowed."""
    with pytest.raises(ValueError, match="positive, finite"):
        parse_duration(10**400)
