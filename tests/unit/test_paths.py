"""proxy.paths: the path a rule is judged on, how each kind of server reads a path, routing on
those readings (``routing.Router.route``), and public routes that can't be dodged or abused.
The same cases against the running proxy: tests/security/test_paths.py."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.config import UpstreamConfig
from proxy.paths import (
    READERS,
    SkipRoute,
    canonical_path,
    decoded_path,
    fold_case,
    is_plain,
    is_unambiguous,
    read_path,
    readings,
    skips_auth,
)
from proxy.routing import PathRefused, Router


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
        # ;params dropped from every segment before dot segments are resolved (servlet containers)
        ("/admin;x/users", "/admin/users"),
        ("/admin;/users", "/admin/users"),
        ("/admin/x;jsessionid=1", "/admin/x"),
        ("/public/..;/admin", "/admin"),
        ("/public/..;x=1/admin", "/admin"),
        ("/public;/../admin", "/admin"),
        ("/a/.;/b", "/a/b"),
        ("/a/%3B/b", "/a/b"),  # %3B too: the strictest reading
        ("/a%3bx/b", "/a/b"),
        ("/public/..%3B/admin", "/admin"),
        ("/;/admin", "/admin"),
        ("/a/b.", "/a/b."),  # a trailing dot is part of the name (except to Windows: fold_case)
        ("/a/...", "/a/..."),
        ("/a/%ff", "/a/\udcff"),  # not UTF-8: kept, byte for byte
        ("/a%00b", "/a\x00b"),
        ("/ADMIN", "/ADMIN"),  # case is kept (rules are case-sensitive)
        ("", "/"),
        ("admin", "/admin"),
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
        ("/static/app.js;x", False),  # ';' in any position, raw or encoded
        ("/static;x/app.js", False),
        ("/;/static/app.js", False),
        ("/static/app.js%3B", False),
        ("/static/app.js%3bx", False),
        ("/static/app.js%253B", False),
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
        ("GET", "/static/..;/admin", False),
        ("GET", "/static/..%3B/admin", False),
        ("GET", "/static;/../admin", False),
        ("GET", "/static/.;/app.js", False),
        ("GET", "/static/app.js;x", False),
        ("GET", "/static;x/app.js", False),
        ("GET", "/static/app.js%3Bx", False),
        ("GET", "/health;", False),
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


# --- readings ----------------------------------------------------------------------------------


def test_plain_paths_are_read_alike_without_work() -> None:
    assert is_plain("/app/x-1_2.js") and is_plain("/")
    for path in ("/a%20b", "/a;b", "/a\\b", "/a//b", "/a/./b", "/a/..", "a", "", "/.well-known/x"):
        assert not is_plain(path), path
    assert readings("/app/x") == ("/app/x",) * len(READERS)


READER_NAMES = [r.name for r in READERS]


@pytest.mark.parametrize(
    ("raw", "reader", "reading"),
    [
        ("/public/..;/admin", "canonical", "/admin"),
        ("/public/..;/admin", "nginx", "/public/..;/admin"),  # '..;' is a name to nginx
        ("/public/..;/admin", "servlet", "/admin"),
        ("/public/..%3B/admin", "servlet", "/public/..;/admin"),  # Tomcat: %3B is not a separator
        ("/public;/../admin", "unresolved", "/public;/../admin"),
        ("/a/..%2fb", "nginx", "/b"),
        ("/a/..%2fb", "segments", "/a/..%2Fb"),  # '../' is one name when %2F does not separate
        ("/a/%2e%2e/b", "literal-dots", "/a/../b"),
        ("/a/../b", "literal-dots", "/b"),
        ("/a/../b", "unresolved", "/a/../b"),
        ("/a/%252e%252e/b", "canonical", "/a/%2e%2e/b"),
        ("/a/%252e%252e/b", "lenient", "/b"),
        ("/a/%c0%ae%c0%ae/b", "lenient", "/b"),  # overlong UTF-8 '.'
        ("/a/%e0%80%ae%e0%80%ae/b", "lenient", "/b"),
        ("/a/%c0%af../b", "lenient", "/b"),  # overlong '/'
        ("/a/%u002e%u002e/b", "lenient", "/b"),  # IIS %u escapes
        ("/a/%U002E%u002E/b", "lenient", "/b"),
        ("/a\\..\\b", "canonical", "/b"),
        ("/a\\..\\b", "nginx", "/a\\..\\b"),
        ("//a//b/", "nginx", "/a/b/"),
        ("//a//b/", "segments", "//a//b/"),
        ("/a/b/..", "canonical", "/a/"),
        ("/..", "canonical", "/"),
        ("/../..", "literal-dots", "/"),
    ],
)
def test_each_reader(raw: str, reader: str, reading: str) -> None:
    assert readings(raw)[READER_NAMES.index(reader)] == reading


@pytest.mark.parametrize(
    ("path", "folded"),
    [
        ("/Admin/X", "/admin/x"),
        ("/admin./x", "/admin/x"),
        ("/admin. ./x", "/admin/x"),
        ("/admin ", "/admin"),
        ("/a/../b/.", "/a/../b/."),  # dot segments stay dot segments
        ("/", "/"),
    ],
)
def test_fold_case(path: str, folded: str) -> None:
    assert fold_case(path) == folded


def test_canonical_path_is_cheap_and_linear() -> None:
    """Per request: no backtracking, however a path is built."""
    for nasty in ("/" + "%2e%2e/" * 4000, "/" + ";" * 20000, "/a" * 10000 + "\\" * 10000, "%" * 30000):
        started = time.perf_counter()
        canonical_path(nasty)
        readings(nasty)
        assert time.perf_counter() - started < 0.5, nasty[:20]


# --- routing on the readings (routing.Router.route) ---------------------------------------------


def router(*specs: dict[str, object]) -> Router:
    return Router([UpstreamConfig.model_validate({"url": "http://app:80", **s}) for s in specs])


PREFIXES = router({"prefix": "/"}, {"prefix": "/admin"}, {"prefix": "/api/"})


@pytest.mark.parametrize(
    ("raw", "prefix"),
    [
        ("/x", "/"),
        ("/admin", "/admin"),
        ("/admin/x?y=/../z", "/admin"),
        ("/admin/x;y", "/admin"),
        ("/api/x", "/api/"),
        ("/api/x/../y", "/api/"),
        ("/api//x", "/api/"),
        ("/%61dmin/x", "/admin"),
        ("/admin./x", "/"),  # case-sensitive upstreams: another name
        ("/ADMIN/x", "/"),
        ("/page;jsessionid=1", "/"),
        ("/public/.;/app.js", "/"),
    ],
)
def test_route(raw: str, prefix: str) -> None:
    chosen = PREFIXES.route(raw)
    assert chosen is not None and chosen.prefix == prefix


@pytest.mark.parametrize(
    "raw",
    [
        "/admin;x/users",  # /admin to Tomcat, /admin;x to nginx
        "/admin%3Bx/users",
        "/;x/admin/y",
        "/public/..;/admin",
        "/public;/../admin",
        "/api/../admin",
        "/api/%2e%2e/admin",
        "/api/%2E%2E/admin",
        "/api/..%2fadmin",
        "/api/..%5cadmin",
        "/api/..\\admin",
        "/api/%252e%252e/admin",
        "/admin/..",
        "/page/../admin",
        "//admin",
        "/./admin",
        "/a%00b",
    ],
)
def test_route_refuses_a_path_servers_would_send_to_different_upstreams(raw: str) -> None:
    with pytest.raises(PathRefused):
        PREFIXES.route(raw)


def test_a_path_no_upstream_claims_in_any_reading() -> None:
    assert router({"prefix": "/api/"}).route("/other/../x") is None


BASED = router({"prefix": "/api/", "url": "http://app:80/base/"})


@pytest.mark.parametrize(
    ("raw", "sent"),
    [
        ("/api/x", "/base/x"),
        ("/api/x/../y?q=1", "/base/x/../y"),
        ("/api/x/..%2f", "/base/x/..%2f"),
        ("/%61pi/x", "/base/x"),
    ],
)
def test_route_onto_a_base_path(raw: str, sent: str) -> None:
    chosen = BASED.route(raw)
    assert chosen is not None and chosen.target(raw).raw_path == sent


@pytest.mark.parametrize(
    "raw",
    [
        "/api/../internal",  # no upstream for /internal
        "/api/..;/internal",
        "/api/%2e%2e/internal",
        "/api/../api/x",  # /api/x to the proxy, but /base/../api/x is /api/x to the upstream
        "/api/x/../../api/y",
        "/api/x/..%2f..%2f",
        "/api/x;/../../y",
    ],
)
def test_route_refuses_what_climbs_out_of_the_base_path(raw: str) -> None:
    with pytest.raises(PathRefused):
        BASED.route(raw)


def test_a_case_insensitive_upstream_matches_its_prefix_case_folded() -> None:
    iis = router({"prefix": "/", "case_insensitive": True}, {"prefix": "/admin", "case_insensitive": True})
    for raw in ("/ADMIN/x", "/Admin./x", "/admin%20/x", "/admin"):
        chosen = iis.route(raw)
        assert chosen is not None and chosen.prefix == "/admin", raw
    chosen = iis.route("/page")
    assert chosen is not None and chosen.prefix == "/"


def test_a_case_insensitive_upstream_must_not_read_a_path_as_another_upstreams() -> None:
    mixed = router({"prefix": "/", "case_insensitive": True}, {"prefix": "/admin"})
    for raw in ("/ADMIN/x", "/admin./x", "/Admin"):
        with pytest.raises(PathRefused):
            mixed.route(raw)
    chosen = mixed.route("/admin/x")
    assert chosen is not None and chosen.prefix == "/admin"


# --- any spelling ------------------------------------------------------------------------------

PIECES = ["/", ".", "..", ";", ";x", "%2e", "%2E", "%2f", "%5c", "\\", "%3b", "%3B", "%25", "%252e",
          "a", "A", "admin", "api", "%61", "%c0%ae", "%00", "%u002e", " ", "%20", "%ff", "x."]  # fmt: skip
SPELLINGS = st.lists(st.sampled_from(PIECES), max_size=14).map(lambda parts: "/" + "".join(parts))


@settings(max_examples=400, deadline=None, database=None)
@given(SPELLINGS)
def test_any_spelling(raw: str) -> None:
    """The shortcuts read as the full readers do; the canonical path has no ';', '\\', '//' or dot
    segment; a path that is routed is routed alike by every reader, and stays under the base path."""
    assert readings(raw) == tuple(read_path(raw, reader) for reader in READERS)
    canonical = canonical_path(raw)
    assert canonical == read_path(raw, READERS[0])
    segments = canonical.split("/")[1:]
    assert ";" not in canonical and "\\" not in canonical
    assert "." not in segments and ".." not in segments and "" not in segments[:-1]
    for router_ in (PREFIXES, BASED):
        try:
            chosen = router_.route(raw)
        except PathRefused:
            continue
        assert all(router_.match(view) is chosen for view in readings(raw)), raw
        if chosen is not None and chosen.base:
            sent = chosen.target(raw).raw_path
            assert all(v == "/base" or v.startswith("/base/") for v in readings(sent)), (raw, sent)
