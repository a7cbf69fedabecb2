"""proxy.sessions.base: Ticket, Identity and Session."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest

from proxy.identity import Identity
from proxy.sessions.base import SESSION_FORMAT, Session, Ticket

IDENTITY = Identity(
    sub="sub-1", email="alice@example.com", preferred_username="alice", name="Alice", groups=("dev", "ops")
)
SESSION = Session(
    identity=IDENTITY,
    id_token="id.token.sig",
    access_token="access",
    refresh_token="refresh",
    sid="idp-session-1",
    created_at=1_000.0,
    expires_at=1_000.0 + 8 * 3600,
    access_expires_at=1_300.0,
)


# --- Ticket ----------------------------------------------------------------------------------


def test_new_ticket_sizes_and_randomness() -> None:
    a, b = Ticket.new(), Ticket.new()

    assert (len(a.id), len(a.secret)) == (Ticket.ID_BYTES, Ticket.SECRET_BYTES)
    assert a.id != b.id
    assert a.secret != b.secret


def test_key_has_a_redis_hash_tag_of_the_id() -> None:
    ticket = Ticket(bytes(range(16)), b"s" * 32)

    assert ticket.key == "ap:s:{000102030405060708090a0b0c0d0e0f}"
    assert re.search(r"\{[0-9a-f]{32}\}", ticket.key)


def test_key_does_not_reveal_the_secret() -> None:
    ticket = Ticket.new()

    assert ticket.secret.hex() not in ticket.key


# --- Identity --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        (["dev", "ops"], ("dev", "ops")),
        ("admins", ("admins",)),
        ([], ()),
        (None, ()),
        ([1, "two"], ("1", "two")),
        (["ok", {"nested": 1}, None, ["x"]], ("ok",)),
    ],
    ids=["list", "str", "empty", "null", "ints", "junk-members"],
)
def test_from_claims_groups(groups: Any, expected: tuple[str, ...]) -> None:
    assert Identity.from_claims({"sub": "s", "groups": groups}).groups == expected


def test_from_claims_without_groups() -> None:
    assert Identity.from_claims({"sub": "s"}).groups == ()


@pytest.mark.parametrize("groups", [5, True], ids=["number", "bool"])
def test_from_claims_scalar_groups(groups: Any) -> None:
    assert Identity.from_claims({"sub": "s", "groups": groups}).groups == ()


def test_from_claims_fields() -> None:
    identity = Identity.from_claims(
        {"sub": "sub-1", "email": "a@example.com", "preferred_username": "alice", "name": "Alice", "x": 1}
    )

    assert identity == Identity("sub-1", "a@example.com", "alice", "Alice", ())
    assert identity.user == "alice"


@pytest.mark.parametrize("username", [None, "", 42], ids=["missing", "empty", "not-a-string"])
def test_user_falls_back_to_sub(username: Any) -> None:
    claims: dict[str, Any] = {"sub": "sub-1"}
    if username is not None:
        claims["preferred_username"] = username

    identity = Identity.from_claims(claims)

    assert identity.preferred_username is None
    assert identity.user == "sub-1"


def test_from_claims_non_string_optional_claims_become_none() -> None:
    identity = Identity.from_claims({"sub": 7, "email": ["a@example.com"], "name": ""})

    assert identity == Identity(sub="7")


def test_from_claims_requires_sub() -> None:
    with pytest.raises(KeyError):
        Identity.from_claims({"email": "a@example.com"})


def test_as_json() -> None:
    assert IDENTITY.as_json() == {
        "sub": "sub-1",
        "email": "alice@example.com",
        "preferred_username": "alice",
        "name": "Alice",
        "groups": ["dev", "ops"],
        "roles": [],
    }


def test_from_claims_takes_groups_and_roles_read_along_claim_paths() -> None:
    claims = {"sub": "s", "groups": ["ignored"]}
    identity = Identity.from_claims(claims, groups=["finance"], roles=["auditor", "proxy:editor"])

    assert identity.groups == ("finance",) and identity.roles == ("auditor", "proxy:editor")
    assert identity.as_json()["roles"] == ["auditor", "proxy:editor"]


@pytest.mark.parametrize(
    ("value", "verified"),
    [(True, True), (False, False), ("true", True), ("False", False), (None, None), ("yes", None), (1, None)],
)
def test_from_claims_email_verified(value: Any, verified: bool | None) -> None:
    claims: dict[str, Any] = {"sub": "s", "email": "a@b.c"}
    if value is not None:
        claims["email_verified"] = value

    assert Identity.from_claims(claims).email_verified is verified


def test_identity_lists_become_tuples_and_strings_are_refused() -> None:
    assert Identity("s", groups=["a"], roles=["r"]) == Identity("s", groups=("a",), roles=("r",))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Identity("s", roles="admin")  # type: ignore[arg-type]


def test_session_round_trip_keeps_roles_and_email_verification() -> None:
    session = replace(
        SESSION, identity=replace(IDENTITY, roles=("auditor", "proxy:editor"), email_verified=True)
    )

    assert Session.from_bytes(session.to_bytes()) == session


def test_a_session_stored_before_roles_reads_as_no_roles() -> None:
    data = json.loads(SESSION.to_bytes())
    data["identity"].pop("roles")
    data["identity"].pop("email_verified")

    identity = Session.from_bytes(json.dumps(data).encode()).identity

    assert identity.roles == () and identity.email_verified is None and identity.groups == ("dev", "ops")


def test_a_session_with_malformed_roles_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Session.from_bytes(_with(identity={"sub": "s", "roles": "admin"}))


# --- Session ---------------------------------------------------------------------------------


def test_session_round_trip() -> None:
    assert Session.from_bytes(SESSION.to_bytes()) == SESSION


def test_session_round_trip_with_optional_fields_empty() -> None:
    session = replace(SESSION, refresh_token=None, sid=None, access_expires_at=None, identity=Identity("s"))

    assert Session.from_bytes(session.to_bytes()) == session


def test_serialised_session_carries_the_format_version() -> None:
    assert json.loads(SESSION.to_bytes())["version"] == SESSION_FORMAT


def test_session_without_version_is_read_as_version_1() -> None:
    data = json.loads(SESSION.to_bytes())
    del data["version"]

    assert Session.from_bytes(json.dumps(data).encode()) == SESSION


@pytest.mark.parametrize("version", [0, 2, 99, "1"])
def test_unknown_session_version(version: Any) -> None:
    data = json.loads(SESSION.to_bytes())
    data["version"] = version

    with pytest.raises(ValueError, match="unknown session format"):
        Session.from_bytes(json.dumps(data).encode())


def _without(key: str) -> bytes:
    data = json.loads(SESSION.to_bytes())
    del data[key]
    return json.dumps(data).encode()


def _with(**values: Any) -> bytes:
    return json.dumps({**json.loads(SESSION.to_bytes()), **values}).encode()


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"not json",
        b"\xff\xfe",
        b"null",
        b"42",
        b'"text"',
        b"[]",
        b"{}",
        _without("identity"),
        _without("id_token"),
        _with(identity="alice"),
        _with(identity={"sub": "s", "groups": 5}),
    ],
    ids=lambda raw: raw[:24].decode("utf-8", "replace"),
)
def test_malformed_session_is_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        Session.from_bytes(raw)


@pytest.mark.parametrize(
    ("remaining", "ttl"),
    [(3600.0, 3600), (10.2, 11), (0.4, 1), (0.0, 1), (-100.0, 1)],
)
def test_ttl_rounds_up_and_is_at_least_one(remaining: float, ttl: int) -> None:
    assert SESSION.ttl(SESSION.expires_at - remaining) == ttl


def test_rolling_upgrade_reads_fields_added_by_a_newer_version_and_defaults_missing_ones() -> None:
    data = json.loads(SESSION.to_bytes())
    data["added_by_a_newer_version"] = {"x": 1}
    data["identity"]["future_claim"] = "y"
    del data["refresh_expires_at"]  # written by an older version
    assert Session.from_bytes(json.dumps(data).encode()) == replace(SESSION, refresh_expires_at=None)


def test_a_session_never_outlives_its_refresh_token() -> None:
    s = replace(
        SESSION, expires_at=SESSION.created_at + 8 * 3600, refresh_expires_at=SESSION.created_at + 1800
    )
    assert s.ends_at() == SESSION.created_at + 1800
    assert s.ttl(SESSION.created_at) == 1800
    assert s.ttl(SESSION.created_at, idle_timeout=600) == 600


def test_an_identitys_hash_follows_its_fields() -> None:
    """Computed once (identities key per-request memos), and still the same for equal identities."""
    a = Identity("s", "e@x.test", "u", groups=["g1", "g2"], roles=("r",))
    b = Identity("s", "e@x.test", "u", groups=("g1", "g2"), roles=["r"])
    assert a == b and hash(a) == hash(b)
    assert hash(replace(a, groups=("g1",))) != hash(a)
    assert {a: 1}[b] == 1
    assert "_hash" not in json.loads(SESSION.to_bytes())["identity"]
