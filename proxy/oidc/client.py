"""The relying party's requests: the authorization URL (state, nonce, PKCE S256), the code exchange,
refresh, and the server-side end-session and revocation calls. Building URLs is pure; the rest does
I/O. (The browser's end-session URL is proxy/oidc/logout_url.py's.)
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from ..errors import LoginError, ProviderUnavailable
from .discovery import Metadata

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Client:
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    id_token: str | None
    """Always there after a code exchange; a refresh may omit it."""
    refresh_token: str | None
    expires_in: float | None
    refresh_expires_in: float | None = None
    """Keycloak's extension: when the refresh token (and so the SSO session, idle) runs out."""

    @classmethod
    def parse(cls, doc: Any, require_id_token: bool = True) -> TokenResponse:
        if not isinstance(doc, dict):
            raise ProviderUnavailable("token endpoint did not return a JSON object")
        for key in ("access_token", "id_token") if require_id_token else ("access_token",):
            if not isinstance(doc.get(key), str) or not doc[key]:
                raise ProviderUnavailable(f"token response lacks {key!r}")
        if str(doc.get("token_type", "")).lower() != "bearer":
            raise ProviderUnavailable(f"unexpected token_type {doc.get('token_type')!r}")
        refresh = doc.get("refresh_token")
        id_token = doc.get("id_token")

        def seconds(key: str) -> float | None:
            value = doc.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                return float(value)
            return None

        return cls(
            access_token=doc["access_token"],
            id_token=id_token if isinstance(id_token, str) and id_token else None,
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            expires_in=seconds("expires_in"),
            refresh_expires_in=seconds("refresh_expires_in"),
        )


def authorization_url(
    meta: Metadata,
    client: Client,
    *,
    redirect_uri: str,
    state: str,
    nonce: str,
    code_verifier: str,
    extra: Mapping[str, str] | None = None,
) -> str:
    """The authorization request; ``extra`` (auth_params, pass-through) first, so the protocol's own
    parameters always win (config validation refuses those names anyway)."""
    params = {
        **(extra or {}),
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(client.scopes),
        "state": state,
        "nonce": nonce,
        "code_challenge": create_s256_code_challenge(code_verifier),
        "code_challenge_method": "S256",
    }
    url: str = add_params_to_uri(meta.authorization_endpoint, params)
    return url


def _auth(meta: Metadata, client: Client, form: dict[str, str]) -> dict[str, str]:
    """client_secret_basic when the provider allows it (RFC 6749 §2.3.1: form-encode, then Basic),
    else client_secret_post. Returns the headers to send."""
    if "client_secret_basic" in meta.token_auth_methods:
        creds = f"{quote(client.client_id, safe='')}:{quote(client.client_secret, safe='')}"
        return {"Authorization": "Basic " + base64.b64encode(creds.encode()).decode()}
    form["client_id"] = client.client_id
    form["client_secret"] = client.client_secret
    return {}


async def token_request(
    http: aiohttp.ClientSession,
    meta: Metadata,
    client: Client,
    form: dict[str, str],
    require_id_token: bool = True,
) -> TokenResponse:
    """POST to the token endpoint. The provider saying no → ``LoginError`` (carrying its ``error``
    code); the provider unreachable or answering nonsense → ``ProviderUnavailable``."""
    form = dict(form)
    headers = {"Accept": "application/json", **_auth(meta, client, form)}
    try:
        async with http.post(meta.token_endpoint, data=form, headers=headers) as resp:
            body = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise ProviderUnavailable(f"token endpoint unreachable: {type(exc).__name__}: {exc}") from None
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        raise ProviderUnavailable(f"token endpoint answered {status} without usable JSON") from None
    if status == 200:
        return TokenResponse.parse(doc, require_id_token)
    if 400 <= status < 500 and isinstance(doc, dict) and isinstance(doc.get("error"), str):
        raise TokenRequestRefused(doc["error"], str(doc.get("error_description") or ""))
    raise ProviderUnavailable(f"token endpoint answered {status}")


class TokenRequestRefused(LoginError):
    """The provider refused a grant (``invalid_grant``, ``invalid_client``, ...)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(
            f"the provider refused the request: {error}" + (f" ({description})" if description else "")
        )
        self.error = error


async def exchange_code(
    http: aiohttp.ClientSession,
    meta: Metadata,
    client: Client,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> TokenResponse:
    return await token_request(
        http,
        meta,
        client,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        },
    )


async def refresh_tokens(
    http: aiohttp.ClientSession, meta: Metadata, client: Client, refresh_token: str
) -> TokenResponse:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await token_request(http, meta, client, form, require_id_token=False)


async def _post_form(
    http: aiohttp.ClientSession, meta: Metadata, client: Client, url: str, form: dict[str, str]
) -> int:
    headers = _auth(meta, client, form)
    form.setdefault("client_id", client.client_id)
    try:
        async with http.post(url, data=form, headers=headers, allow_redirects=False) as resp:
            await resp.read()
            return resp.status
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise ProviderUnavailable(f"{url} unreachable: {type(exc).__name__}: {exc}") from None


async def end_session_backend(
    http: aiohttp.ClientSession,
    meta: Metadata,
    client: Client,
    *,
    id_token: str | None,
    refresh_token: str | None,
) -> None:
    """End the provider's session from the server: POST to the end-session endpoint with the refresh
    token and client credentials (Keycloak ends the SSO session and answers 204) and the ID token hint
    (other providers). Any 2xx or 3xx counts; anything else is ``ProviderUnavailable``."""
    if not meta.end_session_endpoint:
        raise ProviderUnavailable("the provider has no end_session_endpoint")
    form = {"id_token_hint": id_token} if id_token else {}
    if refresh_token:
        form["refresh_token"] = refresh_token
    status = await _post_form(http, meta, client, meta.end_session_endpoint, form)
    if not 200 <= status < 400:
        raise ProviderUnavailable(f"end_session_endpoint answered {status}")


async def revoke_refresh_token(
    http: aiohttp.ClientSession, meta: Metadata, client: Client, token: str
) -> None:
    """RFC 7009 revocation; 200 means done (also for tokens already invalid)."""
    if not meta.revocation_endpoint:
        raise ProviderUnavailable("the provider has no revocation_endpoint")
    form = {"token": token, "token_type_hint": "refresh_token"}
    status = await _post_form(http, meta, client, meta.revocation_endpoint, form)
    if status != 200:
        raise ProviderUnavailable(f"revocation_endpoint answered {status}")
