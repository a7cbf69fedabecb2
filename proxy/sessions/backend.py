"""What the session store keeps its data in, split by role: bytes under keys (:class:`Blobs`),
sets of session ids (:class:`Indexes`), single-use claims (:class:`Claims`).

Each role is a small Protocol with two implementations, ``redis_store.RedisBackend`` and
``memory_store.MemoryBackend`` (each one connection that plays every role). What is built on them
takes only the role it uses: ``store.SessionStore`` (sessions and their records: Blobs),
``index.SessionIndex`` (sid/sub indexes, last-seen times, ended-sid marks: Indexes and Blobs),
``guards.ReplayGuard`` and ``guards.Lock`` (Claims). Backends know nothing of sessions or
encryption; each raises :class:`proxy.errors.StoreUnavailable` when it cannot answer, so callers
fail closed.
"""

from __future__ import annotations

from typing import Protocol


class Blobs(Protocol):
    """Bytes under keys, each with a time to live."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        """Store ``value`` for ``ttl`` seconds, replacing any previous value."""

    async def set_existing(self, key: str, value: bytes, ttl: int) -> bool:
        """Replace ``key``'s value only while it exists (SET XX), in one step; whether it did. What
        updates a session: a session deleted meanwhile (logout) stays deleted."""

    async def delete(self, *keys: str) -> int: ...

    async def expire(self, key: str, ttl: int) -> None:
        """Set the remaining life of an existing key (sliding idle timeout)."""


class Indexes(Protocol):
    """Sets of names under keys (which sessions belong to a user, to a provider session)."""

    async def index_add(self, key: str, member: str, ttl: int) -> None:
        """Add ``member`` to the set at ``key``, keeping the set at least ``ttl`` seconds more."""

    async def index_members(self, key: str) -> frozenset[str]: ...

    async def index_remove(self, key: str, member: str) -> None: ...

    async def delete(self, *keys: str) -> int:
        """Drop whole sets (and any other keys named)."""


class Claims(Protocol):
    """Keys that are taken once: replay marks and locks."""

    async def add_new(self, key: str, value: bytes, ttl: int) -> bool:
        """Store only if ``key`` is absent (SET NX); whether it was stored."""

    async def delete_if(self, key: str, value: bytes) -> bool:
        """Delete ``key`` only while it still holds ``value`` (releasing a lock we own)."""


class Connection(Protocol):
    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class Backend(Blobs, Indexes, Claims, Connection, Protocol):
    """Every role in one connection: what ``app.py`` builds and hands out role by role."""
