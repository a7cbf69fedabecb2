"""proxy.paths: the path a rule is judged on, and public routes that can't be dodged or abused."""

from __future__ import annotations

import pytest

from proxy.paths import SkipRoute, canonical_path, decoded_path, is_unambiguous, skips_auth


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("/", "/"),
        ("/admin", "/admin"),
        ("/admin?x=/../y", "/admin"),
        ("/%61dmin", "/admin"),
        ("/%41dmin", "/Admin"),
        ("/static/../admin", "/admin"),
        ("/static/%2e%2e/admin", "/admin"),
        ("/static/.%2E/admin", "/admin"),
        ("/static/..%2fadmin", "/admin"),
        ("/static/..%5cadmin", "/admin"),
        ("/static/..\\admin", "/admin"),
        ("//admin", "/admin"),
        ("/static//x", "/static/x"),
        ("/a/./b/", "/a/b/"),
        ("/a/b/..", "/a/"),
        ("/../../admin", "/admin"),
        ("/..", "/"),
        ("/%2561dmin", "/%61dmin"),  # decoded once, as the upstream decodes it
    ],
)
def test_canonical_path(raw: str, canonical: str) -> None:
    assert canonical_path(raw) == canonical


def test_decoded_path_drops_the_query() -> None:
    assert decoded_path("/a%20b?c=%2F") == "/a b"


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("/health", True),
        ("/static/app.js?v=1", True),
        ("/static/a%20b.css", True),
        ("/h%65alth", True),  # an escaped unreserved character: everyone decodes it alike
        ("/static/../admin", False),
        ("/static/%2e%2e/admin", False),
        ("/static/./app.js", False),
        ("/static//app.js", False),
        ("//static/app.js", False),
        ("/static%2Fapp.js", False),  # upstreams disagree on whether %2F separates segments
        ("/static%5capp.js", False),
        ("/static\\app.js", False),
        ("/static/%2561", False),  # double encoding
        ("/static/a%00", False),
        ("/static/a%0a", False),
        ("static/app.js", False),
        ("*", False),
    ],
)
def test_is_unambiguous(raw: str, plain: bool) -> None:
    assert is_unambiguous(raw) is plain


def test_parse_method_rule() -> None:
    route = SkipRoute.parse("GET=^/health$")
    assert route.method == "GET" and route.pattern.pattern == "^/health$"
    assert str(route) == "GET=^/health$"
    assert SkipRoute.parse("post=^/hook$").method == "POST"


def test_parse_rule_for_any_method() -> None:
    route = SkipRoute.parse("^/static/")
    assert route.method is None and str(route) == "^/static/"


def test_a_regex_may_contain_equals_signs() -> None:
    assert SkipRoute.parse("^/a=b").pattern.pattern == "^/a=b"
    assert SkipRoute.parse("GET=^/a=b$").pattern.pattern == "^/a=b$"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("FETCH=^/x", "unknown method 'FETCH'"),
        ("GET=", "the path regex is empty"),
        ("", "the path regex is empty"),
        ("^/static/(", "invalid regex"),
        ("GET=[a-", "invalid regex"),
    ],
)
def test_bad_rules_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SkipRoute.parse(spec)


ROUTES = (SkipRoute.parse("GET=^/health$"), SkipRoute.parse("^/static/"))


def skips(method: str, raw: str, *, preflight: bool = False, cors: bool = False) -> bool:
    return skips_auth(ROUTES, preflight=preflight, method=method, raw_path=raw, cors_preflight=cors)


@pytest.mark.parametrize(
    ("method", "raw", "skipped"),
    [
        ("GET", "/health", True),
        ("get", "/health", True),
        ("GET", "/health?full=1", True),
        ("GET", "/h%65alth", True),
        ("HEAD", "/health", False),  # methods match exactly
        ("POST", "/health", False),
        ("GET", "/health/x", False),
        ("GET", "/healthz", False),
        ("GET", "/static/app.js", True),
        ("POST", "/static/app.js", True),
        ("GET", "/static", False),
        ("GET", "/admin", False),
        ("GET", "/%61dmin", False),
        # spelled to look public, but meaning /admin to an upstream that resolves them:
        ("GET", "/static/../admin", False),
        ("GET", "/static/%2e%2e/admin", False),
        ("GET", "/static/..%2fadmin", False),
        ("GET", "/static/..%2Fadmin", False),
        ("GET", "/static/..\\admin", False),
        ("GET", "/static/%2e%2e%2fadmin", False),
        ("GET", "/static/%252e%252e/admin", False),
        ("GET", "/static//../admin", False),
        # public, but spelled ambiguously: signed in like everything else
        ("GET", "/static/./app.js", False),
        ("GET", "//static/app.js", False),
        ("GET", "/admin/../static/app.js", False),
        ("GET", "/static%2fapp.js", False),
    ],
)
def test_skip_routes(method: str, raw: str, skipped: bool) -> None:
    assert skips(method, raw) is skipped


def test_no_routes_skip_nothing() -> None:
    assert not skips_auth((), preflight=False, method="GET", raw_path="/", cors_preflight=False)


def test_cors_preflight_only_when_enabled_and_a_real_preflight() -> None:
    assert skips("OPTIONS", "/api/x", preflight=True, cors=True)
    assert skips("OPTIONS", "/static/../admin", preflight=True, cors=True)  # a preflight carries nothing
    assert not skips("OPTIONS", "/api/x", preflight=False, cors=True)
    assert not skips("OPTIONS", "/api/x", preflight=True, cors=False)
    assert not skips("GET", "/api/x", preflight=True, cors=True)
