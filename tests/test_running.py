"""`Sync.running_tasks`: keys in start order, a task by its key."""

from __future__ import annotations

import asyncio

from ws_sync.running import RunningTasks


async def test_keys_and_handles() -> None:
    running = RunningTasks()
    task = asyncio.get_running_loop().create_task(asyncio.sleep(0))
    running.append("GROW")
    running.handles["GROW"] = task
    running.append("SHRINK")
    assert running == ["GROW", "SHRINK"] and running[0] == "GROW" and running[-1:] == ["SHRINK"]
    assert running["GROW"] is task and running.get("SHRINK") is None
    assert running.keys() == ["GROW", "SHRINK"] and running.items() == [("GROW", task)]
    assert running.values() == [task]
    running.remove("GROW")
    assert running == ["SHRINK"] and running.handles == {}
    await task
