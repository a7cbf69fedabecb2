"""In-process backend: for ``session.store: memory`` (one process, development) and unit tests."""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable


class MemoryBackend:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._data: dict[str, tuple[bytes, float]] = {}
        self._sets: dict[str, tuple[builtins.set[str], float]] = {}

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, deadline = item
        if self._clock() >= deadline:
            del self._data[key]
            return None
        return value

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self._data[key] = (value, self._clock() + ttl)
        if len(self._data) % 1024 == 0:
            self._sweep()

    async def set_existing(self, key: str, value: bytes, ttl: int) -> bool:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        if self._live(key) is None:  # no await from the check to the write: one step
            return False
        self._data[key] = (value, self._clock() + ttl)
        return True

    async def delete(self, *keys: str) -> int:
        removed = 0
        for key in keys:
            if self._live(key) is not None:
                del self._data[key]
                removed += 1
        return removed

    async def add_new(self, key: str, value: bytes, ttl: int) -> bool:
        if self._live(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def delete_if(self, key: str, value: bytes) -> bool:
        if self._live(key) != value:
            return False
        del self._data[key]
        return True

    async def expire(self, key: str, ttl: int) -> None:
        value = self._live(key)
        if value is not None:
            self._data[key] = (value, self._clock() + ttl)

    def _live_set(self, key: str) -> builtins.set[str] | None:
        item = self._sets.get(key)
        if item is None or self._clock() >= item[1]:
            self._sets.pop(key, None)
            return None
        return item[0]

    async def index_add(self, key: str, member: str, ttl: int) -> None:
        members = self._live_set(key)
        if members is None:
            members, deadline = builtins.set(), 0.0
        else:
            deadline = self._sets[key][1]
        deadline = max(deadline, self._clock() + ttl)
        members.add(member)
        self._sets[key] = (members, deadline)

    async def index_members(self, key: str) -> frozenset[str]:
        return frozenset(self._live_set(key) or ())

    async def index_remove(self, key: str, member: str) -> None:
        members = self._live_set(key)
        if members is not None:
            members.discard(member)
            if not members:
                del self._sets[key]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._data.clear()
        self._sets.clear()

    def _sweep(self) -> None:
        now = self._clock()
        for key in [k for k, (_, deadline) in self._data.items() if deadline <= now]:
            del self._data[key]
