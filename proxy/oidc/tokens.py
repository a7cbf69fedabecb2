"""ID token verification with joserfc (signature) and authlib (OIDC claim rules).

Nothing here parses JWTs by hand. ``iss`` and ``aud`` are always passed as essential values:
joserfc checks them only when told to.
"""

from __future__ import annotations

import time
from typing import Any

from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jws import JWSRegistry

from ..errors import TokenInvalid
from .discovery import Provider

LEEWAY = 60
"""Seconds of clock skew tolerated on exp / iat."""


def _decode(token: str, keys: Any, algs: tuple[str, ...]) -> jwt.Token:
    return jwt.decode(token, keys, registry=JWSRegistry(algorithms=list(algs)))


async def verify_id_token(
    provider: Provider,
    id_token: str,
    *,
    client_id: str,
    nonce: str,
    access_token: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The verified claims of ``id_token``, or ``TokenInvalid`` saying why not.

    Checks the signature against the provider's JWKS (refetched once when the ``kid`` is new),
    then ``iss``, ``aud``, ``exp``, ``iat``, ``nonce``, ``azp`` and ``at_hash``.
    """
    meta = provider.metadata
    try:
        try:
            token = _decode(id_token, await provider.keys(), meta.id_token_algs)
        except InvalidKeyIdError:
            token = _decode(id_token, await provider.keys(refresh=True), meta.id_token_algs)
    except JoseError as exc:
        raise TokenInvalid(f"id_token signature: {exc.error}: {exc.description or ''}".strip()) from None
    except ValueError as exc:
        raise TokenInvalid(f"id_token is malformed: {exc}") from None
    options: dict[str, Any] = {
        "iss": {"essential": True, "value": meta.issuer},
        "aud": {"essential": True, "value": client_id},
    }
    params: dict[str, Any] = {"nonce": nonce, "client_id": client_id}
    if access_token:
        params["access_token"] = access_token
    claims = CodeIDToken(token.claims, token.header, options, params)
    try:
        claims.validate(now=int(now if now is not None else time.time()), leeway=LEEWAY)
    except JoseError as exc:
        raise TokenInvalid(f"id_token claims: {exc.error}: {exc.description or ''}".strip()) from None
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise TokenInvalid("id_token has no subject")
    return dict(claims)
