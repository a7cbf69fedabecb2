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


_DELETE_IF = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""


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

    async def add_new(self, key: str, value: bytes, ttl: int) -> bool:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        return bool(await self._call(self._redis.set(key, value, ex=ttl, nx=True)))

    async def delete_if(self, key: str, value: bytes) -> bool:
        return bool(await self._call(self._redis.eval(_DELETE_IF, 1, key, value)))

    async def expire(self, key: str, ttl: int) -> None:
        await self._call(self._redis.expire(key, ttl))

    async def index_add(self, key: str, member: str, ttl: int) -> None:
        async def run() -> None:
            # One key, so one slot: fine on Cluster. NX sets a first TTL, GT only ever extends it.
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(key, member)
                pipe.expire(key, ttl, nx=True)
                pipe.expire(key, ttl, gt=True)
                await pipe.execute()

        await self._call(run())

    async def index_members(self, key: str) -> frozenset[str]:
        raw = await self._call(self._redis.smembers(key))
        return frozenset(m.decode() if isinstance(m, bytes) else str(m) for m in raw)

    async def index_remove(self, key: str, member: str) -> None:
        await self._call(self._redis.srem(key, member))

    async def ping(self) -> None:
        await self._call(self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()
