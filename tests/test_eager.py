"""Coroutines started in the caller's own step, finished by a task."""

from __future__ import annotations

import asyncio

from ws_sync.eager import start


async def test_a_coroutine_that_never_waits_is_done_at_once() -> None:
    ran: list[str] = []

    async def quick() -> None:
        ran.append("all")

    assert start(quick()) is None
    assert ran == ["all"]


async def test_a_coroutine_that_waits_is_finished_by_the_awaiting_task() -> None:
    ran: list[str] = []
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def slow() -> None:
        ran.append("before")
        ran.append(await gate)

    rest = start(slow())
    assert ran == ["before"]  # its first step ran here
    assert rest is not None
    finish = asyncio.ensure_future(_await(rest))
    await asyncio.sleep(0)
    gate.set_result("after")
    await finish
    assert ran == ["before", "after"]


async def test_a_cancelled_wait_reaches_the_coroutine() -> None:
    seen: list[str] = []

    async def waits() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    rest = start(waits())
    assert rest is not None
    task = asyncio.ensure_future(_await(rest))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert seen == ["cancelled"]


async def _await(rest: object) -> None:
    await rest  # type: ignore[misc]
