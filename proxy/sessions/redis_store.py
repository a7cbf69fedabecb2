"""Redis backend (redis-py asyncio). Every Redis failure becomes ``StoreUnavailable``: fail closed.

One backend for the three ways Redis runs (``proxy.config.redis_url``): a standalone server, the master that
Sentinel names (followed across failovers: a connection to a demoted master is dropped and the
Sentinels are asked again) and a Cluster. Every command names one key, so on a Cluster each goes to
the one node that holds it; the keys of one session share a hash tag (``store.py``).

A failed connection is retried twice at once with a short backoff (a restarted server or a failover
leaves dead connections in the pool), a timeout is not retried: an outage costs a request at most
``timeout`` seconds, then 503, and the store recovers by itself when Redis answers again.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from redis.asyncio import Redis, RedisCluster, Sentinel
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from ..config.redis_url import parse_redis_url
from ..config.tls import TlsClientOptions, redis_ssl_kwargs
from ..errors import StoreUnavailable

T = TypeVar("T")

Client = Redis | RedisCluster


def _retry(retries: int) -> Retry:
    return Retry(ExponentialBackoff(cap=0.2, base=0.02), retries, supported_errors=(RedisConnectionError,))


def _bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


_DELETE_IF = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""


class RedisBackend:
    def __init__(self, client: Client, sentinel: Sentinel | None = None) -> None:
        self._redis = client
        self._sentinel = sentinel

    @property
    def client(self) -> Client:
        """The redis-py client (for tests and diagnostics)."""
        return self._redis

    @property
    def plain(self) -> Redis:
        """The client, which must not be a Cluster one (pub/sub: see ``pubsub_backend``)."""
        if not isinstance(self._redis, Redis):
            raise TypeError("a Cluster client has no plain Redis connection")
        return self._redis

    @classmethod
    def from_url(
        cls, url: str, timeout: float = 2.0, retries: int = 2, tls: TlsClientOptions | None = None
    ) -> RedisBackend:
        """A backend for any URL ``parse_redis_url`` takes. No I/O: connections open on first use.
        ``retries``: how often a command that met a broken connection is tried again. ``tls``: CA,
        client certificate (``session.redis_tls``) of a rediss:// URL."""
        target = parse_redis_url(url)
        ssl: dict[str, Any] = redis_ssl_kwargs(tls) if target.ssl else {}
        if target.kind == "standalone":
            return cls(
                Redis.from_url(
                    url,
                    socket_timeout=timeout,
                    socket_connect_timeout=timeout,
                    health_check_interval=30,
                    retry=_retry(retries),
                    **ssl,
                )
            )
        if target.kind == "cluster":
            cluster = RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
                username=target.username,
                password=target.password,
                ssl=target.ssl,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=_retry(retries),
                **ssl,
            )
            return cls(cluster)
        assert target.service is not None  # guaranteed by parse_redis_url
        sentinel = Sentinel(
            list(target.nodes),
            sentinel_kwargs={
                "username": target.sentinel_username,
                "password": target.sentinel_password,
                "ssl": target.ssl,
                "socket_timeout": timeout,
                "socket_connect_timeout": timeout,
                "retry": _retry(retries),
                **ssl,
            },
        )
        client: Redis = sentinel.master_for(
            target.service,
            db=target.db,
            username=target.username,
            password=target.password,
            ssl=target.ssl,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
            retry=_retry(retries),
            **ssl,
        )
        return cls(client, sentinel)

    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except (RedisError, RedisClusterException, OSError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from None

    async def get(self, key: str) -> bytes | None:
        return _bytes(await self._call(self._redis.get(key)))

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        await self._call(self._redis.set(key, value, ex=ttl))

    async def set_existing(self, key: str, value: bytes, ttl: int) -> bool:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        return bool(await self._call(self._redis.set(key, value, ex=ttl, xx=True)))

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
        if self._sentinel is not None:
            for sentinel in self._sentinel.sentinels:
                await sentinel.aclose()


def pubsub_backend(url: str, timeout: float = 2.0, tls: TlsClientOptions | None = None) -> RedisBackend:
    """A backend whose ``plain`` client publishes and subscribes on the Redis ``url`` names.

    Sentinel: the current master, followed across failovers. Cluster: a plain client to the first
    seed node (a PUBLISH on any node of a Cluster reaches the subscribers of every node). ``close()``
    closes everything it opened.
    """
    target = parse_redis_url(url)
    if target.kind != "cluster":
        # No retries: a subscription that broke must be seen to break (redis-py would otherwise
        # resubscribe silently, and what was published in between would be lost unnoticed).
        return RedisBackend.from_url(url, timeout, retries=0, tls=tls)
    host, port = target.nodes[0]
    return RedisBackend(
        Redis(
            host=host,
            port=port,
            username=target.username,
            password=target.password,
            ssl=target.ssl,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=_retry(0),
            **(redis_ssl_kwargs(tls) if target.ssl else {}),
        )
    )
