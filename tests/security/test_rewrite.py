"""Attack table for upstreams[].rewrite: a rewrite can't be made to produce a path that leaves the
origin-form (dot segments, '//', backslash, control characters, a query or fragment smuggled in),
and the regexes start-up accepts can't be made to backtrack for long."""

from __future__ import annotations

import time

import pytest

from proxy.rewrite import MAX_PATH, Rewrite, RewriteRefused, check_pattern

# Each rewrite is accepted at start-up; the canonical paths are what a client can make the proxy
# see (proxy.paths.canonical_path has already decoded once and resolved dot segments).
CASES = [
    # a replacement that glues a captured '.' into a dot segment
    (r"^/a/([^/]*)$", r"/b/.\1", "/a/.", "dot segment"),
    (r"^/a/([^/]*)$", r"/b/\1/x", "/a/..", "dot segment"),
    # a capture that starts with '/' makes '//': another host to some clients
    (r"^/a(.*)$", r"/\1", "/a/evil.example", "single '/'"),
    (r"^/a/(.*)$", r"/\1", "/a//x", "single '/'"),
    (r"^/a/(.*)$", r"/b/\1", "/a/x//y", "'//'"),
    # decoded characters that must never reach an upstream raw
    (r"^/a/(.*)$", r"/b/\1", "/a/x\x00y", "control character"),
    (r"^/a/(.*)$", r"/b/\1", "/a/x\r\nHost: evil", "control character"),
    (r"^/a/(.*)$", r"/b/\1", "/a/x\\..\\y", "'\\\\'"),
    # a decoded '?' or '#' (sent as %3F/%23) must not become a query or fragment
    (r"^/a/(.*)$", r"/b/\1", "/a/x?admin=1", "'\\?' or '#'"),
    (r"^/a/(.*)$", r"/b/\1", "/a/x#frag", "'\\?' or '#'"),
]


@pytest.mark.parametrize(("pattern", "replacement", "canonical", "why"), CASES)
def test_rewritten_paths_that_leave_origin_form_are_refused(
    pattern: str, replacement: str, canonical: str, why: str
) -> None:
    compiled = check_pattern(pattern)
    with pytest.raises(RewriteRefused, match=why):
        Rewrite(compiled, replacement).apply(canonical)


# The slowest patterns start-up accepts (two overlapping unbounded quantifiers), against inputs
# that make them fail after trying every split.
WORST = [r"^/(.*)a(.*)b$", r"^/a(/.*)?(.*)b$", r"^/(.*)(.*)x$", r"^/([^/]*)([^/]*)!$", r"(\w+)=(\w+);$"]


@pytest.mark.parametrize("pattern", WORST)
def test_the_worst_accepted_pattern_is_fast_on_the_longest_path(pattern: str) -> None:
    rewrite = Rewrite(check_pattern(pattern), "/x")
    path = "/" + "a" * (MAX_PATH - 1)
    started = time.perf_counter()
    rewrite.apply(path)
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("pattern", [r"^/(a+)+$", r"^/(a|aa)+$", r"^/(.*)(.*)(.*)x$", r"^/(\w+)\1$"])
def test_exponential_and_cubic_patterns_never_reach_a_request(pattern: str) -> None:
    with pytest.raises(ValueError):
        check_pattern(pattern)
