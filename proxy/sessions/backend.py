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

    async def getdel(self, key: str) -> bytes | None:
        """Read and delete in one step: of two concurrent callers, only one gets the value."""

    async def delete(self, *keys: str) -> int: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
