"""proxy.oidc.client: the authorization URL, the end-session URL and token response parsing."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from proxy.errors import ProviderUnavailable
from proxy.oidc.client import Client, TokenResponse, authorization_url
from proxy.oidc.discovery import Metadata

CLIENT = Client(client_id="proxy", client_secret="s3cret", scopes=("openid", "email", "profile"))
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
"""The code verifier of RFC 7636 appendix B."""


def metadata(authorization_endpoint: str = "https://idp.example.com/auth") -> Metadata:
    return Metadata(
        issuer="https://idp.example.com",
        authorization_endpoint=authorization_endpoint,
        token_endpoint="https://idp.example.com/token",
        jwks_uri="https://idp.example.com/certs",
        end_session_endpoint="https://idp.example.com/logout",
        userinfo_endpoint=None,
        revocation_endpoint=None,
        id_token_algs=("RS256",),
        token_auth_methods=("client_secret_basic",),
    )


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def auth_url(meta: Metadata | None = None, verifier: str = VERIFIER) -> str:
    return authorization_url(
        meta or metadata(),
        CLIENT,
        redirect_uri="https://proxy.example.com/oauth/callback?a=1&b=2",
        state="st&ate=1",
        nonce="n+nce",
        code_verifier=verifier,
    )


# --- authorization URL -----------------------------------------------------------------------


def test_authorization_url_parameters() -> None:
    url = auth_url()

    assert url.startswith("https://idp.example.com/auth?")
    assert query(url) == {
        "response_type": ["code"],
        "client_id": ["proxy"],
        "redirect_uri": ["https://proxy.example.com/oauth/callback?a=1&b=2"],
        "scope": ["openid email profile"],
        "state": ["st&ate=1"],
        "nonce": ["n+nce"],
        "code_challenge": [s256(VERIFIER)],
        "code_challenge_method": ["S256"],
    }


def test_code_challenge_matches_rfc7636_example() -> None:
    assert query(auth_url())["code_challenge"] == ["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"]


@pytest.mark.parametrize("verifier", ["a" * 43, "Z-._~" * 20 + "abc"], ids=["min-length", "max-length"])
def test_code_challenge_is_s256_of_the_verifier(verifier: str) -> None:
    challenge = query(auth_url(verifier=verifier))["code_challenge"][0]

    assert challenge == s256(verifier)
    assert "=" not in challenge


def test_authorization_endpoint_query_is_kept() -> None:
    url = auth_url(metadata("https://idp.example.com/auth?kc_idp_hint=corp"))

    assert query(url)["kc_idp_hint"] == ["corp"]
    assert query(url)["client_id"] == ["proxy"]


# --- token response --------------------------------------------------------------------------


def token(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "access_token": "at",
        "id_token": "it",
        "refresh_token": "rt",
        "token_type": "Bearer",
        "expires_in": 300,
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not ...}


def test_token_response_parse() -> None:
    assert TokenResponse.parse(token()) == TokenResponse(
        access_token="at", id_token="it", refresh_token="rt", expires_in=300.0
    )


@pytest.mark.parametrize("token_type", ["bearer", "BEARER", "Bearer", "bEaReR"])
def test_token_type_bearer_is_case_insensitive(token_type: str) -> None:
    assert TokenResponse.parse(token(token_type=token_type)).access_token == "at"


@pytest.mark.parametrize("doc", [None, [], "text", 1, ["access_token"]], ids=repr)
def test_token_response_that_is_not_an_object(doc: Any) -> None:
    with pytest.raises(ProviderUnavailable, match="JSON object"):
        TokenResponse.parse(doc)


@pytest.mark.parametrize("key", ["access_token", "id_token"])
@pytest.mark.parametrize("value", [..., "", None, 42, ["x"]], ids=["missing", "empty", "null", "int", "list"])
def test_token_response_without_a_token(key: str, value: Any) -> None:
    with pytest.raises(ProviderUnavailable, match=key):
        TokenResponse.parse(token(**{key: value}))


@pytest.mark.parametrize("token_type", ["mac", "DPoP", "", None, ...], ids=repr)
def test_token_response_with_wrong_token_type(token_type: Any) -> None:
    with pytest.raises(ProviderUnavailable, match="token_type"):
        TokenResponse.parse(token(token_type=token_type))


@pytest.mark.parametrize("refresh", [..., "", None, 5], ids=["missing", "empty", "null", "int"])
def test_token_response_without_usable_refresh_token(refresh: Any) -> None:
    assert TokenResponse.parse(token(refresh_token=refresh)).refresh_token is None


@pytest.mark.parametrize(("expires", "parsed"), [(300, 300.0), (1.5, 1.5), ("300", None), (..., None)])
def test_token_response_expires_in(expires: Any, parsed: float | None) -> None:
    assert TokenResponse.parse(token(expires_in=expires)).expires_in == parsed
