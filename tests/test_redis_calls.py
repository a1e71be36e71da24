"""Exactly once across workers: a call sent again to another worker (its
first worker died, or the client moved) is answered, never run twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis
from redis_helpers import RedisServer
from redis_workers import Client, Worker, running

from ws_sync.recent import LOST_ANSWER
from ws_sync.redis_backplane import HEARTBEAT_MS
from ws_sync.redis_sessions import LOST_TASK

pytestmark = pytest.mark.slow


@pytest.fixture
def workers(redis: RedisServer) -> Iterator[list[Worker]]:
    with running(redis.url, 2) as made:
        yield made


async def connect(worker: Worker, client: Client | None = None) -> Client:
    client = client or Client()
    await client.connect(worker.url)
    return await client.ready()


async def kept(redis: RedisServer, key: str, call_id: str) -> None:
    """Until the answer of `call_id` is kept in `key`'s answers."""
    r = Redis.from_url(redis.url)
    try:
        async with asyncio.timeout(10):
            while not await r.hexists(f"ws-sync:{key}:answers", json.dumps(call_id)):
                await asyncio.sleep(0.02)
    finally:
        await r.aclose()


async def test_a_retry_on_another_worker_gets_the_kept_answer(
    redis: RedisServer, workers: list[Worker]
) -> None:
    client = await connect(workers[0])
    await client.send_action("c-1", "increment")
    await client.close()  # gone before the answer: the client will send it again
    await kept(redis, "obj:BOARD", "c-1")
    await connect(workers[1], client)
    answer = await asyncio.wait_for(await client.send_action("c-1", "increment"), 20)
    assert answer == {"id": "c-1", "ok": True, "result": 1}
    assert client.state["count"] == 1  # run once
    assert (await client.action("increment"))["result"] == 2


async def test_a_retry_after_the_worker_died_mid_call_is_not_run_again(
    workers: list[Worker],
) -> None:
    client = await connect(workers[0])
    await client.send_action("c-2", "increment_slowly", seconds=60)
    async with asyncio.timeout(10):  # committed (every client sees it), not answered
        while client.state["count"] != 1:
            await asyncio.sleep(0.02)
    workers[0].kill()
    await client.close()
    await connect(workers[1], client)
    answer = await asyncio.wait_for(await client.send_action("c-2", "increment_slowly"), 20)
    assert answer["ok"] is False and answer["error"]["message"] == LOST_ANSWER
    assert client.state["count"] == 1
    assert (await client.action("increment"))["result"] == 2


async def test_a_session_call_retried_on_another_worker_is_answered(
    redis: RedisServer, workers: list[Worker]
) -> None:
    client = await connect(workers[0])
    await client.send_action("n-1", "note", key="NOTES", text="once")
    await client.close()
    await kept(redis, f"session:{client.user}:{client.session}:NOTES", "n-1")
    await connect(workers[1], client)
    answer = await asyncio.wait_for(
        await client.send_action("n-1", "note", key="NOTES", text="once"), 20
    )
    assert answer == {"id": "n-1", "ok": True, "result": 1}
    assert client.copies["NOTES"].state == {"notes": ["once"]}


async def test_only_calls_that_committed_keep_their_answers(
    redis: RedisServer, workers: list[Worker]
) -> None:
    client = await connect(workers[0])
    assert (await client.action("peek"))["result"] == 0  # changed nothing
    assert (await client.action("add", item="x"))["ok"] is True
    await kept(redis, "obj:BOARD", f"{client._prefix}-2")
    r = Redis.from_url(redis.url)
    try:
        assert await r.hkeys("ws-sync:obj:BOARD:answers") == [f'"{client._prefix}-2"'.encode()]
    finally:
        await r.aclose()


async def test_a_task_start_sent_again_after_its_worker_died_is_not_run_again(
    workers: list[Worker],
) -> None:
    client = await connect(workers[0])
    await client.start_task("wait", "NOTES", call_id="t-1")
    await client.action("note", key="NOTES", text="started")  # in order: the task runs
    workers[0].kill()
    await client.close()
    await asyncio.sleep(HEARTBEAT_MS / 1000 + 0.5)  # the dead worker's heartbeat runs out
    await connect(workers[1], client)
    await client.start_task("wait", "NOTES", call_id="t-1")  # the client sends it again
    await client.start_task("wait", "NOTES", call_id="t-2")  # a new start: runs
    await client.start_task("wait", "NOTES", call_id="t-3")  # t-2 runs: refused
    await client.action("note", key="NOTES", text="after")  # in order: all three handled
    [done] = client.done
    assert done["data"] == {"type": "wait", "status": "failed", "error": LOST_TASK}
    assert [e.get("id") for e in client.errors] == ["t-3"]  # t-1 was not started again
    assert "already running" in client.errors[0]["message"]
