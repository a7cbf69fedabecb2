"""Background tasks have an owner (``proxy.tasks``): held while they run, cancelled with it; and no
module starts one any other way."""

from __future__ import annotations

import ast
import asyncio
import gc

from proxy.tasks import Tasks
from tests.conftest import ROOT

SPAWNERS = frozenset({"create_task", "ensure_future"})
ALLOWED = {
    "proxy/tasks.py",  # the one place
}


async def test_a_task_is_held_while_it_runs_and_let_go_when_it_ends() -> None:
    tasks = Tasks()
    release = asyncio.Event()

    async def work() -> str:
        await release.wait()
        return "done"

    task = tasks.spawn(work(), name="w")
    del task
    gc.collect()  # nobody else holds it: the set does
    assert len(tasks) == 1
    release.set()
    await asyncio.sleep(0.01)
    assert len(tasks) == 0


async def test_close_cancels_what_still_runs_and_waits_for_it() -> None:
    ended: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append(name)

    async with Tasks() as tasks:
        one, _ = tasks.spawn(forever("one")), tasks.spawn(forever("two"))
        await asyncio.sleep(0)
        await tasks.cancel(one)
        assert ended == ["one"] and len(tasks) == 1
    assert sorted(ended) == ["one", "two"] and len(tasks) == 0


async def test_what_a_cancelled_task_raises_stays_with_it() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    tasks = Tasks()
    task = tasks.spawn(fails())
    await asyncio.sleep(0)
    await tasks.close()  # does not raise
    assert isinstance(task.exception(), RuntimeError)


def test_no_module_starts_a_task_but_through_tasks() -> None:
    found = []
    for path in sorted((ROOT / "proxy").rglob("*.py")):
        name = str(path.relative_to(ROOT))
        if name in ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            called = node.func if isinstance(node, ast.Call) else None
            attr = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", None)
            if attr in SPAWNERS:
                found.append(f"{name}:{node.lineno}")
    assert not found, f"start tasks through proxy.tasks.Tasks: {found}"
