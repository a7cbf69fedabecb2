"""What a session store backend does: keep bytes under keys, with a time to live.

Backends know nothing of sessions or encryption (see ``store.py``); each raises
:class:`proxy.errors.StoreUnavailable` when it cannot answer, so callers fail closed.
"""

from __future__ import annotations

from typing import Protocol


class Backend(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        """Store ``value`` for ``ttl`` seconds, replacing any previous value."""

    async def set_existing(self, key: str, value: bytes, ttl: int) -> bool:
        """Replace ``key``'s value only while it exists (SET XX), in one step; whether it did. What
        updates a session: a session deleted meanwhile (logout) stays deleted."""

    async def delete(self, *keys: str) -> int: ...

    async def add_new(self, key: str, value: bytes, ttl: int) -> bool:
        """Store only if ``key`` is absent (SET NX); whether it was stored."""

    async def delete_if(self, key: str, value: bytes) -> bool:
        """Delete ``key`` only while it still holds ``value`` (releasing a lock we own)."""

    async def expire(self, key: str, ttl: int) -> None:
        """Set the remaining life of an existing key (sliding idle timeout)."""

    async def index_add(self, key: str, member: str, ttl: int) -> None:
        """Add ``member`` to the set at ``key``, keeping the set at least ``ttl`` seconds more."""

    async def index_members(self, key: str) -> frozenset[str]: ...

    async def index_remove(self, key: str, member: str) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
