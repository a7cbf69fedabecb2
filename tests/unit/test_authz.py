"""proxy.authz: an identity against allow-lists, and which lists apply to a prefix."""

from __future__ import annotations

from dataclasses import replace

import pytest

from proxy.authz import Rules, allows, denied_by, first_denial, global_rules, upstream_rules
from proxy.config import AuthorizationConfig, UpstreamConfig
from proxy.identity import Identity

CAROL = Identity(
    sub="c-1",
    email="Carol@Example.com",
    preferred_username="carol",
    groups=("finance", "staff"),
    roles=("auditor", "proxy:editor"),
    email_verified=True,
)


def test_no_rules_allow_everyone() -> None:
    assert not Rules()
    assert denied_by(Rules(), CAROL) is None
    assert allows(Rules(), Identity(sub="nobody"))


@pytest.mark.parametrize(
    ("rules", "failed"),
    [
        (Rules.of(groups=["finance"]), None),
        (Rules.of(groups=["admins", "staff"]), None),  # one match within a list is enough
        (Rules.of(groups=["admins"]), "allowed_groups"),
        (Rules.of(groups=["Finance"]), "allowed_groups"),  # group names are case-sensitive
        (Rules.of(roles=["auditor"]), None),
        (Rules.of(roles=["proxy:editor"]), None),
        (Rules.of(roles=["editor"]), "allowed_roles"),  # a client role is only client:role
        (Rules.of(roles=["other-app:editor"]), "allowed_roles"),
        (Rules.of(roles=["proxy-user"]), "allowed_roles"),
        (Rules.of(emails=["carol@example.com"]), None),  # emails compare case-insensitively
        (Rules.of(emails=["CAROL@EXAMPLE.COM"]), None),
        (Rules.of(emails=["dave@example.com"]), "allowed_emails"),
        (Rules.of(email_domains=["example.com"]), None),
        (Rules.of(email_domains=["@EXAMPLE.com"]), None),
        (Rules.of(email_domains=["example.net"]), "allowed_email_domains"),
        (Rules.of(email_domains=["mple.com"]), "allowed_email_domains"),  # whole domains only
        (Rules.of(email_domains=["sub.example.com"]), "allowed_email_domains"),
        (Rules.of(groups=["finance"], roles=["auditor"], email_domains=["example.com"]), None),
        (Rules.of(groups=["finance"], roles=["admin"]), "allowed_roles"),  # lists combine with AND
    ],
)
def test_each_rule_allows_and_denies(rules: Rules, failed: str | None) -> None:
    assert denied_by(rules, CAROL) == failed
    assert allows(rules, CAROL) is (failed is None)


def test_identity_without_email_fails_email_rules() -> None:
    nobody = Identity(sub="s")
    assert denied_by(Rules.of(emails=["a@b.c"]), nobody) == "allowed_emails"
    assert denied_by(Rules.of(email_domains=["b.c"]), nobody) == "allowed_email_domains"


@pytest.mark.parametrize(("verified", "passes"), [(True, True), (None, True), (False, False)])
def test_an_unverified_email_never_matches(verified: bool | None, passes: bool) -> None:
    identity = replace(CAROL, email_verified=verified)
    for rules in (Rules.of(emails=["carol@example.com"]), Rules.of(email_domains=["example.com"])):
        assert allows(rules, identity) is passes


def test_parse_query_parameters() -> None:
    rules = Rules.parse(" a, b ,", "X@Y.z", "Example.COM", "r1,c:r2")
    assert rules == Rules(
        groups=frozenset({"a", "b"}),
        emails=frozenset({"x@y.z"}),
        email_domains=frozenset({"example.com"}),
        roles=frozenset({"r1", "c:r2"}),
    )
    assert not Rules.parse()


def test_first_denial_needs_every_rule_set() -> None:
    assert first_denial([Rules.of(groups=["finance"]), Rules.of(roles=["auditor"])], CAROL) is None
    assert first_denial([Rules.of(groups=["finance"]), Rules.of(roles=["root"])], CAROL) == "allowed_roles"
    assert first_denial([], CAROL) is None


GLOBAL = AuthorizationConfig(allowed_email_domains=["example.com"], allowed_groups=["staff"])


def test_global_rules() -> None:
    assert global_rules(GLOBAL) == Rules.of(email_domains=["example.com"], groups=["staff"])


def test_an_upstream_without_rules_inherits_the_global_ones() -> None:
    upstream = UpstreamConfig(prefix="/app", url="http://app")
    assert upstream_rules(GLOBAL, upstream) == global_rules(GLOBAL)
    assert upstream_rules(GLOBAL, None) == global_rules(GLOBAL)


def test_each_key_an_upstream_sets_replaces_that_global_key() -> None:
    upstream = UpstreamConfig(prefix="/admin", url="http://app", allowed_groups=["admins"])
    assert upstream_rules(GLOBAL, upstream) == Rules.of(email_domains=["example.com"], groups=["admins"])


def test_an_empty_list_lifts_the_global_key() -> None:
    upstream = UpstreamConfig(prefix="/open", url="http://app", allowed_groups=[], allowed_email_domains=[])
    assert not upstream_rules(GLOBAL, upstream)


def test_upstream_roles_and_emails() -> None:
    upstream = UpstreamConfig(
        prefix="/x", url="http://app", allowed_roles=["proxy:editor"], allowed_emails=["Carol@example.com"]
    )
    rules = upstream_rules(AuthorizationConfig(), upstream)
    assert rules == Rules.of(roles=["proxy:editor"], emails=["carol@example.com"])
    assert allows(rules, CAROL)
