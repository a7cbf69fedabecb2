"""In-process backend: for ``session.store: memory`` (one process, development) and unit tests."""

from __future__ import annotations

import time
from collections.abc import Callable


class MemoryBackend:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._data: dict[str, tuple[bytes, float]] = {}

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

    async def getdel(self, key: str) -> bytes | None:
        value = self._live(key)
        self._data.pop(key, None)
        return value

    async def delete(self, *keys: str) -> int:
        removed = 0
        for key in keys:
            if self._live(key) is not None:
                del self._data[key]
                removed += 1
        return removed

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._data.clear()

    def _sweep(self) -> None:
        now = self._clock()
        for key in [k for k, (_, deadline) in self._data.items() if deadline <= now]:
            del self._data[key]
