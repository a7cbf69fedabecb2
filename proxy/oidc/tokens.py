"""ID token verification with joserfc (signature) and authlib (OIDC claim rules).

Nothing here parses JWTs by hand. ``iss`` and ``aud`` are always passed as essential values:
joserfc checks them only when told to.
"""

from __future__ import annotations

import json
import time
from typing import Any

from authlib.oidc.core import CodeIDToken
from joserfc import jws, jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jws import JWSRegistry
from joserfc.jwt import JWTClaimsRegistry

from ..errors import TokenInvalid
from .discovery import Provider

LEEWAY = 60
"""Seconds of clock skew tolerated on exp / iat."""


def _decode(token: str, keys: Any, algs: tuple[str, ...]) -> jwt.Token:
    return jwt.decode(token, keys, registry=JWSRegistry(algorithms=list(algs)))


async def _signed(provider: Provider, raw: str, what: str) -> jwt.Token:
    """Decode ``raw`` checking its signature against the provider's keys (refetched once on a new kid)."""
    algs = provider.metadata.id_token_algs
    try:
        try:
            return _decode(raw, await provider.keys(), algs)
        except InvalidKeyIdError:
            return _decode(raw, await provider.keys(refresh=True), algs)
    except JoseError as exc:
        raise TokenInvalid(f"{what} signature: {exc.error}: {exc.description or ''}".strip()) from None
    except (ValueError, TypeError) as exc:
        raise TokenInvalid(f"{what} is malformed: {exc}") from None


async def verify_id_token(
    provider: Provider,
    id_token: str,
    *,
    client_id: str,
    nonce: str | None,
    access_token: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The verified claims of ``id_token``, or ``TokenInvalid`` saying why not.

    Checks the signature against the provider's JWKS (refetched once when the ``kid`` is new),
    then ``iss``, ``aud``, ``exp``, ``iat``, ``nonce``, ``azp`` and ``at_hash``.
    """
    meta = provider.metadata
    token = await _signed(provider, id_token, "id_token")
    options: dict[str, Any] = {
        "iss": {"essential": True, "value": meta.issuer},
        "aud": {"essential": True, "value": client_id},
    }
    params: dict[str, Any] = {"client_id": client_id}
    if nonce is not None:  # None only for refreshed ID tokens, which answer no authorization request
        params["nonce"] = nonce
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


def unverified_issuer(token: str) -> str | None:
    """The ``iss`` a JWT claims, read without any check: only to pick the provider whose keys and
    issuer then verify it (the verification checks ``iss`` again)."""
    try:
        claims = json.loads(jws.extract_compact(token.encode()).payload)
    except (JoseError, ValueError, UnicodeError, RecursionError):
        return None
    iss = claims.get("iss") if isinstance(claims, dict) else None
    return iss if isinstance(iss, str) and iss else None


BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_MAX_AGE = 300
"""Logout tokens issued longer ago than this are refused (Keycloak's live 120 s)."""


async def verify_logout_token(
    provider: Provider, logout_token: str, *, client_id: str, now: float | None = None
) -> dict[str, Any]:
    """The claims of a valid OIDC Back-Channel Logout token, or ``TokenInvalid`` saying why not.

    Per the spec (section 2.6): signature, ``iss``, ``aud``, ``iat`` (recent), ``exp`` if present,
    ``jti`` present, the back-channel ``events`` member, ``sid`` and/or ``sub``, and no ``nonce``.
    Replay (the same ``jti`` twice) is the caller's to check, since it needs the store.
    """
    token = await _signed(provider, logout_token, "logout_token")
    typ = str(token.header.get("typ", "logout+jwt")).lower()
    if typ not in ("logout+jwt", "jwt", "application/logout+jwt"):
        raise TokenInvalid(f"logout_token has typ {typ!r}")
    at = int(now if now is not None else time.time())
    registry = JWTClaimsRegistry(
        now=at,
        leeway=LEEWAY,
        iss={"essential": True, "value": provider.metadata.issuer},
        aud={"essential": True, "value": client_id},
        iat={"essential": True},
        jti={"essential": True},
    )
    claims = token.claims
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise TokenInvalid(f"logout_token claims: {exc.error}: {exc.description or ''}".strip()) from None
    if claims["iat"] < at - LOGOUT_TOKEN_MAX_AGE - LEEWAY:
        raise TokenInvalid("logout_token is too old")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
        raise TokenInvalid("logout_token lacks the back-channel logout event")
    if "nonce" in claims:
        raise TokenInvalid("logout_token must not carry a nonce")
    sid, sub = claims.get("sid"), claims.get("sub")
    if not (isinstance(sid, str) and sid) and not (isinstance(sub, str) and sub):
        raise TokenInvalid("logout_token names neither sid nor sub")
    if not isinstance(claims["jti"], str) or not claims["jti"]:
        raise TokenInvalid("logout_token has no usable jti")
    return dict(claims)
