"""Attack table for authorization.rules: regexes that would backtrack (refused at start-up, and the
worst accepted shape stays fast on the longest path a rule runs on), path spellings against a rule,
method spoofing (overrides, HEAD, lower case, unknown methods)."""

from __future__ import annotations

import time

import pytest
from multidict import CIMultiDict

from proxy.config.rules import RuleConfig
from proxy.identity import Identity
from proxy.rules import MAX_SUBJECT, RuleTable, effective_methods
from proxy.saferegex import UnsafeRegex, check
from tests.conftest import ProxyFactory
from tests.support.fake_provider import FakeProvider
from tests.support.login import signed_in_browser

NOBODY = Identity(sub="x")

CATASTROPHIC = [
    r"^(a+)+$", r"^(a*)*$", r"^(a|aa)+$", r"^(a|a?)+$", r"^(.*a){12}$", r"^(\w+\s?)+$",
    r"^/(x+x+)+y", r"^/.*a.*a.*a", r"^(?:a+){2,}", r"^(a)\1", r"^(?P<x>a)(?P=x)", r"^(?=a)",
    r"^(?<=a)b", r"^(?(1)a|b)", r"^/" + "a" * 300,
]  # fmt: skip


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_backtracking_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(UnsafeRegex):
        check(pattern)


@pytest.mark.parametrize(
    "pattern", [r"^/.*a.*b", r"^/[a-z]+a[a-z]+b", r"^/a{1,2000}a{1,2000}b", r"^/(?:ab)+.+c"]
)
def test_the_worst_accepted_shapes_stay_fast_on_the_longest_subject(pattern: str) -> None:
    t = RuleTable([RuleConfig(path=pattern, deny=True)])
    subject = "/" + "a" * (MAX_SUBJECT - 1)
    started = time.perf_counter()
    t.decide(NOBODY, ("GET",), subject)
    assert time.perf_counter() - started < 0.5


SPELLINGS = [
    "/admin", "/admin/", "/admin/x", "/%61dmin/x", "/%61%64%6d%69%6e", "/admin;x/y", "/admin%3bx/y",
    "/x/../admin", "/x/..;/admin", "/x/%2e%2e/admin", "/x/%2E%2E/admin", "/x/..%2fadmin",
    "/x/..\\admin", "/x/..%5cadmin", "//admin", "/./admin", "/admin/./", "/x/%252e%252e/admin",
    "/x/%c0%ae%c0%ae/admin", "/admin?x=/public", "/admin%2F..",
]  # fmt: skip


@pytest.mark.parametrize("path", SPELLINGS)
def test_every_spelling_of_admin_meets_its_rule(path: str) -> None:
    t = RuleTable([RuleConfig(path="/admin", deny=True), RuleConfig(path="/", allowed_roles=[])])
    found = t.decide(NOBODY, ("GET",), path)
    assert found is not None and found.index == 0, path


@pytest.mark.parametrize(
    ("method", "headers", "query"),
    [
        ("POST", {"X-HTTP-Method-Override": "DELETE"}, ""),
        ("POST", {"X-HTTP-Method-Override": "delete"}, ""),
        ("POST", {"X-HTTP-Method": "DELETE"}, ""),
        ("POST", {"X-Method-Override": "GET,DELETE"}, ""),
        ("POST", {}, "_method=DELETE"),
        ("POST", {}, "_method=delete&_method=GET"),
        ("delete", {}, ""),
    ],
)
def test_method_spoofing_meets_the_delete_rule(method: str, headers: dict[str, str], query: str) -> None:
    t = RuleTable([RuleConfig(path="/", methods=["DELETE"], deny=True)])
    found = t.decide(NOBODY, effective_methods(method, headers, query), "/x")
    assert found is not None and found.index == 0


@pytest.mark.parametrize(
    ("method", "headers", "query"),
    [("BREW", {}, ""), ("POST", {"X-HTTP-Method-Override": "PURGE"}, ""), ("POST", {}, "_method=%00"),
     ("POST", {"X-HTTP-Method-Override": ""}, ""), ("G ET", {}, "")],
)  # fmt: skip
def test_unknown_methods_fail_closed(method: str, headers: dict[str, str], query: str) -> None:
    t = RuleTable([RuleConfig(path="/", methods=["DELETE"], deny=True)])
    assert effective_methods(method, headers, query) is None
    assert t.decide(NOBODY, effective_methods(method, headers, query), "/x") is not None


# --- /oauth/auth: the original request as the front reports it ----------------------------------

ORIGINAL = [
    # (headers describing the original request, status)
    ({"X-Original-Method": "GET", "X-Original-URI": "/other"}, 202),
    ({"X-Original-Method": "GET", "X-Original-URI": "/admin/x"}, 202),
    ({"X-Original-Method": "DELETE", "X-Original-URI": "/admin/x"}, 403),
    ({"X-Original-Method": "DELETE", "X-Original-URI": "/x/..;/admin"}, 403),
    ({"X-Original-Method": "DELETE", "X-Original-URI": "/%61dmin"}, 403),
    ({"X-Original-Method": "GET", "X-Original-URI": "/admin", "X-HTTP-Method-Override": "DELETE"}, 403),
    ({"X-Original-Method": "GET", "X-Original-URI": "/admin?_method=DELETE"}, 403),
    ({"X-Original-Method": "delete", "X-Original-URI": "/other"}, 403),  # not a plain method: unknown
    ({"X-Original-Method": "BREW", "X-Original-URI": "/other"}, 403),
    ({"X-Original-URI": "/other"}, 403),  # no method
    ({"X-Original-Method": "GET"}, 403),  # no URI
    ({"X-Original-Method": "GET", "X-Original-URI": "http://h/other"}, 403),  # not origin-form
    ({"X-Original-Method": "DELETE", "X-Original-URI": "/admin", "X-Forwarded-Method": "GET",
      "X-Forwarded-Uri": "/other"}, 403),  # another front's headers are not read
]  # fmt: skip


@pytest.mark.parametrize(("headers", "expected"), ORIGINAL)
async def test_oauth_auth_rules_on_the_original_request(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, headers: dict[str, str], expected: int
) -> None:
    proxy = await make_proxy(
        issuer=fake_provider.issuer, auth_request={"front": "nginx"},
        authorization={"rules": [{"path": "/admin", "methods": ["DELETE"], "deny": True}]},
    )  # fmt: skip
    browser = await signed_in_browser(proxy.url)
    async with browser, browser.get(proxy.url + "/oauth/auth", headers=headers) as r:
        assert r.status == expected


async def test_oauth_auth_refuses_a_doubled_original_method(
    make_proxy: ProxyFactory, fake_provider: FakeProvider
) -> None:
    proxy = await make_proxy(
        issuer=fake_provider.issuer, auth_request={"front": "nginx"},
        authorization={"rules": [{"path": "/admin", "methods": ["DELETE"], "deny": True}]},
    )  # fmt: skip
    browser = await signed_in_browser(proxy.url)
    doubled = CIMultiDict([("X-Original-Method", "GET"), ("X-Original-Method", "DELETE"),
                           ("X-Original-URI", "/admin")])  # fmt: skip
    async with browser, browser.get(proxy.url + "/oauth/auth", headers=doubled) as r:
        assert r.status == 400
