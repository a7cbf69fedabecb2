"""AES-256-GCM sealing of a stored session under a key derived from its ticket's secret.

The key never leaves the browser's cookie; the store holds ``version || nonce || ciphertext``. The
session id is the associated data, so a blob copied to another key fails to open.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .base import Ticket

_VERSION = b"\x01"
_NONCE = 12


def seal_with(key: bytes, aad: bytes, plaintext: bytes) -> bytes:
    """AES-256-GCM under a given 32-byte key (for records sealed with the server's key)."""
    nonce = os.urandom(_NONCE)
    return _VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_with(keys: list[bytes], aad: bytes, blob: bytes) -> bytes | None:
    """Open with the first of ``keys`` that fits (several during a secret rotation)."""
    if len(blob) < 1 + _NONCE + 16 or blob[:1] != _VERSION:
        return None
    nonce, body = blob[1 : 1 + _NONCE], blob[1 + _NONCE :]
    for key in keys:
        try:
            return AESGCM(key).decrypt(nonce, body, aad)
        except InvalidTag:
            continue
    return None


def derive_server_key(secret: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"auth-proxy session record v1").derive(
        secret
    )


def _key(ticket: Ticket) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ticket.id, info=b"auth-proxy session v1").derive(
        ticket.secret
    )


def seal(ticket: Ticket, plaintext: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return _VERSION + nonce + AESGCM(_key(ticket)).encrypt(nonce, plaintext, ticket.id)


def open_sealed(ticket: Ticket, blob: bytes) -> bytes | None:
    """The plaintext, or ``None`` when the blob is not this ticket's (wrong key, tampered, truncated)."""
    if len(blob) < 1 + _NONCE + 16 or blob[:1] != _VERSION:
        return None
    nonce, body = blob[1 : 1 + _NONCE], blob[1 + _NONCE :]
    try:
        return AESGCM(_key(ticket)).decrypt(nonce, body, ticket.id)
    except InvalidTag:
        return None
