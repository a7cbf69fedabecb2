"""Redis backend (redis-py asyncio). Every Redis failure becomes ``StoreUnavailable``: fail closed."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..errors import StoreUnavailable

T = TypeVar("T")


def _bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


class RedisBackend:
    def __init__(self, client: Redis) -> None:
        self._redis = client

    @classmethod
    def from_url(cls, url: str, timeout: float = 2.0) -> RedisBackend:
        return cls(
            Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                health_check_interval=30,
            )
        )

    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except RedisError as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from None
        except OSError as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from None

    async def get(self, key: str) -> bytes | None:
        return _bytes(await self._call(self._redis.get(key)))

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        await self._call(self._redis.set(key, value, ex=ttl))

    async def getdel(self, key: str) -> bytes | None:
        return _bytes(await self._call(self._redis.getdel(key)))

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        count: int = await self._call(self._redis.delete(*keys))
        return count

    async def ping(self) -> None:
        await self._call(self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()
