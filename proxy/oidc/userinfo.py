"""The UserInfo endpoint (OIDC Core 5.3): profile claims a provider keeps out of the ID token.

OIDC Core 5.4 lets a provider that issues an access token return the ``profile``/``email`` scope
claims only from the UserInfo endpoint, and some do (zitadel/oidc: the ID token then carries ``sub``
and the protocol claims only). ``provider.userinfo`` says when to ask:

    auto    when the ID token has none of :data:`PROFILE_CLAIMS` and discovery names a userinfo_endpoint
    always  at every sign-in and refresh that brings an ID token (no userinfo_endpoint: the sign-in fails)
    never

The answer is used only if it is a JSON object whose ``sub`` is the ID token's (5.3.2: anything else
may be a substituted token, and is refused). Its claims only fill in what the ID token lacks: the
verified ID token's own claims (``iss``, ``aud``, ``sub``, ``nonce``, and whatever it asserts) always
win. Signed or encrypted answers (``application/jwt``) are not supported. Any failure is
``ProviderUnavailable``: a sign-in that can't learn who the user is fails closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any, Literal

import aiohttp

from ..errors import ProviderUnavailable, TokenInvalid
from .discovery import Metadata

log = logging.getLogger(__name__)

UserinfoMode = Literal["auto", "always", "never"]
PROFILE_CLAIMS = ("email", "preferred_username", "name")
MAX_USERINFO_BYTES = 256 * 1024


def wanted(mode: UserinfoMode, meta: Metadata, id_claims: Mapping[str, Any]) -> bool:
    if mode == "never":
        return False
    if mode == "always":
        return True
    return meta.userinfo_endpoint is not None and not any(k in id_claims for k in PROFILE_CLAIMS)


async def fetch_userinfo(http: aiohttp.ClientSession, meta: Metadata, access_token: str) -> dict[str, Any]:
    """GET the userinfo_endpoint with the access token; the JSON object it answers."""
    if not meta.userinfo_endpoint:
        raise ProviderUnavailable("provider.userinfo is 'always' but discovery names no userinfo_endpoint")
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
    try:
        async with http.get(meta.userinfo_endpoint, headers=headers, allow_redirects=False) as resp:
            body = await resp.content.read(MAX_USERINFO_BYTES + 1)
            status, ctype = resp.status, resp.content_type
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise ProviderUnavailable(f"userinfo_endpoint unreachable: {type(exc).__name__}: {exc}") from None
    if status != 200:
        raise ProviderUnavailable(f"userinfo_endpoint answered {status}")
    if len(body) > MAX_USERINFO_BYTES:
        raise ProviderUnavailable(f"userinfo_endpoint answered more than {MAX_USERINFO_BYTES} bytes")
    if ctype != "application/json":
        raise ProviderUnavailable(f"userinfo_endpoint answered {ctype!r}, not application/json")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise ProviderUnavailable("userinfo_endpoint did not return usable JSON") from None
    if not isinstance(doc, dict):
        raise ProviderUnavailable("userinfo_endpoint did not return a JSON object")
    return doc


def merge_userinfo(id_claims: Mapping[str, Any], userinfo: Mapping[str, Any]) -> dict[str, Any]:
    """The ID token's claims, plus those of ``userinfo`` it lacks; ``TokenInvalid`` on another sub."""
    if userinfo.get("sub") != id_claims.get("sub"):
        raise TokenInvalid("the userinfo answer names another subject than the ID token")
    return {**userinfo, **id_claims}


async def with_userinfo(
    http: aiohttp.ClientSession,
    meta: Metadata,
    mode: UserinfoMode,
    id_claims: Mapping[str, Any],
    access_token: str,
) -> dict[str, Any]:
    """``id_claims`` completed from the UserInfo endpoint when ``mode`` (and the claims) call for it."""
    if not wanted(mode, meta, id_claims):
        return dict(id_claims)
    return merge_userinfo(id_claims, await fetch_userinfo(http, meta, access_token))
