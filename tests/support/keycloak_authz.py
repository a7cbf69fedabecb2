"""The authorization tests' part of the realm (scripts/gen-realm.py's AUTHZ_* definitions: roles,
client roles, groups, carol and dave, the proxy's audience mapper), added to a running Keycloak
through the admin REST API: only what is missing is created, nothing is deleted or re-imported, and
no other user is touched, so it is safe on a Keycloak other test runs are using.

    python -m tests.support.keycloak_authz http://127.0.0.1:18080
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp

from tests.support.keycloak_admin import admin_token

GEN_REALM = Path(__file__).resolve().parents[2] / "scripts" / "gen-realm.py"


def realm_definitions() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_realm", GEN_REALM)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Admin:
    def __init__(self, http: aiohttp.ClientSession, base: str, realm: str) -> None:
        self.http, self.url = http, f"{base}/admin/realms/{realm}"

    async def get(self, path: str, **params: str) -> Any:
        async with self.http.get(self.url + path, params=params) as r:
            if r.status == 404:
                return None
            assert r.status == 200, f"GET {path}: {r.status} {await r.text()}"
            return await r.json()

    async def send(self, method: str, path: str, body: Any = None) -> None:
        async with self.http.request(method, self.url + path, json=body) as r:
            # 409: created meanwhile by a concurrent run, which is just as good
            assert r.status in (200, 201, 204, 409), f"{method} {path}: {r.status} {await r.text()}"

    async def client_uuid(self, client_id: str) -> str:
        found = await self.get("/clients", clientId=client_id)
        assert found, f"client {client_id} is missing from the realm"
        uuid: str = found[0]["id"]
        return uuid


async def ensure_authz_realm(base: str, realm: str = "demo") -> None:
    """Make the running Keycloak hold what the authorization tests need (idempotent, additive)."""
    d = realm_definitions()
    headers = {"Authorization": f"Bearer {await admin_token(base)}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        kc = _Admin(http, base, realm)
        for role in d.AUTHZ_REALM_ROLES:
            if await kc.get(f"/roles/{role['name']}") is None:
                await kc.send("POST", "/roles", role)
        clients = {c: await kc.client_uuid(c) for c in ("proxy", *d.AUTHZ_CLIENT_ROLES)}
        for client_id, roles in d.AUTHZ_CLIENT_ROLES.items():
            for role in roles:
                if await kc.get(f"/clients/{clients[client_id]}/roles/{role['name']}") is None:
                    await kc.send("POST", f"/clients/{clients[client_id]}/roles", role)
        groups: dict[str, str] = {}
        for name in d.AUTHZ_GROUPS:
            found = [g for g in await kc.get("/groups", search=name, exact="true") if g["name"] == name]
            if not found:
                await kc.send("POST", "/groups", {"name": name})
                found = [g for g in await kc.get("/groups", search=name, exact="true") if g["name"] == name]
            groups[f"/{name}"] = found[0]["id"]
        mappers = await kc.get(f"/clients/{clients['proxy']}/protocol-mappers/models")
        if not any(m["name"] == d.PROXY_AUDIENCE_MAPPER["name"] for m in mappers):
            await kc.send(
                "POST", f"/clients/{clients['proxy']}/protocol-mappers/models", d.PROXY_AUDIENCE_MAPPER
            )
        for user in d.AUTHZ_USERS:
            await _ensure_user(kc, user, clients, groups)


async def _ensure_user(
    kc: _Admin, user: dict[str, Any], clients: dict[str, str], groups: dict[str, str]
) -> None:
    found = await kc.get("/users", username=user["username"], exact="true")
    if not found:
        plain = {k: v for k, v in user.items() if k not in ("realmRoles", "clientRoles", "groups")}
        await kc.send("POST", "/users", plain)
        found = await kc.get("/users", username=user["username"], exact="true")
        # Users made through the API get the realm's default roles; the realm file's users don't.
        defaults = await kc.get(f"/users/{found[0]['id']}/role-mappings/realm")
        await kc.send("DELETE", f"/users/{found[0]['id']}/role-mappings/realm", defaults)
    uid = found[0]["id"]
    wanted = [await kc.get(f"/roles/{name}") for name in user["realmRoles"]]
    await kc.send("POST", f"/users/{uid}/role-mappings/realm", wanted)
    for client_id, names in user.get("clientRoles", {}).items():
        roles = [await kc.get(f"/clients/{clients[client_id]}/roles/{name}") for name in names]
        await kc.send("POST", f"/users/{uid}/role-mappings/clients/{clients[client_id]}", roles)
    for path in user["groups"]:
        await kc.send("PUT", f"/users/{uid}/groups/{groups[path]}")


if __name__ == "__main__":
    asyncio.run(ensure_authz_realm(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:18080"))
    print("realm demo has the authorization tests' roles, groups, users and mappers", file=sys.stderr)
