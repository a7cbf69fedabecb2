"""Access tokens: verified as API credentials (``Authorization: Bearer``), and read for groups and
roles when the token endpoint hands one over at sign-in or refresh.

**As a bearer credential** (``api.accept_bearer``) an access token must be a JWT the provider signed
(its JWKS, refetched once on an unknown ``kid``: ``tokens._signed``), from our ``iss``, unexpired
(``exp`` required, ``nbf``/``iat`` checked when present), with an ``aud`` naming one of
``api.audiences`` (default: our client id), and of the access-token kind:

- header ``typ: at+jwt`` (RFC 9068), with no ``typ`` claim or ``typ: Bearer``; or
- header ``typ`` ``JWT`` (or none) and claim ``typ: Bearer`` (Keycloak, whose header says only
  ``JWT``);
- and never an ``events`` claim (a security event token, such as a logout token).

Keycloak's ID tokens (``typ: ID``), logout tokens (``Logout``, header ``logout+jwt``) and refresh
tokens (``Refresh``, and HS-signed, which is refused anyway) are all turned away by that check, as
is any token that says neither: an ID token has ``aud`` = our client id and is signed by the same
keys, so only its type tells it apart. Providers whose access tokens carry no type (ZITADEL, Entra ID,
Okta: header ``typ: JWT``, no ``typ`` claim) need ``api.untyped_access_tokens``, which is allowed only
with ``api.audiences`` naming the API's audience and never our client id (start-up refuses it
otherwise), and which still refuses any token carrying an ID-token-only claim (``nonce``,
``at_hash``, ``c_hash``, ``s_hash``).

``azp`` (the client the token was issued to) is *not* a substitute for ``aud``: Keycloak issues
access tokens with no ``aud`` or ``aud: account`` unless the client (or a client scope) has an
*Audience* mapper, which is how a Keycloak admin says "this token is for the proxy" (Keycloak's
*audience resolve* mapper also adds every client whose client roles the token carries). If
``api.authorized_parties`` is set, ``azp`` must be one of them as well, to accept the tokens of
only some clients.

**At sign-in and refresh** the access token's claims are read without checking its signature. The
token came in the token endpoint's answer to our authenticated request over the provider's TLS
(OIDC Core §3.1.3.7 lets TLS server validation stand in for signature checks of what the token
endpoint returns), and the verified ID token binds it by ``at_hash`` when present (Keycloak always
sends one). Access tokens are addressed to resource servers, not to us: some providers sign them
with keys or algorithms a client can't check (Entra ID's Graph tokens) or make them opaque, and
neither may break a sign-in. Only groups and roles are taken from it, and only when its ``sub``
(and ``iss``) match the ID token's.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from joserfc import jws
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwt import JWTClaimsRegistry

from ..claims import collect
from ..errors import TokenInvalid
from ..identity import Identity
from .discovery import Provider
from .tokens import LEEWAY, _signed

if TYPE_CHECKING:
    from ..config import AuthorizationConfig

log = logging.getLogger(__name__)

ACCESS_TOKEN_HEADER_TYPES = frozenset(("at+jwt", "application/at+jwt"))
"""RFC 9068 §2.1."""
KEYCLOAK_ACCESS_TYPE = "bearer"
"""Keycloak's ``typ`` claim of access tokens (``ID``, ``Logout``, ``Refresh`` for the others)."""


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value; ``None`` for other schemes."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


ID_TOKEN_ONLY_CLAIMS = ("nonce", "at_hash", "c_hash", "s_hash")
"""Claims only ID tokens carry (OIDC Core 2, 3.3.2.11, FAPI): an untyped token with one is no access token."""


