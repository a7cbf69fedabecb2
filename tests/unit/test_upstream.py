"""proxy.routing and proxy.upstream: routing by prefix, URL mapping and header filtering (the pure parts)."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict
from yarl import URL

from proxy.config import UpstreamConfig
from proxy.forward_headers import (
    IDENTITY_HEADERS,
    groups_value,
    identity_headers,
    response_headers,
    upstream_request_headers,
)
from proxy.identity import Identity
from proxy.routing import Router, Upstream
from proxy.trusted_proxies import Trust, parse_network

OUR_COOKIES = frozenset({"_auth_proxy", "_auth_proxy_login"})
ALICE = Identity(sub="sub-1", email="alice@example.com", preferred_username="alice", groups=("dev", "ops"))


def upstream(prefix: str = "/", url: str = "http://app:8080", *, pass_host_header: bool = True) -> Upstream:
    return Upstream(prefix, URL(url), 30.0, pass_host_header)


def request(*headers: tuple[str, str], path: str = "/x", remote: str = "10.0.0.9") -> web.Request:
    return make_mocked_request("GET", path, headers=CIMultiDict(headers)).clone(remote=remote)


def forward(
    req: web.Request,
    identity: Identity | None = ALICE,
    *,
    to: Upstream | None = None,
    trusted: tuple[str, ...] = (),
    max_groups_bytes: int | None = 2048,
) -> CIMultiDict[str]:
    return upstream_request_headers(
        req,
        to or upstream(),
        identity,
        drop_cookies=OUR_COOKIES,
        client=Trust([parse_network(n) for n in trusted]).resolve(req.remote, req.headers),
        scheme="https",
        host="proxy.example.com",
        max_groups_bytes=max_groups_bytes,
    )


# --- matching and routing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "path", "matches"),
    [
        ("/app", "/app", True),
        ("/app", "/app/", True),
        ("/app", "/app/x/y", True),
        ("/app", "/application", False),
        ("/app", "/ap", False),
        ("/app", "/", False),
        ("/app/", "/app/x", True),
        ("/app/", "/app/", True),
        ("/app/", "/app", False),
        ("/app/", "/application", False),
        ("/", "/", True),
        ("/", "/anything/at/all", True),
    ],
)
def test_matches(prefix: str, path: str, matches: bool) -> None:
    assert upstream(prefix).matches(path) is matches


def router(*prefixes: str) -> Router:
    return Router([UpstreamConfig(prefix=p, url=f"http://up{i}:80") for i, p in enumerate(prefixes)])


@pytest.mark.parametrize(
    ("path", "host"),
    [
        ("/", "up0"),
        ("/other", "up0"),
        ("/app", "up1"),
        ("/application", "up0"),
        ("/app/x", "up1"),
        ("/app/api", "up2"),
        ("/app/api/v1", "up2"),
        ("/app/apiary", "up1"),
    ],
)
def test_router_longest_prefix_wins(path: str, host: str) -> None:
    match = router("/", "/app", "/app/api").match(path)

    assert match is not None
    assert match.url.host == host


def test_router_order_of_configuration_does_not_matter() -> None:
    match = router("/app/api", "/app", "/").match("/app/api/x")

    assert match is not None
    assert match.prefix == "/app/api"


def test_router_without_a_match() -> None:
    assert router("/app").match("/other") is None


def test_router_truthiness() -> None:
    assert not Router([])
    assert router("/")


def test_from_config() -> None:
    up = Upstream.from_config(
        UpstreamConfig.model_validate(
            {"prefix": "/app", "url": "http://app:8080/base", "timeout": "5s", "pass_host_header": False}
        )
    )

    assert up == Upstream("/app", URL("http://app:8080/base"), 5.0, False)


# --- URL mapping -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_path", "expected"),
    [
        ("/x", "http://app:8080/x"),
        ("/a%2Fb/c%20d?q=%2F&r=a+b", "http://app:8080/a%2Fb/c%20d?q=%2F&r=a+b"),
        ("/caf%C3%A9", "http://app:8080/caf%C3%A9"),
    ],
)
def test_target_passes_the_raw_path_through(raw_path: str, expected: str) -> None:
    assert str(upstream("/", "http://app:8080").target(raw_path)) == expected


@pytest.mark.parametrize(
    ("prefix", "url", "raw_path", "expected"),
    [
        ("/app", "http://app:8080/base", "/app/x?y=1", "http://app:8080/base/x?y=1"),
        ("/app", "http://app:8080/base", "/app", "http://app:8080/base"),
        ("/app", "http://app:8080/base", "/app?y=1", "http://app:8080/base?y=1"),
        ("/app", "http://app:8080/base", "/app/a%2Fb?q=%20", "http://app:8080/base/a%2Fb?q=%20"),
        ("/app/", "http://app:8080/base", "/app/x", "http://app:8080/base/x"),
        ("/app", "http://app:8080/base/", "/app/x", "http://app:8080/base/x"),
        ("/", "http://app:8080/base", "/x/y", "http://app:8080/base/x/y"),
        ("/app", "https://app:8443/a/b", "/app/", "https://app:8443/a/b/"),
    ],
)
def test_target_maps_the_prefix_onto_the_base_path(
    prefix: str, url: str, raw_path: str, expected: str
) -> None:
    assert str(upstream(prefix, url).target(raw_path)) == expected


def test_target_without_base_path_keeps_the_prefix() -> None:
    assert str(upstream("/app", "http://app:8080").target("/app/x?y=1")) == "http://app:8080/app/x?y=1"


def test_target_with_percent_encoded_prefix() -> None:
    up = upstream("/app", "http://app:8080/base")
    req = make_mocked_request("GET", "/%61pp/x")
    assert up.matches(req.path)

    assert str(up.target(req.raw_path)) == "http://app:8080/base/x"


# --- request headers -------------------------------------------------------------------------


def test_hop_by_hop_and_connection_listed_headers_are_dropped() -> None:
    out = forward(
        request(
            ("Connection", "keep-alive, X-Secret"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Trailer", "X-Checksum"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("Proxy-Authorization", "Basic eDp5"),
            ("Proxy-Connection", "keep-alive"),
            ("X-Secret", "1"),
            ("Accept", "text/html"),
        )
    )

    for name in ("Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade"):
        assert name not in out
    assert "Proxy-Authorization" not in out
    assert "Proxy-Connection" not in out
    assert "X-Secret" not in out
    assert out["Accept"] == "text/html"


def test_end_to_end_headers_are_kept() -> None:
    out = forward(request(("Authorization", "Bearer t"), ("X-Custom", "a"), ("X-Custom", "b")))

    assert out["Authorization"] == "Bearer t"
    assert out.getall("X-Custom") == ["a", "b"]


@pytest.mark.parametrize("identity", [ALICE, None], ids=["signed-in", "anonymous"])
@pytest.mark.parametrize(
    "name",
    [
        "X-Forwarded-User",
        "x-forwarded-email",
        "X-FORWARDED-PREFERRED-USERNAME",
        "X-Forwarded-Groups",
        "X-Auth-Request-User",
        "X-Auth-Request-Email",
        "x-auth-request-access-token",
    ],
)
def test_client_identity_headers_are_dropped(name: str, identity: Identity | None) -> None:
    out = forward(request((name, "mallory")), identity)

    assert "mallory" not in out.getall(name, [])


@pytest.mark.parametrize("name", ["X_Forwarded_User", "X-Forwarded_Groups", "X_Auth_Request_Email"])
def test_client_identity_headers_with_underscores_are_dropped(name: str) -> None:
    out = forward(request((name, "mallory")))

    assert "mallory" not in out.values()


def test_identity_headers_are_injected() -> None:
    out = forward(request())

    assert out["X-Forwarded-User"] == "alice"
    assert out["X-Forwarded-Email"] == "alice@example.com"
    assert out["X-Forwarded-Preferred-Username"] == "alice"
    assert out["X-Forwarded-Groups"] == "dev,ops"


def test_no_identity_no_identity_headers() -> None:
    out = forward(request(), None)

    assert {name.lower() for name in out}.isdisjoint(name.lower() for name in IDENTITY_HEADERS)


@pytest.mark.parametrize(
    ("cookie", "kept"),
    [
        ("a=1; _auth_proxy=xyz; b=2", "a=1; b=2"),
        ("_auth_proxy=xyz; b=2", "b=2"),
        ("a=1; _auth_proxy_login=abc", "a=1"),
        ("a=1;_auth_proxy=xyz;b=2", "a=1;b=2"),
        ("_AUTH_PROXY=other", "_AUTH_PROXY=other"),
        ("x_auth_proxy=1; _auth_proxyx=2", "x_auth_proxy=1; _auth_proxyx=2"),
    ],
)
def test_our_cookies_are_dropped_others_kept(cookie: str, kept: str) -> None:
    assert forward(request(("Cookie", cookie))).getall("Cookie") == [kept]


@pytest.mark.parametrize("cookie", ["_auth_proxy=xyz", "_auth_proxy=xyz; _auth_proxy_login=abc", " ; "])
def test_cookie_header_is_dropped_when_nothing_is_left(cookie: str) -> None:
    assert "Cookie" not in forward(request(("Cookie", cookie)))


def test_every_cookie_header_is_filtered() -> None:
    out = forward(request(("Cookie", "_auth_proxy=xyz"), ("Cookie", "a=1; _auth_proxy_login=abc")))

    assert out.getall("Cookie") == ["a=1"]


def test_forwarded_headers_are_set_and_client_values_replaced_when_untrusted() -> None:
    out = forward(
        request(
            ("X-Forwarded-For", "1.2.3.4"),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Host", "evil.com"),
            ("Forwarded", "for=1.2.3.4;host=evil.com"),
        )
    )

    assert out.getall("X-Forwarded-For") == ["10.0.0.9"]
    assert out.getall("X-Forwarded-Proto") == ["https"]
    assert out.getall("X-Forwarded-Host") == ["proxy.example.com"]
    assert "Forwarded" not in out


def test_forwarded_for_is_appended_when_trusted() -> None:
    out = forward(
        request(("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-For", "5.6.7.8"), ("Forwarded", "for=1.2.3.4")),
        trusted=("0.0.0.0/0",),
    )

    assert out.getall("X-Forwarded-For") == ["1.2.3.4, 5.6.7.8, 10.0.0.9"]
    assert "Forwarded" not in out  # read or not, never passed on as sent


def test_forwarded_for_starts_at_the_client_when_trusted() -> None:
    """What the client wrote left of its own address is dropped: an upstream reading the left-most
    address reads the one the proxy believes."""
    out = forward(request(("X-Forwarded-For", "6.6.6.6, 1.2.3.4, 10.0.0.7")), trusted=("10.0.0.0/8",))

    assert out.getall("X-Forwarded-For") == ["1.2.3.4, 10.0.0.7, 10.0.0.9"]


def test_forwarded_for_without_client_value_when_trusted() -> None:
    assert forward(request(), trusted=("10.0.0.0/8",)).getall("X-Forwarded-For") == ["10.0.0.9"]


def test_forwarded_proto_and_host_are_ours_even_when_trusted() -> None:
    out = forward(request(("X-Forwarded-Proto", "http"), ("X-Forwarded-Host", "h")), trusted=("10.0.0.0/8",))

    assert out.getall("X-Forwarded-Proto") == ["https"]
    assert out.getall("X-Forwarded-Host") == ["proxy.example.com"]


@pytest.mark.parametrize(("pass_host", "present"), [(True, True), (False, False)])
def test_host_header(pass_host: bool, present: bool) -> None:
    out = forward(request(("Host", "proxy.example.com")), to=upstream(pass_host_header=pass_host))

    assert ("Host" in out) is present


# --- identity headers ------------------------------------------------------------------------


def test_identity_values_lose_control_characters() -> None:
    identity = Identity(
        sub="s",
        email="a@b.example\r\nX-Injected: 1",
        preferred_username="al\x00ice\x7f",
        groups=("dev\n", "o\tps"),
    )

    headers = identity_headers(identity)

    assert headers == {
        "X-Forwarded-User": "alice",
        "X-Forwarded-Email": "a@b.exampleX-Injected: 1",
        "X-Forwarded-Preferred-Username": "alice",
        "X-Forwarded-Groups": "dev,ops",
    }


def test_user_falls_back_to_sub_and_optional_headers_are_omitted() -> None:
    assert identity_headers(Identity(sub="sub-1")) == {"X-Forwarded-User": "sub-1"}


def test_unicode_identity_values_are_kept() -> None:
    headers = identity_headers(Identity(sub="s", preferred_username="José 山田"))

    assert headers["X-Forwarded-User"] == "José 山田"


@pytest.mark.parametrize(
    ("groups", "max_bytes", "expected"),
    [
        (("dev", "ops"), 7, ("dev,ops", False)),
        (("dev", "ops"), None, ("dev,ops", False)),
        (("dev", "ops", "admins"), 7, ("dev,ops", True)),
        (("dev", "ops", "admins"), 10, ("dev,ops", True)),
        (("dev", "ops", "admins"), 6, ("dev", True)),
        (("développeurs", "ops"), 13, ("développeurs", True)),
        (("much-too-long",), 4, ("", True)),
    ],
    ids=["fits", "no-limit", "cut", "cut-mid-name", "cut-before-comma", "counts-bytes", "nothing-fits"],
)
def test_groups_value_keeps_whole_names(
    groups: tuple[str, ...], max_bytes: int | None, expected: tuple[str, bool]
) -> None:
    assert groups_value(groups, max_bytes) == expected


def test_truncated_groups_are_flagged() -> None:
    identity = Identity(sub="s", groups=tuple(f"group-{i:03}" for i in range(100)))

    headers = identity_headers(identity, max_groups_bytes=256)

    assert len(headers["X-Forwarded-Groups"].encode()) <= 256
    assert headers["X-Forwarded-Groups"].startswith("group-000,group-001,")
    assert headers["X-Forwarded-Groups-Truncated"] == "true"


def test_groups_limit_reaches_the_upstream_headers() -> None:
    identity = Identity(sub="s", groups=("dev", "ops", "admins"))

    out = forward(request(), identity, max_groups_bytes=7)

    assert out["X-Forwarded-Groups"] == "dev,ops"
    assert out["X-Forwarded-Groups-Truncated"] == "true"


def test_untruncated_groups_are_not_flagged() -> None:
    assert "X-Forwarded-Groups-Truncated" not in identity_headers(ALICE)


def test_client_groups_truncated_header_is_dropped() -> None:
    out = forward(request(("X-Forwarded-Groups-Truncated", "true")))

    assert "X-Forwarded-Groups-Truncated" not in out


# --- response headers ------------------------------------------------------------------------


def test_response_headers_drop_hop_by_hop() -> None:
    out = response_headers(
        [
            ("Content-Type", "text/html"),
            ("Connection", "close, X-Internal"),
            ("X-Internal", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("Proxy-Authenticate", "Basic"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
        ]
    )

    assert list(out.items()) == [
        ("Content-Type", "text/html"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]
