"""proxy.config: the authorization and api sections, and the rules inside upstreams."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.config import ConfigError, load_settings

BASE: dict[str, Any] = {
    "provider": {"issuer_url": "https://idp.example.com/realms/main", "client_id": "proxy",
                 "client_secret": "client-s3cret"},
    "cookie": {"secret": "c" * 32},
}  # fmt: skip


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("AUTH_PROXY_"):
            monkeypatch.delenv(name)


def error_of(**data: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(**{**BASE, **data})
    return str(info.value)


def test_defaults_let_every_signed_in_user_through() -> None:
    settings = load_settings(**BASE)
    authz = settings.authorization
    assert (authz.allowed_groups, authz.allowed_roles, authz.allowed_emails, authz.allowed_email_domains) == (
        [], [], [], [],
    )  # fmt: skip
    assert authz.groups_claim == "groups"
    assert authz.roles_claims == ["realm_access.roles", "resource_access.*.roles"]
    assert authz.access_token_claims is True
    assert authz.skip_routes == () and authz.skip_auth_preflight is False
    assert settings.api.accept_bearer is False
    assert settings.api.audiences is None and settings.api.authorized_parties == []


def test_a_full_section_from_yaml(tmp_path: Path) -> None:
    data = {
        **BASE,
        "authorization": {
            "allowed_email_domains": ["Example.COM", "@example.org"],
            "allowed_emails": [" Boss@Example.com "],
            "allowed_groups": ["admins"],
            "allowed_roles": ["auditor", "proxy:editor"],
            "groups_claim": "cognito:groups",
            "roles_claims": ["roles", "https://example.com/roles"],
            "access_token_claims": False,
            "skip_auth_routes": ["GET=^/health$", "^/static/", "post=^/hooks/"],
            "skip_auth_preflight": True,
        },
        "api": {"accept_bearer": True, "audiences": ["proxy", "orders-api"], "authorized_parties": ["web"]},
        "upstreams": [
            {"prefix": "/admin", "url": "http://app", "allowed_groups": ["root"], "allowed_roles": []}
        ],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    settings = load_settings(path)
    authz = settings.authorization
    assert authz.allowed_email_domains == ["example.com", "example.org"]
    assert authz.allowed_emails == ["boss@example.com"]
    assert [str(r) for r in authz.skip_routes] == ["GET=^/health$", "^/static/", "POST=^/hooks/"]
    assert authz.skip_auth_routes == ["GET=^/health$", "^/static/", "post=^/hooks/"]
    assert settings.api.audiences == ["proxy", "orders-api"]
    upstream = settings.upstreams[0]
    assert upstream.allowed_groups == ["root"] and upstream.allowed_roles == []
    assert upstream.allowed_emails is None and upstream.allowed_email_domains is None


def test_skip_routes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_PROXY_AUTHORIZATION__SKIP_AUTH_ROUTES", '["GET=^/health$"]')
    monkeypatch.setenv("AUTH_PROXY_API__ACCEPT_BEARER", "true")
    settings = load_settings(**BASE)
    assert [str(r) for r in settings.authorization.skip_routes] == ["GET=^/health$"]
    assert settings.api.accept_bearer is True


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"authorization": {"skip_auth_routes": ["GET=^/ok$", "^/static/("]}},
         "authorization.skip_auth_routes: '^/static/(': invalid regex"),
        ({"authorization": {"skip_auth_routes": ["FETCH=^/x"]}},
         "authorization.skip_auth_routes: 'FETCH=^/x': unknown method 'FETCH'"),
        ({"authorization": {"skip_auth_routes": ["GET="]}}, "authorization.skip_auth_routes: 'GET='"),
        ({"authorization": {"allowed_emails": ["not-an-email"]}},
         "authorization.allowed_emails: 'not-an-email' is not an email address"),
        ({"authorization": {"allowed_email_domains": ["exa mple.com"]}},
         "authorization.allowed_email_domains: 'exa mple.com' is not a domain"),
        ({"authorization": {"allowed_groups": ["ok", " "]}},
         "authorization.allowed_groups: entries must not"),
        ({"authorization": {"allowed_roles": "admin"}}, "authorization.allowed_roles"),
        ({"authorization": {"groups_claim": "a..b"}},
         "authorization.groups_claim: 'a..b' is not a claim path"),
        ({"authorization": {"roles_claims": ["resource_access.*"]}}, "authorization.roles_claims"),
        ({"authorization": {"allowed_users": ["x"]}}, "authorization.allowed_users: unknown key"),
        ({"api": {"audiences": []}}, "api.audiences"),
        ({"api": {"accept_bearer": "sometimes"}}, "api.accept_bearer"),
        ({"upstreams": [{"url": "http://app", "allowed_emails": ["x"]}]},
         "upstreams.0.allowed_emails: 'x' is not an email address"),
        ({"upstreams": [{"url": "http://app", "skip_auth_routes": ["^/x"]}]},
         "upstreams.0.skip_auth_routes: unknown key"),
    ],
)  # fmt: skip
def test_bad_keys_are_named(section: dict[str, Any], message: str) -> None:
    assert message in error_of(**section)
