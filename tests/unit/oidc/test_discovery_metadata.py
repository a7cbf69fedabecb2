"""proxy.oidc.discovery: Metadata.parse, the validation of a discovery document."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.oidc.discovery import Metadata

ISSUER = "https://idp.example.com/realms/main"


def doc(**changes: Any) -> dict[str, Any]:
    """A discovery document with ``changes`` applied; ``...`` removes a key."""
    base: dict[str, Any] = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/protocol/openid-connect/auth",
        "token_endpoint": f"{ISSUER}/protocol/openid-connect/token",
        "jwks_uri": f"{ISSUER}/protocol/openid-connect/certs",
        "end_session_endpoint": f"{ISSUER}/protocol/openid-connect/logout",
        "userinfo_endpoint": f"{ISSUER}/protocol/openid-connect/userinfo",
        "revocation_endpoint": f"{ISSUER}/protocol/openid-connect/revoke",
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "PS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def test_full_document() -> None:
    meta = Metadata.parse(doc(), ISSUER)

    assert meta == Metadata(
        issuer=ISSUER,
        authorization_endpoint=f"{ISSUER}/protocol/openid-connect/auth",
        token_endpoint=f"{ISSUER}/protocol/openid-connect/token",
        jwks_uri=f"{ISSUER}/protocol/openid-connect/certs",
        end_session_endpoint=f"{ISSUER}/protocol/openid-connect/logout",
        userinfo_endpoint=f"{ISSUER}/protocol/openid-connect/userinfo",
        revocation_endpoint=f"{ISSUER}/protocol/openid-connect/revoke",
        id_token_algs=("RS256", "ES256", "PS256"),
        token_auth_methods=("client_secret_basic", "client_secret_post"),
    )


@pytest.mark.parametrize("document", [None, [], "text", 1], ids=repr)
def test_document_that_is_not_an_object(document: Any) -> None:
    with pytest.raises(ValueError, match="not a JSON object"):
        Metadata.parse(document, ISSUER)


@pytest.mark.parametrize("key", ["issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"])
@pytest.mark.parametrize("value", [..., "", None, 42, ["x"]], ids=["missing", "empty", "null", "int", "list"])
def test_required_key(key: str, value: Any) -> None:
    with pytest.raises(ValueError, match=key):
        Metadata.parse(doc(**{key: value}), ISSUER)


@pytest.mark.parametrize(
    ("issuer", "expected"),
    [(ISSUER + "/", ISSUER), (ISSUER, ISSUER + "/")],
    ids=["document-slash", "configured-slash"],
)
def test_issuer_trailing_slash_is_tolerated(issuer: str, expected: str) -> None:
    assert Metadata.parse(doc(issuer=issuer), expected).issuer == issuer


@pytest.mark.parametrize(
    "issuer",
    [
        "https://evil.example.com/realms/main",
        ISSUER + "x",
        "http://idp.example.com/realms/main",
        ISSUER + "/sub",
    ],
    ids=["other-host", "longer", "http", "sub-path"],
)
def test_issuer_mismatch(issuer: str) -> None:
    with pytest.raises(ValueError, match="differs from the configured"):
        Metadata.parse(doc(issuer=issuer), ISSUER)


@pytest.mark.parametrize(
    ("algs", "expected"),
    [
        (["none", "RS256"], ("RS256",)),
        (["HS256", "HS384", "HS512", "ES256"], ("ES256",)),
        (["RS256", "none", "HS256", "EdDSA"], ("RS256", "EdDSA")),
        (["none"], ("RS256",)),
        (["HS256"], ("RS256",)),
    ],
    ids=["none", "hmac", "mixed", "only-none", "only-hmac"],
)
def test_symmetric_and_none_algorithms_are_removed(algs: list[str], expected: tuple[str, ...]) -> None:
    assert Metadata.parse(doc(id_token_signing_alg_values_supported=algs), ISSUER).id_token_algs == expected


def test_defaults_when_optional_keys_are_absent() -> None:
    meta = Metadata.parse(
        doc(
            end_session_endpoint=...,
            userinfo_endpoint=...,
            revocation_endpoint=...,
            id_token_signing_alg_values_supported=...,
            token_endpoint_auth_methods_supported=...,
        ),
        ISSUER,
    )

    assert meta.end_session_endpoint is None
    assert meta.userinfo_endpoint is None
    assert meta.revocation_endpoint is None
    assert meta.id_token_algs == ("RS256",)
    assert meta.token_auth_methods == ("client_secret_basic",)


@pytest.mark.parametrize("value", ["", None, 42, ["https://x"], {"u": 1}], ids=repr)
def test_malformed_optional_endpoint_is_none(value: Any) -> None:
    meta = Metadata.parse(doc(end_session_endpoint=value, userinfo_endpoint=value), ISSUER)

    assert meta.end_session_endpoint is None
    assert meta.userinfo_endpoint is None


@pytest.mark.parametrize(
    "value", ["RS256", [], ["RS256", 5], None, {"RS256": True}], ids=["str", "empty", "mixed", "null", "dict"]
)
def test_malformed_lists_fall_back_to_defaults(value: Any) -> None:
    meta = Metadata.parse(
        doc(id_token_signing_alg_values_supported=value, token_endpoint_auth_methods_supported=value), ISSUER
    )

    assert meta.id_token_algs == ("RS256",)
    assert meta.token_auth_methods == ("client_secret_basic",)
