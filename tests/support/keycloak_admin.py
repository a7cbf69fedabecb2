"""Asking the real Keycloak what it thinks: sessions of a user, whether a refresh token still works."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp


async def admin_token(base: str) -> str:
    form = {"grant_type": "password", "client_id": "admin-cli", "username": "admin", "password": "admin"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/realms/master/protocol/openid-connect/token", data=form) as r:
            assert r.status == 200, await r.text()
            token: str = (await r.json())["access_token"]
            return token


async def _user_url(http: aiohttp.ClientSession, base: str, realm: str, username: str) -> str:
    async with http.get(
        f"{base}/admin/realms/{realm}/users", params={"username": username, "exact": "true"}
    ) as r:
        users = await r.json()
    return f"{base}/admin/realms/{realm}/users/{users[0]['id']}"


async def user_sessions(base: str, realm: str, username: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {await admin_token(base)}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(await _user_url(http, base, realm, username) + "/sessions") as r:
            sessions: list[dict[str, Any]] = await r.json()
            return sessions


async def logout_user(base: str, realm: str, username: str) -> None:
    """End every Keycloak session of the user (tests start from a clean slate)."""
    headers = {"Authorization": f"Bearer {await admin_token(base)}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(await _user_url(http, base, realm, username) + "/logout") as r:
            assert r.status == 204, await r.text()


async def refresh(
    issuer: str, refresh_token: str, client_id: str = "proxy", secret: str = "proxy-secret"
) -> tuple[int, dict[str, Any]]:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id,
            "client_secret": secret}  # fmt: skip
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{issuer}/protocol/openid-connect/token", data=form) as r:
            return r.status, await r.json()


async def set_client_attribute(base: str, realm: str, client_id: str, name: str, value: str) -> str:
    """Set one attribute of a client (e.g. its back-channel logout URL); returns the old value."""
    headers = {"Authorization": f"Bearer {await admin_token(base)}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"{base}/admin/realms/{realm}/clients", params={"clientId": client_id}) as r:
            client = (await r.json())[0]
        old: str = client.get("attributes", {}).get(name, "")
        client.setdefault("attributes", {})[name] = value
        async with http.put(f"{base}/admin/realms/{realm}/clients/{client['id']}", json=client) as r:
            assert r.status == 204, await r.text()
        return old


async def create_user(base: str, realm: str, username: str, password: str) -> str:
    """A throw-away user (tests running side by side each get their own); returns its id."""
    user = {"username": username, "enabled": True, "email": f"{username}@example.test", "emailVerified": True,
            "firstName": username.capitalize(), "lastName": "Test", "requiredActions": [],
            "credentials": [{"type": "password", "value": password, "temporary": False}]}  # fmt: skip
    headers = {"Authorization": f"Bearer {await admin_token(base)}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{base}/admin/realms/{realm}/users", json=user) as r:
            assert r.status == 201, await r.text()
            return r.headers["Location"].rsplit("/", 1)[1]


async def delete_user(base: str, realm: str, user_id: str) -> None:
    headers = {"Authorization": f"Bearer {await admin_token(base)}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.delete(f"{base}/admin/realms/{realm}/users/{user_id}") as r:
            assert r.status in (204, 404)


@asynccontextmanager
async def backchannel_url(base: str, realm: str, url: str, client_id: str = "proxy") -> AsyncIterator[None]:
    """Point the client's back-channel logout URL at ``url`` ("" for none) for the duration."""
    old = await set_client_attribute(base, realm, client_id, "backchannel.logout.url", url)
    try:
        yield
    finally:
        await set_client_attribute(base, realm, client_id, "backchannel.logout.url", old)
