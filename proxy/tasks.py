"""Background tasks with an owner.

The event loop holds only a weak reference to a task, so a task nobody else holds may be collected
before it finishes; and a task nobody cancels outlives what it worked for. So no module calls
``create_task`` / ``ensure_future`` itself (``tests/unit/test_tasks.py`` checks the source; ruff's
RUF006 catches an unkept one): each task belongs to a :class:`Tasks` of the application
(``keys.TASKS``, closed at its cleanup) or of a connection (an ``async with`` block).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


class Tasks:
    """Tasks owned by one thing: each held until it ends; :meth:`close` cancels the ones still
    running and waits for them."""

    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    async def cancel(self, *tasks: asyncio.Task[Any]) -> None:
        """Cancel ``tasks`` (ones of this set) and wait until they have ended; what they raise is
        theirs (logged where they run), not the caller's."""
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        await self.cancel(*self._tasks)

    async def __aenter__(self) -> Tasks:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
