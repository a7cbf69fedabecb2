"""The second Keycloak realm, ``demo2`` (config/keycloak-realm-demo2.json): imported by
scripts/keycloak.sh at start; on a Keycloak that is already running (``KEYCLOAK_URL``), created
through the admin API when it is missing. Import the fixture into a test module to use it."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.conftest import ROOT, Keycloak

REALM2 = ROOT / "config" / "keycloak-realm-demo2.json"


@pytest.fixture(scope="session", name="demo2")
def demo2_realm(keycloak: Keycloak) -> Keycloak:
    """The second realm, created through the admin API if this Keycloak lacks it (synchronous: a
    session fixture, outside any test's event loop)."""
    realm = Keycloak(keycloak.url, "demo2")
    try:
        urllib.request.urlopen(realm.issuer + "/.well-known/openid-configuration", timeout=10).close()
        return realm
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
    form = urllib.parse.urlencode(
        {"grant_type": "password", "client_id": "admin-cli", "username": "admin", "password": "admin"}
    ).encode()
    token_url = f"{keycloak.url}/realms/master/protocol/openid-connect/token"
    with urllib.request.urlopen(token_url, data=form, timeout=30) as r:
        token = json.loads(r.read())["access_token"]
    create = urllib.request.Request(
        f"{keycloak.url}/admin/realms",
        data=REALM2.read_bytes(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        urllib.request.urlopen(create, timeout=60).close()
    except urllib.error.HTTPError as exc:
        if exc.code != 409:  # 409: another test process made it meanwhile
            raise
    return realm
