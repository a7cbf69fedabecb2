"""proxy.oidc.bearer: access tokens as API credentials, and their claims at sign-in."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from proxy.config import AuthorizationConfig
from proxy.errors import TokenInvalid
from proxy.oidc.bearer import bearer_token, issued_access_token_claims, login_identity, verify_access_token
from proxy.oidc.discovery import Provider
from tests.support.fake_provider import FakeProvider


@pytest.fixture
async def provider(fake_provider: FakeProvider) -> AsyncIterator[Provider]:
    async with aiohttp.ClientSession() as http:
        p = Provider(fake_provider.issuer, http)
        await p.discover()
        yield p


async def verify(provider: Provider, token: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("audiences", ["proxy"])
    return await verify_access_token(provider, token, **kwargs)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer  abc", "abc"),
        ("BEARER abc", "abc"),
        ("Bearer", ""),
        ("Basic dXNlcjpwYXNz", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, value: str | None) -> None:
    assert bearer_token(header) == value


async def test_a_keycloak_access_token_is_accepted(provider: Provider, fake_provider: FakeProvider) -> None:
    claims = await verify(provider, fake_provider.access_token())
    assert claims["sub"] == "user-1" and claims["realm_access"] == {"roles": ["proxy-user"]}


async def test_an_rfc9068_access_token_is_accepted(provider: Provider, fake_provider: FakeProvider) -> None:
    header = {"alg": "RS256", "kid": "k1", "typ": "at+jwt"}
    await verify(provider, fake_provider.access_token(header=header, drop=("typ",)))
    header["typ"] = "application/at+jwt"
    await verify(provider, fake_provider.access_token(header=header, drop=("typ",)))


async def test_any_configured_audience_will_do(provider: Provider, fake_provider: FakeProvider) -> None:
    token = fake_provider.access_token(aud=["account", "orders-api"])
    await verify(provider, token, audiences=["orders-api", "proxy"])
    with pytest.raises(TokenInvalid, match="aud"):
        await verify(provider, token)


async def test_empty_token(provider: Provider) -> None:
    with pytest.raises(TokenInvalid, match="empty"):
        await verify(provider, "")


@pytest.mark.parametrize(
    ("overrides", "drop", "message"),
    [
        ({"aud": "account"}, (), "aud"),  # Keycloak's default, without an Audience mapper
        ({}, ("aud",), "aud"),
        ({"iss": "https://evil.example"}, (), "iss"),
        ({}, ("iss",), "iss"),
        ({"exp": int(time.time()) - 3600}, (), "expired"),
        ({}, ("exp",), "exp"),
        ({"nbf": int(time.time()) + 3600}, (), "not yet valid"),
        ({}, ("sub",), "sub"),
        ({"typ": "ID"}, (), "not an access token"),  # a Keycloak ID token
        ({"typ": "Refresh"}, (), "not an access token"),
        ({"typ": "Logout"}, (), "not an access token"),
        ({}, ("typ",), "not an access token"),  # nothing says it is an access token
    ],
)
async def test_bad_claims_are_refused(
    provider: Provider, fake_provider: FakeProvider, overrides: dict[str, Any], drop: tuple[str, ...],
    message: str,
) -> None:  # fmt: skip
    with pytest.raises(TokenInvalid, match=message):
        await verify(provider, fake_provider.access_token(drop=drop, **overrides))


async def test_id_tokens_are_never_bearer_tokens(provider: Provider, fake_provider: FakeProvider) -> None:
    # aud = our client id, signed by the provider: only its kind tells it apart
    id_token = fake_provider.id_token("nonce", "access")
    with pytest.raises(TokenInvalid, match="not an access token"):
        await verify(provider, id_token)
    keycloak_id_token = fake_provider.id_token("nonce", "access", typ="ID")
    with pytest.raises(TokenInvalid, match="not an access token"):
        await verify(provider, keycloak_id_token)


async def test_logout_tokens_are_never_bearer_tokens(provider: Provider, fake_provider: FakeProvider) -> None:
    with pytest.raises(TokenInvalid, match="not an access token"):
        await verify(provider, fake_provider.logout_token())
    with pytest.raises(TokenInvalid, match="not an access token"):  # even one that claims typ Bearer
        await verify(provider, fake_provider.logout_token(typ="Bearer"))
    header = {"alg": "RS256", "kid": "k1", "typ": "JWT"}
    with pytest.raises(TokenInvalid, match="not an access token"):  # or hides its header typ
        await verify(provider, fake_provider.logout_token(typ="Bearer", header=header))


async def test_rfc9068_header_does_not_launder_an_id_token(
    provider: Provider, fake_provider: FakeProvider
) -> None:
    header = {"alg": "RS256", "kid": "k1", "typ": "at+jwt"}
    with pytest.raises(TokenInvalid, match="not an access token"):
        await verify(provider, fake_provider.access_token(header=header, typ="ID"))


async def test_signature_is_checked(provider: Provider, fake_provider: FakeProvider) -> None:
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    with pytest.raises(TokenInvalid, match="signature"):
        await verify(provider, fake_provider.access_token(key=other))


@pytest.mark.parametrize("alg", ["HS256", "none"])
async def test_symmetric_and_unsigned_tokens_are_refused(
    provider: Provider, fake_provider: FakeProvider, alg: str
) -> None:
    claims = jwt.decode(fake_provider.access_token(), fake_provider.key).claims
    if alg == "none":
        token = ".".join(fake_provider.access_token().split(".")[:2]) + "."
    else:
        token = jwt.encode({"alg": alg, "kid": "k1"}, claims, OctKey.generate_key(256))
    with pytest.raises(TokenInvalid):
        await verify(provider, token)


async def test_a_rotated_key_is_fetched_once(provider: Provider, fake_provider: FakeProvider) -> None:
    await verify(provider, fake_provider.access_token())
    before = fake_provider.jwks_requests
    fake_provider.key = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    await verify(provider, fake_provider.access_token())
    assert fake_provider.jwks_requests == before + 1


async def test_authorized_parties(provider: Provider, fake_provider: FakeProvider) -> None:
    token = fake_provider.access_token(azp="other-app")
    await verify(provider, token)  # aud names us: by default the issuing client does not matter
    await verify(provider, token, authorized_parties=["proxy", "other-app"])
    with pytest.raises(TokenInvalid, match="issued to 'other-app'"):
        await verify(provider, token, authorized_parties=["proxy"])
    with pytest.raises(TokenInvalid, match="issued to None"):
        await verify(provider, fake_provider.access_token(drop=("azp",)), authorized_parties=["proxy"])


@pytest.mark.parametrize("token", ["opaque-random-string", "a.b", "a.b.c.d.e", "!!.??.##", ""])
def test_opaque_access_tokens_have_no_claims(token: str) -> None:
    assert issued_access_token_claims(token, {"sub": "s"}) is None


def test_access_token_claims_are_read_when_they_speak_of_the_same_user(fake_provider: FakeProvider) -> None:
    fake_provider.issuer = "https://idp.example"
    id_claims = {"sub": "user-1", "iss": "https://idp.example"}
    claims = issued_access_token_claims(fake_provider.access_token(), id_claims)
    assert claims is not None and claims["resource_access"]["proxy"] == {"roles": ["editor"]}
    assert issued_access_token_claims(fake_provider.access_token(sub="user-2"), id_claims) is None
    assert issued_access_token_claims(fake_provider.access_token(iss="https://other"), id_claims) is None


def test_login_identity_merges_the_access_token_roles(fake_provider: FakeProvider) -> None:
    fake_provider.issuer = "https://idp.example"
    id_claims = {"sub": "user-1", "iss": "https://idp.example", "preferred_username": "user1",
                 "email": "user1@example.test", "email_verified": True, "groups": ["staff"]}  # fmt: skip
    access = fake_provider.access_token(groups=["staff", "dev"])
    identity = login_identity(AuthorizationConfig(), id_claims, access)
    assert identity.user == "user1" and identity.email_verified is True
    assert identity.groups == ("staff", "dev")
    assert identity.roles == ("proxy-user", "proxy:editor", "other-app:viewer")

    only_id = login_identity(AuthorizationConfig(access_token_claims=False), id_claims, access)
    assert only_id.groups == ("staff",) and only_id.roles == ()
    opaque = login_identity(AuthorizationConfig(), id_claims, "opaque")
    assert opaque.roles == ()


def test_login_identity_follows_the_configured_claim_paths() -> None:
    cfg = AuthorizationConfig(groups_claim="cognito:groups", roles_claims=["app.roles"])
    claims = {"sub": "s", "cognito:groups": ["g"], "groups": ["ignored"], "app": {"roles": ["r"]}}
    identity = login_identity(cfg, claims, "opaque")
    assert identity.groups == ("g",) and identity.roles == ("r",)
