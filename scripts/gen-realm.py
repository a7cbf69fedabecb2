#!/usr/bin/env python3
"""Generate config/keycloak-realm.json, the Keycloak realm "demo" used by the tests and the demo.

Stdlib only, deterministic output: run it again after editing this file and commit both.

    python3 scripts/gen-realm.py            # writes config/keycloak-realm.json
    python3 scripts/gen-realm.py --check    # exit 1 if the committed file is out of date

Contents:
  - client "proxy" (confidential, secret "proxy-secret"): the auth proxy. Back-channel logout to
    http://127.0.0.1:4180/oauth/backchannel_logout with the sid claim, no front-channel logout,
    password grant enabled for tests, "roles" and "groups" claims in ID/access tokens, and an
    Audience mapper that puts "proxy" in the aud of its access tokens (so the proxy accepts them as
    bearer tokens: Keycloak's own aud is "account" or none). Client role "editor".
  - client "other-app" (confidential, secret "other-app-secret"): another application of the realm,
    to test that signing out of it ends the proxy's sessions too. Client role "viewer".
  - realm roles proxy-user, auditor; groups engineering, finance, support, and BIG_GROUPS teams.
  - users (all with email, names, emailVerified and no required actions, so Keycloak 26 does not ask
    them to complete a profile at first login):
      alice    / alice-password     role proxy-user, group engineering
      bob      / bob-password       no groups, no proxy-user role
      bigtoken / bigtoken-password  role proxy-user, member of BIG_GROUPS groups with ~50-character
                                    names, so that his ID token is longer than 20,000 characters
      carol    / carol-password     realm role auditor, client role proxy:editor, group finance,
                                    carol@example.com        (authorization tests: allowed by each rule)
      dave     / dave-password      realm role proxy-user, client role other-app:viewer, group support,
                                    dave@example.net         (authorization tests: denied by each rule)

The AUTHZ_* parts (carol, dave, their roles and groups, the audience mapper) are also added to an
already running Keycloak, without re-importing anything, by tests/support/keycloak_authz.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "config" / "keycloak-realm.json"

REALM = "demo"
PROXY_BACKCHANNEL_LOGOUT_URL = "http://127.0.0.1:4180/oauth/backchannel_logout"
BIG_GROUPS = 300


def big_group_name(i: int) -> str:
    # 50 characters, e.g. team-0001-platform-engineering-observability-squad
    return f"team-{i:04d}-platform-engineering-observability-squad"


def user(username: str, first: str, last: str, email: str, *, roles: list[str], groups: list[str],
         client_roles: dict[str, list[str]] | None = None) -> dict:
    u = {
        "username": username,
        "enabled": True,
        "email": email,
        "emailVerified": True,
        "firstName": first,
        "lastName": last,
        "credentials": [{"type": "password", "value": f"{username}-password", "temporary": False}],
        # Keycloak gives imported users only the roles listed here: without the realm's default roles
        # (account roles among them) its account console fails for them with 401.
        "realmRoles": ["default-roles-demo", *roles],
        "groups": groups,
        "requiredActions": [],
    }
    if client_roles:
        u["clientRoles"] = client_roles
    return u


# --- authorization tests (issue 6): also applied to a running Keycloak by tests/support/keycloak_authz.py

AUTHZ_REALM_ROLES = [{"name": "auditor", "description": "reads the books (authorization tests)"}]
AUTHZ_CLIENT_ROLES = {
    "proxy": [{"name": "editor", "description": "client role proxy:editor (authorization tests)"}],
    "other-app": [{"name": "viewer", "description": "client role other-app:viewer (authorization tests)"}],
}
AUTHZ_GROUPS = ["finance", "support"]
AUTHZ_USERS = [
    user("carol", "Carol", "Danvers", "carol@example.com",
         roles=["auditor"], groups=["/finance"], client_roles={"proxy": ["editor"]}),
    user("dave", "Dave", "Lister", "dave@example.net",
         roles=["proxy-user"], groups=["/support"], client_roles={"other-app": ["viewer"]}),
]
PROXY_AUDIENCE_MAPPER = {
    "name": "audience proxy",
    "protocol": "openid-connect",
    "protocolMapper": "oidc-audience-mapper",
    "consentRequired": False,
    "config": {
        "included.client.audience": "proxy",
        "id.token.claim": "false",
        "access.token.claim": "true",
        "introspection.token.claim": "true",
    },
}


def claim_mappers() -> list[dict]:
    where = {
        "id.token.claim": "true",
        "access.token.claim": "true",
        "userinfo.token.claim": "true",
        "introspection.token.claim": "true",
    }
    return [
        {
            "name": "realm roles (flat) in id token",
            "protocol": "openid-connect",
            "protocolMapper": "oidc-usermodel-realm-role-mapper",
            "consentRequired": False,
            "config": {"claim.name": "roles", "jsonType.label": "String", "multivalued": "true", **where},
        },
        {
            "name": "groups",
            "protocol": "openid-connect",
            "protocolMapper": "oidc-group-membership-mapper",
            "consentRequired": False,
            "config": {"claim.name": "groups", "full.path": "false", **where},
        },
        PROXY_AUDIENCE_MAPPER,
    ]


def client(client_id: str, name: str, secret: str, redirect_uris: list[str], attributes: dict,
           mappers: list[dict] | None = None) -> dict:
    c = {
        "clientId": client_id,
        "name": name,
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "secret": secret,
        "standardFlowEnabled": True,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": True,
        "serviceAccountsEnabled": False,
        "frontchannelLogout": False,
        # Only a trailing "*" is a wildcard; for http on loopback Keycloak ignores the port.
        "redirectUris": redirect_uris,
        "webOrigins": ["+"],
        "attributes": attributes,
    }
    if mappers:
        c["protocolMappers"] = mappers
    return c


def realm() -> dict:
    big_groups = [big_group_name(i) for i in range(1, BIG_GROUPS + 1)]
    return {
        "realm": REALM,
        "enabled": True,
        "sslRequired": "none",
        "accessTokenLifespan": 300,
        "ssoSessionIdleTimeout": 1800,
        "ssoSessionMaxLifespan": 36000,
        "roles": {
            "realm": [{"name": "proxy-user", "description": "may pass the auth proxy"}, *AUTHZ_REALM_ROLES],
            "client": AUTHZ_CLIENT_ROLES,
        },
        "groups": [{"name": "engineering", "path": "/engineering"}]
        + [{"name": g, "path": f"/{g}"} for g in AUTHZ_GROUPS]
        + [{"name": g, "path": f"/{g}"} for g in big_groups],
        "users": [
            user("alice", "Alice", "Liddell", "alice@example.test",
                 roles=["proxy-user"], groups=["/engineering"]),
            user("bob", "Bob", "Builder", "bob@example.org", roles=[], groups=[]),
            user("bigtoken", "Big", "Token", "bigtoken@example.test",
                 roles=["proxy-user"], groups=[f"/{g}" for g in big_groups]),
            *AUTHZ_USERS,
        ],
        "clients": [
            client(
                "proxy", "OIDC auth reverse proxy", "proxy-secret",
                ["http://127.0.0.1/*", "http://localhost/*"],
                {
                    "post.logout.redirect.uris": "+",
                    "backchannel.logout.url": PROXY_BACKCHANNEL_LOGOUT_URL,
                    "backchannel.logout.session.required": "true",
                    "backchannel.logout.revoke.offline.tokens": "false",
                },
                claim_mappers(),
            ),
            client(
                "other-app", "Another application of the realm", "other-app-secret",
                ["http://127.0.0.1/*"],
                {"post.logout.redirect.uris": "+"},
            ),
        ],
    }


def render() -> str:
    return json.dumps(realm(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="only compare with the file, exit 1 if different")
    ap.add_argument("-o", "--output", type=Path, default=OUT)
    a = ap.parse_args()
    text = render()
    if a.check:
        ok = a.output.exists() and a.output.read_text(encoding="utf-8") == text
        print(f"{a.output}: {'up to date' if ok else 'OUT OF DATE, run scripts/gen-realm.py'}", file=sys.stderr)
        return 0 if ok else 1
    a.output.parent.mkdir(parents=True, exist_ok=True)
    a.output.write_text(text, encoding="utf-8")
    print(f"wrote {a.output} ({len(text)} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
