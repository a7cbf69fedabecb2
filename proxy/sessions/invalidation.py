"""Telling every process that a session changed or ended: Redis pub/sub on one channel.

Each process subscribes; ``publish`` sends a session id after the store was changed. While the
subscription is up the process's ``SessionCache`` is enabled; when it drops (Redis restart, network)
the cache is emptied and disabled until the subscription is back, so no process ever serves a
session from memory that another process may have ended.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from .cache import SessionCache

log = logging.getLogger(__name__)

CHANNEL = "ap:invalidate"


class Invalidation:
    def __init__(self, client: Redis, cache: SessionCache) -> None:
        self._redis = client
        self.cache = cache
        self.subscribed = asyncio.Event()

    async def publish(self, session_id_hex: str) -> None:
        """After a change in the store: evict here at once, and everywhere else via Redis."""
        self.cache.evict(session_id_hex)
        try:
            await self._redis.publish(CHANNEL, session_id_hex)
        except (RedisError, OSError) as exc:
            # Other processes can't be told; their subscriptions (on the same Redis) are failing
            # too, which disables their caches. Ours goes off until the feed is back.
            log.warning("session invalidation not published: %s", type(exc).__name__)
            self._down()

    def _down(self) -> None:
        self.cache.enabled = False
        self.cache.clear()
        self.subscribed.clear()

    async def run(self, first_delay: float = 0.2, max_delay: float = 5.0) -> None:
        """Keep subscribed for as long as the app runs (a background task owned by cleanup_ctx)."""
        delay = first_delay
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                while True:  # wait for the subscribe confirmation before trusting the cache
                    msg = await pubsub.get_message(timeout=5.0)
                    if msg is not None and msg.get("type") == "subscribe":
                        break
                self.cache.clear()
                self.cache.enabled = True
                self.subscribed.set()
                delay = first_delay
                log.info("session cache on: invalidation feed subscribed")
                async for msg in pubsub.listen():
                    if msg.get("type") == "message":
                        data = msg.get("data")
                        self.cache.evict(data.decode() if isinstance(data, bytes) else str(data))
            except asyncio.CancelledError:
                self._down()
                raise
            except (RedisError, OSError) as exc:
                log.warning("session cache off: invalidation feed lost (%s)", type(exc).__name__)
            finally:
                self._down()
                try:
                    await pubsub.aclose()
                except (RedisError, OSError):
                    pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
