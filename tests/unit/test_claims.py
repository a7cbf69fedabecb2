"""proxy.claims: groups and roles along claim paths, for Keycloak and for other providers."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.claims import DEFAULT_ROLES_CLAIMS, check_path, collect, values_at

KEYCLOAK_ACCESS_TOKEN: dict[str, Any] = {
    "sub": "s",
    "realm_access": {"roles": ["auditor", "offline_access"]},
    "resource_access": {"proxy": {"roles": ["editor"]}, "account": {"roles": ["view-profile"]}},
    "groups": ["finance"],
}


def test_keycloak_realm_and_client_roles() -> None:
    assert collect([KEYCLOAK_ACCESS_TOKEN], DEFAULT_ROLES_CLAIMS) == (
        "auditor",
        "offline_access",
        "proxy:editor",
        "account:view-profile",
    )


@pytest.mark.parametrize(
    ("claims", "path", "values"),
    [
        ({"groups": ["a", "b"]}, "groups", ["a", "b"]),
        ({"groups": "a"}, "groups", ["a"]),
        ({"groups": [1, "b"]}, "groups", ["1", "b"]),
        ({"groups": [True, None, {"x": 1}, ["y"], ""]}, "groups", []),
        ({"groups": 5}, "groups", []),
        ({"groups": {"a": 1}}, "groups", []),
        ({}, "groups", []),
        ({"cognito:groups": ["admins"]}, "cognito:groups", ["admins"]),
        ({"https://example.com/roles": ["admin"]}, "https://example.com/roles", ["admin"]),
        ({"app": {"https://example.com/roles": ["x"]}}, "app.https://example.com/roles", ["x"]),
        ({"realm_access": ["not", "an", "object"]}, "realm_access.roles", []),
        ({"resource_access": {"c": {"roles": "r"}, "d": "junk"}}, "resource_access.*.roles", ["c:r"]),
        ({"resource_access": "junk"}, "resource_access.*.roles", []),
        ({"a.b": ["literal"], "a": {"b": ["nested"]}}, "a.b", ["literal"]),  # the longest name wins
    ],
)
def test_values_at(claims: dict[str, Any], path: str, values: list[str]) -> None:
    assert values_at(claims, path) == values


def test_collect_merges_sources_in_order_without_duplicates() -> None:
    id_token = {"groups": ["finance", "staff"]}
    access_token = {"groups": ["staff", "ops"]}
    assert collect([id_token, access_token], ["groups"]) == ("finance", "staff", "ops")
    assert collect([], ["groups"]) == ()


@pytest.mark.parametrize("path", ["groups", "realm_access.roles", "resource_access.*.roles", "a:b"])
def test_good_paths(path: str) -> None:
    assert check_path(path) == path


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "not a claim path"),
        ("a..b", "not a claim path"),
        (".a", "not a claim path"),
        ("a.*.*.b", "only one"),
        ("resource_access.*", "must be followed"),
    ],
)
def test_bad_paths(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_path(path)
