"""Several uvicorn worker processes of one app on one redis-server."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest
from redis_helpers import RedisServer
from redis_workers import Client, Worker, running, settle

from ws_sync.redis_backplane import HEARTBEAT_MS
from ws_sync.redis_sessions import LOST_TASK

pytestmark = pytest.mark.slow


@pytest.fixture
def workers(redis: RedisServer) -> Iterator[list[Worker]]:
    with running(redis.url, 3) as made:
        yield made


async def connect(worker: Worker, **kw: object) -> Client:
    client = Client(**kw)  # type: ignore[arg-type]
    await client.connect(worker.url)
    return await client.ready()


async def test_increments_over_two_workers_add_up(workers: list[Worker]) -> None:
    a, b = await connect(workers[0]), await connect(workers[1])

    async def hammer(client: Client) -> None:
        for _ in range(100):
            result = await client.action("increment")
            assert result["ok"] is True

    await asyncio.gather(hammer(a), hammer(b))
    await settle([a, b])
    assert a.state["count"] == b.state["count"] == 200
    assert a.version == 200
    assert not a.gaps and not b.gaps
    late = await connect(workers[2])
    assert late.state == a.state and late.version == 200


async def test_random_actions_and_writes_converge_in_one_order(workers: list[Worker]) -> None:
    clients = [await connect(w) for w in workers for _ in range(2)]
    rng = random.Random(11)

    async def play(client: Client, n: int) -> None:
        for i in range(n):
            pick = rng.random()
            if pick < 0.4:
                await client.action("increment")
            elif pick < 0.7:
                await client.action("add", item=f"{client.user[:4]}-{i}")
            else:
                answer = await client.patch(
                    [{"op": "add", "path": "/items/0", "value": f"w{client.user[:4]}-{i}"}]
                )
                assert "ack" in answer or "message" in answer

    await asyncio.gather(*(play(c, 25) for c in clients))
    await settle(clients)
    first = clients[0]
    assert all(c.state == first.state for c in clients)
    assert all(not c.gaps for c in clients)  # every commit, in order, on every worker
    refused = sum(1 for c in clients for e in c.errors if "id" in e)
    assert first.version == 6 * 25 - refused
    assert len(first.state["items"]) + first.state["count"] == first.version


async def test_the_object_survives_every_worker(redis: RedisServer) -> None:
    a = Worker(redis.url).start()
    client = await connect(a)
    for item in ("x", "y"):
        await client.action("add", item=item)
    await client.close()
    a.kill()
    b = Worker(redis.url).start()
    try:
        again = await connect(b)
        assert again.state["items"] == ["x", "y"]
        assert (again.epoch, again.version) == (client.epoch, client.version)
    finally:
        b.stop()


async def test_a_client_resumes_from_the_history_on_another_worker(
    workers: list[Worker],
) -> None:
    a = await connect(workers[0])
    other = await connect(workers[1])
    await a.action("add", item="one")
    await settle([a, other])
    await a.close()
    held = a.version
    for i in range(3):
        await other.action("add", item=f"more-{i}")
    workers[0].kill()
    sets = a.sets
    await a.connect(workers[2].url)  # with the version it holds, from another worker
    await settle([a, other])
    assert a.state == other.state and not a.gaps
    assert a.version == held + 3 and a.sets == sets  # the missed commits, no _SET


async def test_redis_restart_mid_run_workers_recover_and_clients_converge(
    redis: RedisServer, workers: list[Worker]
) -> None:
    clients = [await connect(w) for w in workers]
    await clients[0].action("add", item="before")
    await settle(clients)
    redis.stop()
    failed = await clients[1].action("add", item="while down")
    assert failed["ok"] is False and "unreachable" in failed["error"]["message"]
    redis.start()

    async def retry() -> dict[str, object]:
        while True:
            answer = await clients[1].action("add", item="after")
            if answer["ok"]:
                return answer  # type: ignore[no-any-return]
            await asyncio.sleep(0.2)

    await asyncio.wait_for(retry(), 30)
    await settle(clients, 30)
    assert all(c.state == clients[0].state for c in clients)
    assert clients[0].state["items"] == ["before", "after"]


async def test_a_session_resumes_on_another_worker_after_kill_9(workers: list[Worker]) -> None:
    client = await connect(workers[0])
    for text in ("first", "second"):
        assert (await client.action("note", key="NOTES", text=text))["ok"]
    notes = client.copies["NOTES"]
    held = (notes.epoch, notes.version, notes.state)
    workers[0].kill()  # nothing of its shutdown runs
    await client.close()
    await client.connect(workers[1].url)  # same user and session ids, same versions held
    await client.ready()
    assert (notes.epoch, notes.version, notes.state) == held
    assert notes.sets == 1  # nothing was sent again: the new worker had it all
    assert (await client.action("note", key="NOTES", text="third"))["ok"]
    assert notes.state == {"notes": ["first", "second", "third"]}
    assert notes.version == held[1] + 1 and not notes.gaps


async def test_session_state_keeps_working_while_redis_is_down(
    redis: RedisServer, workers: list[Worker]
) -> None:
    client = await connect(workers[0])
    redis.stop()
    answer = await client.action("note", key="NOTES", text="offline")
    assert answer["ok"] is True
    assert client.copies["NOTES"].state == {"notes": ["offline"]}
    failed = await client.action("add", item="shared")
    assert failed["ok"] is False and "unreachable" in failed["error"]["message"]
    assert client.state["items"] == []
    redis.start()


async def test_a_task_on_a_worker_that_died_is_reported_failed(workers: list[Worker]) -> None:
    client = await connect(workers[0])
    await client.start_task("wait", "NOTES")
    await client.action("note", key="NOTES", text="started")  # in order: the task is running
    workers[0].kill()
    await client.close()
    await asyncio.sleep(HEARTBEAT_MS / 1000 + 0.5)  # the dead worker's heartbeat runs out
    await client.connect(workers[1].url)
    async with asyncio.timeout(10):
        while not client.done:
            await asyncio.sleep(0.05)
    [done] = client.done
    assert done["type"] == "_TASK_DONE:NOTES"
    assert done["data"] == {"type": "wait", "status": "failed", "error": LOST_TASK}
