"""proxy.rules: first match wins, methods (HEAD with GET, overrides), claims, require any/all, deny,
every reading of a path; and the config errors that name the rule."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.config import ConfigError, load_settings
from proxy.config.rules import RuleConfig
from proxy.identity import Identity
from proxy.rules import RuleTable, effective_methods

BASE: dict[str, Any] = {
    "provider": {"issuer_url": "https://idp.example.com/realms/main", "client_id": "proxy",
                 "client_secret": "client-s3cret"},
    "cookie": {"secret": "c" * 32},
}  # fmt: skip

CAROL = Identity(sub="c", email="carol@example.com", email_verified=True, groups=("finance",),
                 roles=("auditor",), claims=(("tenant", ("acme",)),))  # fmt: skip
DAVE = Identity(sub="d", email="dave@example.net", groups=("support",), roles=("proxy-user",))


def table(*rules: dict[str, Any]) -> RuleTable:
    return RuleTable([RuleConfig(**r) for r in rules])


def index(t: RuleTable, who: Identity, method: str, path: str) -> int | None:
    found = t.decide(who, (method,), path)
    return None if found is None else found.index


RULES = table(
    {"path": "/admin", "methods": ["DELETE"], "deny": True},
    {"path": "/admin", "allowed_roles": ["auditor"]},
    {"path": "^/api/v[0-9]+/tenants/", "claims": {"tenant": ["acme"]}},
    {"path": "/reports/", "methods": ["GET"], "allowed_groups": ["finance"], "claims": {"tenant": "x"},
     "require": "any"},
    {"path": "/reports/", "deny": True},
)  # fmt: skip


@pytest.mark.parametrize(
    ("who", "method", "path", "expected"),
    [
        (CAROL, "GET", "/admin", None),
        (CAROL, "GET", "/admin/users?x=1", None),
        (CAROL, "DELETE", "/admin/users", 0),
        (DAVE, "GET", "/admin/users", 1),
        (DAVE, "GET", "/administrator", None),  # a prefix is whole segments
        (CAROL, "GET", "/api/v2/tenants/1", None),
        (DAVE, "GET", "/api/v2/tenants/1", 2),
        (CAROL, "GET", "/reports/q1", None),
        (CAROL, "HEAD", "/reports/q1", None),  # GET covers HEAD
        (DAVE, "HEAD", "/reports/q1", 3),
        (CAROL, "POST", "/reports/q1", 4),
        (DAVE, "GET", "/elsewhere", None),
        # readings: each one's first rule must pass
        (DAVE, "GET", "/%61dmin/users", 1),
        (DAVE, "GET", "/admin;jsessionid=1/users", 1),
        (DAVE, "GET", "/public/..;/admin/users", 1),
        (DAVE, "GET", "/public/%2e%2e/admin", 1),
        (DAVE, "GET", "/x/..\\admin", 1),
        (CAROL, "DELETE", "/ADMIN/x/../", None),  # case-sensitive unless folded (see below)
    ],
)
def test_first_match_wins(who: Identity, method: str, path: str, expected: int | None) -> None:
    assert index(RULES, who, method, path) == expected


def test_a_case_insensitive_upstream_folds_path_and_prefix() -> None:
    found = RULES.decide(CAROL, ("DELETE",), "/ADMIN./x", fold=True)
    assert found is not None and found.index == 0


def test_unknown_method_or_uri_is_refused() -> None:
    assert RULES.decide(CAROL, None, "/x") is not None
    assert RULES.decide(CAROL, ("GET",), None) is not None
    assert table().decide(CAROL, None, None) is None  # no rules: nothing to decide


def test_a_long_path_that_reaches_a_regex_rule_is_refused() -> None:
    t = table({"path": "^/a.*b"})
    assert t.decide(CAROL, ("GET",), "/x" * 2000) is not None
    assert t.decide(CAROL, ("GET",), "/ab") is None


@pytest.mark.parametrize(
    ("method", "headers", "query", "expected"),
    [
        ("GET", {}, "", ("GET",)),
        ("POST", {"X-HTTP-Method-Override": "DELETE"}, "", ("POST", "DELETE")),
        ("POST", {"X-HTTP-Method": "delete"}, "", ("POST", "DELETE")),
        ("POST", {"X-Method-Override": "PUT, DELETE"}, "", ("POST", "PUT", "DELETE")),
        ("POST", {}, "a=1&_method=DELETE", ("POST", "DELETE")),
        ("POST", {"X-HTTP-Method-Override": "PURGE"}, "", None),
        ("POST", {}, "_method=", None),
        ("BREW", {}, "", None),
        (None, {}, "", None),
    ],
)
def test_method_overrides_are_checked_too(
    method: str | None, headers: dict[str, str], query: str, expected: tuple[str, ...] | None
) -> None:
    assert effective_methods(method, headers, query) == expected


def test_an_override_meets_the_rule_of_the_method_it_names() -> None:
    methods = effective_methods("POST", {"X-HTTP-Method-Override": "DELETE"}, "")
    found = RULES.decide(CAROL, methods, "/admin/users")
    assert found is not None and found.index == 0


def test_describe_lists_the_table() -> None:
    lines = RULES.describe()
    assert lines[1].strip() == "[0] DELETE prefix /admin: deny"
    assert "allow if allowed_groups in [finance] or claims.tenant in [x]" in lines[4]


@pytest.mark.parametrize(
    ("rule", "key", "message"),
    [
        ({"path": "admin"}, "authorization.rules.0.path", "prefix"),
        ({"path": "/a/../b"}, "authorization.rules.0.path", "plainly"),
        ({"path": "^(a+)+$"}, "authorization.rules.0.path", "nested quantifiers"),
        ({"path": "^/(x)\\1"}, "authorization.rules.0.path", "backreferences"),
        ({"path": "^/(?!admin)"}, "authorization.rules.0.path", "lookarounds"),
        ({"path": "^/.*a.*b.*c"}, "authorization.rules.0.path", "more than 2"),
        ({"path": "^/["}, "authorization.rules.0.path", "invalid regex"),
        ({"methods": ["BREW"]}, "authorization.rules.0.methods", "unknown method"),
        ({"claims": {"a..b": ["x"]}}, "authorization.rules.0.claims", "claim path"),
        ({"claims": {"tenant": []}}, "authorization.rules.0.claims", "at least one"),
        ({"require": "some"}, "authorization.rules.0.require", "'all' or 'any'"),
        ({"deny": True, "allowed_groups": ["x"]}, "authorization.rules.0", "deny"),
        ({"allowed_roles": "x", "bogus": 1}, "authorization.rules.0.bogus", "unknown key"),
    ],
)
def test_a_bad_rule_stops_start_up_naming_it(rule: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(**BASE, authorization={"rules": [rule]})
    text = str(info.value)
    assert key in text and message in text, text


def test_rule_claim_paths_are_read_into_identities() -> None:
    settings = load_settings(**BASE, authorization={"rules": [{"claims": {"org.tenant": ["acme"]}}]})
    assert settings.authorization.extra_claim_paths == ("org.tenant",)


def test_claim_values_survive_the_session_store() -> None:
    from proxy.sessions.base import Session

    session = Session(CAROL, "id", "at", None, None, 0.0, 1.0)
    back = Session.from_bytes(session.to_bytes())
    assert back.identity == CAROL and back.identity.claim("tenant") == ("acme",)
    assert hash(back.identity) == hash(CAROL)