def _kind_error(header: Mapping[str, Any], claims: Mapping[str, Any], untyped: bool = False) -> str | None:
    header_typ = str(header.get("typ", "JWT")).lower()
    claim_typ = claims.get("typ")
    bearer_claim = isinstance(claim_typ, str) and claim_typ.lower() == KEYCLOAK_ACCESS_TYPE
    plain_header = header_typ in ("jwt", "application/jwt")
    if "events" in claims:  # a security event token (logout token), whatever its typ says
        ok = False
    elif header_typ in ACCESS_TOKEN_HEADER_TYPES:
        ok = claim_typ is None or bearer_claim
    elif untyped and plain_header and claim_typ is None:
        # api.untyped_access_tokens: the audience (checked by the caller, never our client id) and
        # the absence of ID-token claims are what tell it from an ID token
        ok = not any(name in claims for name in ID_TOKEN_ONLY_CLAIMS)
    else:
        ok = plain_header and bearer_claim
    if ok:
        return None
    return f"not an access token (header typ {header.get('typ')!r}, typ claim {claim_typ!r})"


async def verify_access_token(
    provider: Provider,
    token: str,
    *,
    audiences: Sequence[str],
    authorized_parties: Sequence[str] = (),
    untyped: bool = False,
    now: float | None = None,
) -> dict[str, Any]:
    """The verified claims of a bearer access token, or ``TokenInvalid`` saying why not. ``untyped``
    (``api.untyped_access_tokens``) also accepts tokens that don't say they are access tokens."""
    if not token:
        raise TokenInvalid("the bearer token is empty")
    signed = await _signed(provider, token, "access token")
    claims = signed.claims
    kind = _kind_error(signed.header, claims, untyped)
    if kind is not None:
        raise TokenInvalid(kind)
    registry = JWTClaimsRegistry(
        now=int(now if now is not None else time.time()),
        leeway=LEEWAY,
        iss={"essential": True, "value": provider.metadata.issuer},
        aud={"essential": True, "values": list(audiences)},
        exp={"essential": True},
        sub={"essential": True},
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise TokenInvalid("the access token has expired") from None
    except JoseError as exc:
        raise TokenInvalid(f"access token claims: {exc.error}: {exc.description or ''}".strip()) from None
    if authorized_parties and claims.get("azp") not in authorized_parties:
        raise TokenInvalid(f"the access token was issued to {claims.get('azp')!r}, not an authorized party")
    return dict(claims)


def issued_access_token_claims(access_token: str, id_claims: Mapping[str, Any]) -> dict[str, Any] | None:
    """The claims of an access token the token endpoint just handed us (see the module docstring),
    ``None`` when it is opaque or speaks of another subject or issuer."""
    try:
        payload = jws.extract_compact(access_token.encode()).payload
        claims = json.loads(payload)
    except (JoseError, ValueError, UnicodeError):
        return None  # opaque (or encrypted): nothing to read
    if not isinstance(claims, dict):
        return None
    for name in ("sub", "iss"):
        if name in claims and claims[name] != id_claims.get(name):
            log.warning("access token names another %s than the ID token; its claims are ignored", name)
            return None
    return claims


def identity_from(cfg: AuthorizationConfig, sources: Sequence[Mapping[str, Any]]) -> Identity:
    """The identity in ``sources[0]``, with groups and roles gathered from every source."""
    identity = Identity.from_claims(
        sources[0],
        groups=collect(sources, (cfg.groups_claim,)),
        roles=collect(sources, cfg.roles_claims),
        extra=[(path, collect(sources, (path,))) for path in cfg.extra_claim_paths],
    )
    if cfg.require_verified_email and identity.email_verified is not True:
        identity = replace(identity, email_verified=False)  # unsaid counts as unverified
    return identity


def login_identity(cfg: AuthorizationConfig, id_claims: Mapping[str, Any], access_token: str) -> Identity:
    """The session's identity at sign-in or refresh: the verified ID token's claims, plus the groups
    and roles of the access token when ``authorization.access_token_claims`` is on."""
    sources: list[Mapping[str, Any]] = [id_claims]
    if cfg.access_token_claims:
        extra = issued_access_token_claims(access_token, id_claims)
        if extra is not None:
            sources.append(extra)
    return identity_from(cfg, sources)
