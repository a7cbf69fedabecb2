"""proxy.sessions.crypto: AES-GCM sealing of a stored session under its ticket."""

from __future__ import annotations

import pytest

from proxy.sessions.base import Ticket
from proxy.sessions.crypto import open_sealed, seal

PLAINTEXT = b'{"session": "data"}'


@pytest.fixture
def ticket() -> Ticket:
    return Ticket.new()


def flip(blob: bytes, index: int) -> bytes:
    return blob[:index] + bytes([blob[index] ^ 0x01]) + blob[index + 1 :]


def test_round_trip(ticket: Ticket) -> None:
    assert open_sealed(ticket, seal(ticket, PLAINTEXT)) == PLAINTEXT


def test_empty_plaintext_round_trip(ticket: Ticket) -> None:
    assert open_sealed(ticket, seal(ticket, b"")) == b""


def test_blob_does_not_contain_the_plaintext(ticket: Ticket) -> None:
    assert b"session" not in seal(ticket, PLAINTEXT)


def test_each_seal_is_different(ticket: Ticket) -> None:
    assert seal(ticket, PLAINTEXT) != seal(ticket, PLAINTEXT)


def test_wrong_ticket(ticket: Ticket) -> None:
    assert open_sealed(Ticket.new(), seal(ticket, PLAINTEXT)) is None


def test_wrong_secret_same_id(ticket: Ticket) -> None:
    other = Ticket(ticket.id, Ticket.new().secret)

    assert open_sealed(other, seal(ticket, PLAINTEXT)) is None


def test_blob_moved_to_another_ticket_id(ticket: Ticket) -> None:
    """Same secret, other id: the id is the associated data, so a copied blob fails."""
    moved = Ticket(Ticket.new().id, ticket.secret)

    assert open_sealed(moved, seal(ticket, PLAINTEXT)) is None


def test_every_flipped_byte_is_refused(ticket: Ticket) -> None:
    blob = seal(ticket, PLAINTEXT)

    for i in range(len(blob)):
        assert open_sealed(ticket, flip(blob, i)) is None, i


@pytest.mark.parametrize("keep", [0, 1, 12, 13, 28, -1], ids=lambda k: f"first-{k}")
def test_truncated(ticket: Ticket, keep: int) -> None:
    blob = seal(ticket, PLAINTEXT)

    assert open_sealed(ticket, blob[:keep]) is None


def test_appended_bytes(ticket: Ticket) -> None:
    assert open_sealed(ticket, seal(ticket, PLAINTEXT) + b"\x00") is None


def test_unknown_version(ticket: Ticket) -> None:
    blob = seal(ticket, PLAINTEXT)

    assert open_sealed(ticket, b"\x02" + blob[1:]) is None
