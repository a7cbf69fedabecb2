"""proxy.inject: sources, prefix and separator, caps with -Truncated, values that would read as
something else left out, groups_filter, per-upstream scopes; and config errors naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.config import ConfigError, load_settings
from proxy.identity import Identity
from proxy.inject import Injections

BASE: dict[str, Any] = {
    "provider": {"issuer_url": "https://idp.example.com/realms/main", "client_id": "proxy",
                 "client_secret": "client-s3cret"},
    "cookie": {"secret": "c" * 32},
}  # fmt: skip

CAROL = Identity(
    sub="c", preferred_username="carol", groups=("app-a", "app-b", "finance"),
    roles=("auditor", "proxy:editor"),
    claims=(("org.tenant", ("acme",)), ("org.units", ("u1", "u2"))),
)  # fmt: skip


def injections(**cfg: Any) -> Injections:
    return Injections.of(load_settings(**BASE, **cfg))


def test_roles_by_default() -> None:
    inj = injections()
    assert dict(inj.everywhere.headers(CAROL, "at", "it")) == {"X-Forwarded-Roles": "auditor,proxy:editor"}
    assert dict(inj.everywhere.headers(CAROL, "at", "it", auth=True)) == {
        "X-Auth-Request-Roles": "auditor,proxy:editor"
    }
    assert inj.strip == {"x-forwarded-roles", "x-forwarded-roles-truncated"}


def test_every_source_prefix_and_separator() -> None:
    inj = injections(
        headers={"inject": [
            {"name": "X-Tenant", "claim": "org.tenant"},
            {"name": "X-Units", "claim": "org.units", "separator": "; "},
            {"name": "Authorization", "source": "access_token", "prefix": "Bearer ", "max_bytes": 8192},
            {"name": "X-Id-Token", "source": "id_token"},
            {"name": "X-Groups-Too", "source": "groups", "separator": "|"},
            {"name": "X-Missing", "claim": "nope"},
        ]},
        authorization={},
    )  # fmt: skip
    assert dict(inj.everywhere.headers(CAROL, "tok", None)) == {
        "X-Tenant": "acme", "X-Units": "u1; u2", "Authorization": "Bearer tok",
        "X-Groups-Too": "app-a|app-b|finance",
    }  # fmt: skip
    assert dict(inj.everywhere.headers(CAROL, "tok", None, auth=True))["X-Auth-Request-Authorization"] == (
        "Bearer tok"
    )


def test_caps_keep_whole_values_and_mark_the_cut() -> None:
    many = Identity(sub="s", roles=tuple(f"role-{i:03}" for i in range(100)))
    inj = injections(headers={"inject": [{"name": "X-Forwarded-Roles", "source": "roles", "max_bytes": 64}]})
    out = inj.everywhere.headers(many, "at", None)
    assert len(out["X-Forwarded-Roles"]) <= 64 and out["X-Forwarded-Roles"].endswith("role-006")
    assert out["X-Forwarded-Roles-Truncated"] == "true"
    big = injections(headers={"inject": [{"name": "X-At", "source": "access_token", "max_bytes": 64}]})
    out = big.everywhere.headers(many, "x" * 100, None)
    assert "X-At" not in out and out["X-At-Truncated"] == "true"  # never a cut token


@pytest.mark.parametrize("evil", ["a\r\nX-Forwarded-User: root", "a\nb", "a\x00b", "a\x7f", "x,admins"])
def test_values_that_would_read_as_something_else_are_left_out(evil: str) -> None:
    who = Identity(sub="s", roles=("ok", evil))
    assert dict(injections().everywhere.headers(who, "at", None)) == {"X-Forwarded-Roles": "ok"}


def test_groups_filter_global_and_per_upstream() -> None:
    inj = injections(
        headers={"groups_filter": "app-"},
        upstreams=[{"prefix": "/", "url": "http://a"},
                   {"prefix": "/fin", "url": "http://a", "headers": {"groups_filter": "fin"}},
                   {"prefix": "/all", "url": "http://a", "headers": {"groups_filter": "",
                    "inject": [{"name": "X-G", "source": "groups"}]}}],
    )  # fmt: skip
    assert inj.for_prefix("/").filter_groups(CAROL).groups == ("app-a", "app-b")
    assert inj.for_prefix("/fin").filter_groups(CAROL).groups == ("finance",)
    assert inj.for_prefix("/all").filter_groups(CAROL).groups == CAROL.groups
    assert dict(inj.for_prefix("/all").headers(CAROL, "at", None)) == {"X-G": "app-a,app-b,finance"}
    assert {"x-g", "x-g-truncated", "x-forwarded-roles"} <= inj.strip


@pytest.mark.parametrize(
    ("cfg", "key", "message"),
    [
        ({"name": "X_Roles", "source": "roles"}, "headers.inject.0.name", "no '_'"),
        ({"name": "X Roles", "source": "roles"}, "headers.inject.0.name", "header name"),
        ({"name": "X-Roles\r\nX-A", "source": "roles"}, "headers.inject.0.name", "header name"),
        ({"name": "Host", "source": "roles"}, "headers.inject.0.name", "reserved"),
        ({"name": "content-length", "source": "roles"}, "headers.inject.0.name", "reserved"),
        ({"name": "Connection", "source": "roles"}, "headers.inject.0.name", "reserved"),
        ({"name": "Cookie", "source": "roles"}, "headers.inject.0.name", "reserved"),
        ({"name": "X-Forwarded-User", "source": "roles"}, "headers.inject.0.name", "reserved"),
        ({"name": "X-Forwarded-For", "source": "roles"}, "headers.inject.0.name", "reserved"),
        ({"name": "X-Auth-Request-Roles", "source": "roles"}, "headers.inject.0.name", "reserved"),
        ({"name": "X-Forwarded-Groups-Truncated", "source": "roles"}, "headers.inject.0.name", "reserved"),
        ({"name": "X-Forwarded-Access-Token", "source": "roles"}, "headers.inject.0.name", "built-in"),
        ({"name": "X-R", "source": "email"}, "headers.inject.0.source", "roles"),
        ({"name": "X-R"}, "headers.inject.0", "exactly one"),
        ({"name": "X-R", "source": "roles", "claim": "x"}, "headers.inject.0", "exactly one"),
        ({"name": "X-R", "claim": "a..b"}, "headers.inject.0.claim", "claim path"),
        ({"name": "X-R", "source": "roles", "prefix": "a\r\n"}, "headers.inject.0.prefix", "control"),
        ({"name": "X-R", "source": "roles", "max_bytes": 10}, "headers.inject.0.max_bytes", "64"),
    ],
)
def test_a_bad_header_stops_start_up_naming_it(cfg: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(**BASE, headers={"inject": [cfg]})
    assert key in str(info.value) and message in str(info.value), str(info.value)


def test_duplicates_and_bad_filters_are_refused() -> None:
    for headers, message in [
        ({"inject": [{"name": "X-A", "source": "roles"}, {"name": "x-a", "source": "groups"}]}, "twice"),
        ({"inject": [{"name": "X-A", "source": "roles"}, {"name": "X-A-Truncated", "source": "groups"}]},
         "Truncated"),
        ({"groups_filter": "(a+)+"}, "nested quantifiers"),
    ]:  # fmt: skip
        with pytest.raises(ConfigError) as info:
            load_settings(**BASE, headers=headers)
        assert "headers." in str(info.value) and message in str(info.value), str(info.value)
    with pytest.raises(ConfigError) as info:
        load_settings(
            **BASE, upstreams=[{"prefix": "/", "url": "http://a", "headers": {"groups_filter": "(?=x)"}}]
        )
    assert "upstreams.0.headers.groups_filter" in str(info.value)


def test_injected_claim_paths_are_read_into_identities() -> None:
    settings = load_settings(**BASE, headers={"inject": [{"name": "X-T", "claim": "org.tenant"}]})
    assert settings.authorization.extra_claim_paths == ("org.tenant",)
