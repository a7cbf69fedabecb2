"""proxy.login_state: sealing a pending login, opening it, judging its age, and the slots."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.login_state import (
    CLOCK_SKEW,
    LOGIN_TTL,
    MAX_COOKIE_BYTES,
    MAX_PENDING,
    PENDING_BYTES,
    LoginSealer,
    PendingLogin,
    login_slot,
    new_state,
)

OLD, NEW = b"o" * 32, b"n" * 32
LOGIN = PendingLogin("st", "no", "ve" * 40, "https://p.example/oauth/callback", "https://p.example/é", 1e9)


def test_round_trip_and_fresh_values_each_time() -> None:
    sealer = LoginSealer((NEW,))
    first, second = sealer.seal(LOGIN), sealer.seal(LOGIN)

    assert sealer.open(first) == sealer.open(second) == LOGIN
    assert first != second  # a new nonce per seal


def test_every_secret_opens_the_first_seals() -> None:
    rotated, old_only, new_only = LoginSealer((NEW, OLD)), LoginSealer((OLD,)), LoginSealer((NEW,))

    assert rotated.open(old_only.seal(LOGIN)) == LOGIN
    assert new_only.open(rotated.seal(LOGIN)) == LOGIN
    assert old_only.open(rotated.seal(LOGIN)) is None
    assert new_only.open(old_only.seal(LOGIN)) is None


@given(st.text(max_size=300))
def test_anything_else_opens_to_none(value: str) -> None:
    assert LoginSealer((NEW,)).open(value) is None


@given(st.integers(min_value=0, max_value=200))
def test_any_flipped_character_opens_to_none(index: int) -> None:
    sealer = LoginSealer((NEW,))
    value = sealer.seal(LOGIN)
    i = index % (len(value) - 1)  # (the last character may carry only padding bits)
    flipped = value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1 :]

    assert sealer.open(flipped) is None


@pytest.mark.parametrize(
    ("age", "fresh"),
    [(0, True), (LOGIN_TTL, True), (LOGIN_TTL + 1, False), (-CLOCK_SKEW, True), (-CLOCK_SKEW - 1, False)],
)
def test_fresh_within_the_ttl_and_the_clock_skew(age: float, fresh: bool) -> None:
    assert LOGIN.fresh(LOGIN.started_at + age) is fresh


@pytest.mark.parametrize("slot", range(MAX_PENDING))
def test_a_new_state_names_its_slot_and_is_fresh(slot: int) -> None:
    first, second = new_state(slot), new_state(slot)

    assert login_slot(first) == login_slot(second) == slot
    assert first != second and len(first) == 2 + 43  # "<slot>." and 256 random bits


@pytest.mark.parametrize(
    "state", ["", "0", "0.", f"{MAX_PENDING}.x", "-1.x", "00.x", " 0.x", "a.x", "x", "٠.x", "0x.y"]
)
def test_a_state_of_no_slot_names_none(state: str) -> None:
    assert login_slot(state) is None


@given(st.text(max_size=60))
def test_any_text_names_a_slot_or_none(state: str) -> None:
    assert login_slot(state) in (None, *range(MAX_PENDING))


def test_every_slot_full_stays_within_the_budget() -> None:
    """Each login cookie is ``name=value`` in the Cookie header, then ``; ``."""
    assert MAX_PENDING * (MAX_COOKIE_BYTES + len("=; ")) <= PENDING_BYTES <= 6 * 1024


def test_an_ended_sid_outlives_any_login_in_flight() -> None:
    from proxy.login_state import LOGIN_TTL
    from proxy.sessions.index import ENDED_SID_TTL

    assert ENDED_SID_TTL > LOGIN_TTL
