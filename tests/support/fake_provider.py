"""A tiny OIDC provider for error-path tests: it signs real tokens with a joserfc test key and can be
told to misbehave (500s, refusals, bad signatures, wrong nonce ...). Everything a user does is tested
against the real Keycloak instead; this exists for failures Keycloak can't be made to produce."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from authlib.oidc.core.util import create_half_hash
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

_SHARED_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
"""One signing key for every test's fake provider (generating one takes ~40 ms)."""


@dataclass
class FakeProvider:
    issuer: str = ""
    client_id: str = "proxy"
    client_secret: str = "proxy-secret"
    key: RSAKey = field(default_factory=lambda: _SHARED_KEY)
    claims: dict[str, Any] = field(
        default_factory=lambda: {
            "sub": "user-1",
            "email": "user1@example.test",
            "preferred_username": "user1",
            "name": "User One",
            "groups": ["staff", "dev"],
            # A provider session of its own per provider, as a real one starts a new session (sid)
            # for a login after a logout: tests that share a Redis don't see each other's ended sids.
            "sid": "sid-" + secrets.token_hex(6),
        }
    )
    token_mode: str = "ok"
    """ok | 500 | invalid_grant | garbage | bad_signature | wrong_nonce | wrong_aud | expired | no_id_token"""
    discovery_extra: dict[str, Any] = field(default_factory=dict)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    refresh_mode: str = "ok"
    """ok | invalid_grant | 500 | other_sub"""
    refresh_delay: float = 0.0
    refresh_tokens: set[str] = field(default_factory=set)
    end_session_posts: list[dict[str, str]] = field(default_factory=list)
    end_session_status: int = 204
    revocations: list[dict[str, str]] = field(default_factory=list)
    send_iss: bool = False
    """Name the issuer in the authorization response (RFC 9207), as Keycloak does."""
    honour_acr: bool = False
    """Step-up: the ID token's ``acr`` is the first of the request's ``acr_values``, if any."""
    jwks_requests: int = 0
    access_token_jwt: bool = False
    """Issue access tokens as signed JWTs (Keycloak's shape: ``typ: Bearer``, ``azp``, roles) instead
    of opaque strings."""
    access_claims: dict[str, Any] = field(
        default_factory=lambda: {
            "realm_access": {"roles": ["proxy-user"]},
            "resource_access": {"proxy": {"roles": ["editor"]}, "other-app": {"roles": ["viewer"]}},
        }
    )
    """Claims only the access token carries (Keycloak puts realm_access/resource_access only there)."""
    userinfo: Any = None
    """What the UserInfo endpoint answers (JSON); ``None``: the identity claims of :attr:`claims`."""
    userinfo_status: int = 200
    userinfo_raw: tuple[bytes, str] | None = None
    """``(body, content type)`` answered instead of JSON, to break it."""
    userinfo_requests: list[str] = field(default_factory=list)
    """The Authorization header of each UserInfo request."""

    def sign(self, claims: dict[str, Any], key: RSAKey | None = None) -> str:
        key = key or self.key
        return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)

    def id_token(self, nonce: str, access_token: str, **overrides: Any) -> str:
        now = int(time.time())
        at_hash = create_half_hash(access_token, "RS256").decode()
        claims = {"iss": self.issuer, "aud": self.client_id, "azp": self.client_id, "iat": now,
                  "exp": now + 300, "nonce": nonce, "at_hash": at_hash,
                  **self.claims, **overrides}  # fmt: skip
        return self.sign(claims)

    def access_token(self, *, header: dict[str, Any] | None = None, key: RSAKey | None = None,
                     drop: tuple[str, ...] = (), **overrides: Any) -> str:  # fmt: skip
        """A signed access token as Keycloak issues them (``typ: Bearer``, ``aud`` naming the proxy
        as its Audience mapper would); override or ``drop`` claims, or change the header, to break it."""
        now = int(time.time())
        identity = {k: v for k, v in self.claims.items() if k != "sid"}
        body: dict[str, Any] = {
            "iss": self.issuer, "aud": self.client_id, "azp": self.client_id, "typ": "Bearer",
            "iat": now, "exp": now + 300, "jti": secrets.token_urlsafe(8),
            **identity, **self.access_claims, **overrides,
        }  # fmt: skip
        for name in drop:
            body.pop(name, None)
        key = key or self.key
        return jwt.encode(header or {"alg": "RS256", "kid": key.kid, "typ": "JWT"}, body, key)

    def _new_access_token(self) -> str:
        return self.access_token() if self.access_token_jwt else secrets.token_urlsafe(24)

    def logout_token(self, *, drop: tuple[str, ...] = (), header: dict[str, Any] | None = None,
                     key: RSAKey | None = None, **claims: Any) -> str:  # fmt: skip
        """A back-channel logout token as Keycloak sends it; override or ``drop`` claims to break it."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 120,
            "jti": secrets.token_urlsafe(12), "sub": self.claims["sub"], "sid": self.claims["sid"],
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}}, "typ": "Logout",
        }  # fmt: skip
        body.update(claims)
        for name in drop:
            body.pop(name, None)
        key = key or self.key
        return jwt.encode(header or {"alg": "RS256", "kid": key.kid, "typ": "logout+jwt"}, body, key)

    # --- endpoints ---------------------------------------------------------------------------

    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response({
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/auth",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "revocation_endpoint": f"{self.issuer}/revoke",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            **self.discovery_extra,
        })  # fmt: skip

    async def jwks(self, request: web.Request) -> web.Response:
        self.jwks_requests += 1
        return web.json_response(KeySet([self.key]).as_dict(private=False))

    async def auth(self, request: web.Request) -> web.Response:
        """Approve at once, as if the user were already signed in at the provider."""
        q = request.query
        code = secrets.token_urlsafe(16)
        self.codes[code] = dict(q)
        answer = {"code": code, "state": q["state"], **({"iss": self.issuer} if self.send_iss else {})}
        target = q["redirect_uri"] + "?" + urlencode(answer)
        raise web.HTTPFound(target)

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_requests.append({k: str(v) for k, v in form.items()})
        if form.get("grant_type") == "refresh_token":
            return await self._refresh(str(form.get("refresh_token")))
        if self.token_mode == "500":
            return web.Response(status=500, text="boom")
        if self.token_mode == "garbage":
            return web.Response(text="<html>not json</html>", content_type="text/html")
        auth = request.headers.get("Authorization", "")
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if auth != f"Basic {expected}":
            return web.json_response({"error": "invalid_client"}, status=401)
        start = self.codes.pop(str(form.get("code")), None)
        if self.token_mode == "invalid_grant" or start is None:
            return web.json_response(
                {"error": "invalid_grant", "error_description": "Code not valid"}, status=400
            )
        challenge = base64.urlsafe_b64encode(hashlib.sha256(str(form["code_verifier"]).encode()).digest())
        if challenge.rstrip(b"=").decode() != start["code_challenge"]:
            return web.json_response(
                {"error": "invalid_grant", "error_description": "PKCE failed"}, status=400
            )
        access = self._new_access_token()
        nonce = start["nonce"]
        overrides: dict[str, Any] = {}
        if self.token_mode == "wrong_nonce":
            nonce = "not-the-nonce"
        elif self.token_mode == "wrong_aud":
            overrides = {"aud": "someone-else", "azp": "someone-else"}
        if self.honour_acr and start.get("acr_values"):
            overrides["acr"] = start["acr_values"].split()[0]
        if self.token_mode == "expired":
            overrides = {"iat": int(time.time()) - 4000, "exp": int(time.time()) - 3000}
        id_token = self.id_token(nonce, access, **overrides)
        if self.token_mode == "bad_signature":
            other = RSAKey.generate_key(2048, parameters={"kid": "k1"})
            id_token = self.sign(jwt.decode(id_token, self.key).claims, other)
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": 300,
                                "refresh_token": self._new_refresh_token(), "id_token": id_token}  # fmt: skip
        if self.token_mode == "no_id_token":
            del body["id_token"]
        return web.json_response(body)

    def _new_refresh_token(self) -> str:
        token = secrets.token_urlsafe(24)
        self.refresh_tokens.add(token)
        return token

    @property
    def refreshes(self) -> int:
        return sum(1 for r in self.token_requests if r.get("grant_type") == "refresh_token")

    async def _refresh(self, refresh_token: str) -> web.Response:
        if self.refresh_delay:
            await asyncio.sleep(self.refresh_delay)
        if self.refresh_mode == "500":
            return web.Response(status=500, text="down")
        if self.refresh_mode == "invalid_grant" or refresh_token not in self.refresh_tokens:
            return web.json_response(
                {"error": "invalid_grant", "error_description": "Session not active"}, status=400
            )
        self.refresh_tokens.discard(refresh_token)  # rotation: each refresh token works once
        access = self._new_access_token()
        overrides = {"sub": "someone-else"} if self.refresh_mode == "other_sub" else {}
        now = int(time.time())
        at_hash = create_half_hash(access, "RS256").decode()
        claims = {"iss": self.issuer, "aud": self.client_id, "azp": self.client_id, "iat": now,
                  "exp": now + 300, "at_hash": at_hash, **self.claims, **overrides}  # fmt: skip
        return web.json_response({"access_token": access, "token_type": "Bearer", "expires_in": 300,
                                  "refresh_expires_in": 1800, "refresh_token": self._new_refresh_token(),
                                  "id_token": self.sign(claims)})  # fmt: skip

    async def logout_post(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        form["authorization"] = request.headers.get("Authorization", "")
        self.end_session_posts.append(form)
        return web.Response(status=self.end_session_status)

    async def revoke(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.revocations.append(form)
        self.refresh_tokens.discard(form.get("token", ""))
        return web.Response(status=200)

    async def userinfo_endpoint(self, request: web.Request) -> web.Response:
        self.userinfo_requests.append(request.headers.get("Authorization", ""))
        if self.userinfo_raw is not None:
            body, ctype = self.userinfo_raw
            return web.Response(status=self.userinfo_status, body=body, headers={"Content-Type": ctype})
        doc = (
            self.userinfo
            if self.userinfo is not None
            else {k: v for k, v in self.claims.items() if k != "sid"}
        )
        return web.json_response(doc, status=self.userinfo_status)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/jwks", self.jwks)
        app.router.add_get("/auth", self.auth)
        app.router.add_post("/token", self.token)
        app.router.add_post("/logout", self.logout_post)
        app.router.add_post("/revoke", self.revoke)
        app.router.add_get("/userinfo", self.userinfo_endpoint)
        return app
