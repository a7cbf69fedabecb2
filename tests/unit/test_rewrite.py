"""upstreams[].rewrite, static:// and file:// upstreams: what start-up accepts and refuses (naming
the key), and what a rewrite makes of a canonical path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from proxy.config import ConfigError, load_settings
from proxy.rewrite import Rewrite, RewriteRefused, check_pattern
from proxy.routing import Router

BASE: dict[str, Any] = {
    "provider": {"issuer_url": "https://idp.example.com", "client_id": "c", "client_secret": "s"},
    "cookie": {"secret": "x" * 32},
}


def settings(*upstreams: dict[str, Any]) -> Any:
    return load_settings(None, **BASE, upstreams=list(upstreams))


def refused(upstream: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        settings(upstream)


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"^/(a+)+$", "quantifier inside a quantified group"),
        (r"^/(?:x*y)*$", "quantifier inside a quantified group"),
        (r"^/(a|ab)*c$", "alternation inside a quantified group"),
        (r"^/(a|ab){2}c$", "alternation inside a quantified group"),
        (r"^/((a+)?)*$", "quantifier inside a quantified group"),
        (r"^/(\w+)/\1$", "backreference"),
        (r"^/(?=a)a", "lookahead"),
        (r"^/(?<!x)y", "lookahead"),
        (r"^/(a)?(?(1)b|c)$", "conditional"),
        (r"^/(.*)/(.*)/(.*)$", "3 unbounded quantifiers"),
        (r"^/(a{1,1000})$", "quantifier"),  # {1,1000} counts as unbounded; with 2 more: refused
        (r"^/(", "not a valid regular expression"),
        ("x" * 600, "longer than 512"),
    ],
)
def test_unsafe_or_invalid_patterns_are_refused_naming_the_key(pattern: str, why: str) -> None:
    if pattern == r"^/(a{1,1000})$":
        pattern = r"^/(a{1,1000})(.*)(.*)$"
    refused({"prefix": "/", "url": "http://app:8080", "rewrite": {"pattern": pattern, "replacement": "/x"}},
            rf"upstreams\.0\.rewrite\.pattern: .*{why}")  # fmt: skip


@pytest.mark.parametrize(
    "pattern",
    [
        r"^/api/(.*)$",
        r"^/u/([^/]+)/posts/([^/]+)$",
        r"^/old/",
        r"^/v(?P<n>\d{1,3})/(.*)$",
        r"^/(a|b)/x",
        r"^/api(/.*)?$",
        r"^/(?:en|de)?/x",
    ],
)
def test_safe_patterns_are_accepted(pattern: str) -> None:
    check_pattern(pattern)


@pytest.mark.parametrize(
    ("rewrite", "why"),
    [
        ({"pattern": "^/a/(.*)$", "replacement": "/b/\\2"}, "invalid group reference"),
        ({"pattern": "^/a/(.*)$", "replacement": "b/\\1"}, "must start with '/'"),
        ({"pattern": "^/a/(.*)$"}, "replacement: required key is missing"),
        ({"pattern": "^/a", "replacement": "/b", "flags": "i"}, "flags: unknown key"),
    ],
)
def test_bad_replacements_are_refused(rewrite: dict[str, str], why: str) -> None:
    refused({"prefix": "/", "url": "http://app:8080", "rewrite": rewrite}, rf"upstreams\.0\.rewrite.*{why}")


def test_a_rewrite_needs_an_upstream_url_without_a_path() -> None:
    refused({"prefix": "/", "url": "http://app:8080/base", "rewrite": {"pattern": "^/", "replacement": "/"}},
            r"upstreams\.0: rewrite: the url must have no path")  # fmt: skip
    refused({"prefix": "/", "url": "static://204", "rewrite": {"pattern": "^/", "replacement": "/"}},
            r"upstreams\.0: rewrite: a static:// upstream")  # fmt: skip


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("static://302", "200-299 or 400-599"),
        ("static://99", "200-299 or 400-599"),
        ("static://2000", "200-299 or 400-599"),
        ("static://abc", "200-299 or 400-599"),
        ("static://", "200-299 or 400-599"),
        ("file://host/srv", "absolute directory"),
        ("file:///does/not/exist", "is not a directory"),
        ("file:///etc/hostname", "is not a directory"),
        ("file:///srv?x=1", "absolute directory"),
        ("ftp://x/y", "absolute http"),
    ],
)
def test_bad_static_and_file_urls_are_refused(url: str, why: str) -> None:
    refused({"prefix": "/", "url": url}, rf"upstreams\.0\.url: .*{why}")


def test_case_insensitive_is_refused_for_upstreams_the_proxy_answers(tmp_path: Path) -> None:
    refused(
        {"prefix": "/", "url": f"file://{tmp_path}", "case_insensitive": True},
        r"upstreams\.0: case_insensitive",
    )


def test_static_and_file_upstreams_route(tmp_path: Path) -> None:
    s = settings(
        {"prefix": "/health", "url": "static://204"}, {"prefix": "/files/", "url": f"file://{tmp_path}"}
    )
    router = Router(s.upstreams)
    health, files = router.route("/health"), router.route("/files/a/b.txt")
    assert health is not None and (health.kind, health.status) == ("static", 204)
    assert files is not None and (files.kind, files.root, files.base) == ("file", str(tmp_path), "")
    assert files.local_path("/files/a/b.txt") == "/a/b.txt"


REWRITE = Rewrite(check_pattern(r"^/api/v1/(.*)$"), r"/v1/\1")


@pytest.mark.parametrize(
    ("canonical", "sent"),
    [
        ("/api/v1/users", "/v1/users"),
        ("/api/v1/a b/é", "/v1/a%20b/%C3%A9"),  # encoded again
        ("/api/v1/%2e%2e", "/v1/%252e%252e"),  # a literal '%' is data, never an escape
        ("/api/v1/a;b", "/v1/a;b"),
        ("/other", "/other"),  # no match: unchanged
    ],
)
def test_rewrite_result_is_re_encoded(canonical: str, sent: str) -> None:
    assert REWRITE.apply(canonical) == sent


def test_http_target_uses_the_rewritten_canonical_path_and_keeps_the_query() -> None:
    s = settings({"prefix": "/api/", "url": "http://app:8080",
                  "rewrite": {"pattern": r"^/api/(.*)$", "replacement": r"/internal/\1"}})  # fmt: skip
    up = Router(s.upstreams).route("/api/x")
    assert up is not None
    assert str(up.target("/api/%61/./b;p/c?q=%2F")) == "http://app:8080/internal/a/b/c?q=%2F"


def test_a_long_path_is_not_searched() -> None:
    with pytest.raises(RewriteRefused) as info:
        REWRITE.apply("/api/v1/" + "a" * 3000)
    assert info.value.status == 414
