"""Things taken once, across every replica: replayed names and the per-session refresh lock."""

from __future__ import annotations

import hashlib
import secrets

from .backend import Claims
from .base import Ticket


def _h(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class ReplayGuard:
    """Single use of a name (a login's state, a logout token's ``jti``) within a time."""

    def __init__(self, claims: Claims) -> None:
        self._claims = claims

    async def first_use(self, name: str, ttl: int) -> bool:
        """True the first time ``name`` is seen within ``ttl`` seconds (replay protection)."""
        return await self._claims.add_new("ap:once:" + _h(name), b"1", ttl)


def lock_key(ticket: Ticket) -> str:
    return f"ap:lock:{{{ticket.id.hex()}}}"  # same hash tag as the session: same Cluster slot


class Lock:
    """A session's refresh lock (SET NX EX), released only by its holder."""

    def __init__(self, claims: Claims) -> None:
        self._claims = claims

    async def try_lock(self, ticket: Ticket, seconds: int) -> bytes | None:
        """Take the session's lock across every replica; the token to unlock it, or ``None``."""
        token = secrets.token_bytes(16)
        return token if await self._claims.add_new(lock_key(ticket), token, seconds) else None

    async def unlock(self, ticket: Ticket, token: bytes) -> None:
        await self._claims.delete_if(lock_key(ticket), token)
