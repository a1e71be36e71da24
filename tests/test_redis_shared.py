"""Shared objects in Redis, two replicas in one process standing for two workers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from pydantic import BaseModel
from redis_helpers import RedisServer

from ws_sync import remote_action, sync_all, sync_only, wire
from ws_sync.redis_backplane import RedisBackplane
from ws_sync.shared import Shared, SharedStateError, SharedWriteError, shared


class Counter:
    @sync_only("COUNTER", count=..., items=...)
    def __init__(self) -> None:
        self.count = 0
        self.items: list[str] = []

    @remote_action
    async def increment(self) -> int:
        count = self.count
        await asyncio.sleep(0)  # another worker's handler would run here, if it could
        self.count = count + 1
        await self.sync()
        return self.count


class Board(BaseModel):
    cards: list[str] = []

    @sync_all("BOARD")
    def model_post_init(self, __context: object) -> None:
        pass


class BoardV2(BaseModel):
    cards: list[str] = []
    title: str = "untitled"

    @sync_all("BOARD")
    def model_post_init(self, __context: object) -> None:
        pass


class BoardInts(BaseModel):
    cards: list[int] = []

    @sync_all("BOARD")
    def model_post_init(self, __context: object) -> None:
        pass


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


@pytest.fixture
async def planes(redis_url: str) -> AsyncIterator[list[RedisBackplane]]:
    prefix = f"t{random.getrandbits(32):x}:"
    made = [RedisBackplane(redis_url, prefix=prefix) for _ in range(2)]
    yield made
    for bp in made:
        await bp.close()


async def test_first_worker_creates_the_others_load(planes: list[RedisBackplane]) -> None:
    a = shared("COUNTER", Counter, backplane=planes[0])
    b = shared("COUNTER", Counter, backplane=planes[1])
    await a.ready()
    async with a.lock():
        a.count = 5
        a.items.append("x")
    await b.ready()
    assert (b.count, b.items) == (5, ["x"])
    assert b.sync.log.epoch == a.sync.log.epoch
    assert b.sync.log.version == a.sync.log.version == 1


async def test_a_commit_reaches_the_other_worker(planes: list[RedisBackplane]) -> None:
    a = shared("COUNTER", Counter, backplane=planes[0])
    b = shared("COUNTER", Counter, backplane=planes[1])
    await a.ready()
    await b.ready()
    async with b.lock():
        b.items.append("from b")
    async with a.lock():  # the lock first catches up with every commit
        assert a.items == ["from b"]
        a.items.insert(0, "from a")
    async with b.lock():
        assert b.items == ["from a", "from b"]
    assert a.sync.log.since(a.sync.log.epoch, 0) == b.sync.log.since(b.sync.log.epoch, 0)


async def test_increments_over_two_workers_add_up(planes: list[RedisBackplane]) -> None:
    a = shared("COUNTER", Counter, backplane=planes[0])
    b = shared("COUNTER", Counter, backplane=planes[1])
    await a.ready()
    await b.ready()

    async def hammer(handle: Shared[Counter], n: int) -> None:
        gate = handle.sync.gate
        for _ in range(n):
            await gate.run(handle.obj.increment)

    await asyncio.gather(hammer(a, 100), hammer(b, 100))
    async with a.lock():
        assert a.count == 200
    async with b.lock():
        assert b.count == 200
    assert a.sync.log.version == 200


async def test_fields_added_with_defaults_load(planes: list[RedisBackplane]) -> None:
    old = shared("BOARD", Board, backplane=planes[0])
    await old.ready()
    async with old.lock():
        old.cards = ["a"]
    new = await shared("BOARD", BoardV2, backplane=planes[1]).ready()
    assert (new.cards, new.title) == (["a"], "untitled")


async def test_incompatible_state_raises_unless_migrated(
    planes: list[RedisBackplane], redis_url: str
) -> None:
    old = shared("BOARD", Board, backplane=planes[0])
    await old.ready()
    async with old.lock():
        old.cards = ["a", "b"]
    with pytest.raises(SharedStateError, match="'cards'"):
        await shared("BOARD", BoardInts, backplane=planes[1]).ready()
    third = RedisBackplane(redis_url, prefix=planes[0].prefix)
    try:
        migrated = shared(
            "BOARD",
            BoardInts,
            backplane=third,
            migrate=lambda state: {**state, "cards": [len(c) for c in state["cards"]]},
        )
        assert (await migrated.ready()).cards == [1, 1]
    finally:
        await third.close()


async def test_key_must_match(planes: list[RedisBackplane]) -> None:
    with pytest.raises(ValueError, match="keyed 'COUNTER'"):
        await shared("OTHER", Counter, backplane=planes[0]).ready()


async def test_a_change_outside_lock_while_another_holds_it_is_refused(
    planes: list[RedisBackplane],
) -> None:
    a = shared("COUNTER", Counter, backplane=planes[0])
    b = shared("COUNTER", Counter, backplane=planes[1])
    await a.ready()
    await b.ready()
    async with a.lock():
        b.count = 99  # no lock on b's side
        b.sync.flush()
        with pytest.raises(SharedWriteError, match="another worker"):
            await b.sync.gate._settled()
        assert b.count == 0  # back to the committed state
        a.count = 1
    async with b.lock():
        assert b.count == 1


async def test_redis_down_gives_a_clear_error_and_changes_nothing(redis_url: str) -> None:
    with RedisServer() as server:
        bp = RedisBackplane(server.url)
        try:
            a = shared("COUNTER", Counter, backplane=bp)
            await a.ready()
            server.stop()
            with pytest.raises(SharedWriteError, match="unreachable"):
                async with a.lock():
                    a.count = 7
            assert a.count == 0
        finally:
            await bp.close()


async def test_the_first_commit_after_redis_is_back_goes_through() -> None:
    with RedisServer() as server:
        bp = RedisBackplane(server.url)
        try:
            a = shared("COUNTER", Counter, backplane=bp)
            await a.ready()
            assert await a.sync.gate.run(a.obj.increment) == 1  # its commit connection is open
            epoch = a.sync.log.epoch
            server.stop()
            await asyncio.wait_for(_until(lambda: not bp.connected), 10)
            server.start()  # empty: the worker stores its state again, under a new epoch
            await asyncio.wait_for(_until(lambda: a.sync.log.epoch != epoch), 10)
            assert await a.sync.gate.run(a.obj.increment) == 2  # not written into a dead socket
        finally:
            await bp.close()


async def _until(check: Callable[[], bool]) -> None:
    while not check():
        await asyncio.sleep(0.01)


async def test_a_one_worker_job_runs_on_one_worker_and_moves_when_it_stops(
    redis_url: str,
) -> None:
    prefix = f"t{random.getrandbits(32):x}:"
    planes = [RedisBackplane(redis_url, prefix=prefix, lease_ms=300) for _ in range(2)]
    running: list[int] = []
    started = asyncio.Event()

    def job(n: int) -> object:
        async def run() -> None:
            running.append(n)
            started.set()
            try:
                await asyncio.Event().wait()
            finally:
                running.remove(n)

        return run

    leads = [asyncio.ensure_future(bp.lead("tick", job(n))) for n, bp in enumerate(planes)]
    try:
        await asyncio.wait_for(started.wait(), 5)
        await asyncio.sleep(0.5)  # renewals: still one
        assert len(running) == 1
        first = running[0]
        leads[first].cancel()  # that worker stops; the lease is released
        async with asyncio.timeout(5):
            while running != [1 - first]:
                await asyncio.sleep(0.02)
    finally:
        for lead in leads:
            lead.cancel()
        await asyncio.gather(*leads, return_exceptions=True)
        for bp in planes:
            await bp.close()


async def test_a_write_sent_again_to_a_worker_that_loaded_after_its_commit_is_answered_once(
    planes: list[RedisBackplane],
) -> None:
    from fakes import FakeSession

    a = shared("COUNTER", Counter, backplane=planes[0])
    await a.ready()
    base = (a.sync.log.epoch, a.sync.log.version)
    add = [{"op": "add", "path": "/items/0", "value": "once"}]
    sender = FakeSession()
    await a.sync.gate.write(a.sync.handle_client_patch, add, sender, "w-1", base)
    b = shared("COUNTER", Counter, backplane=planes[1])  # a worker that loads afterwards
    await b.ready()
    again = FakeSession()
    await b.sync.gate.write(b.sync.handle_client_patch, add, again, "w-1", base)
    async with b.lock():
        assert b.items == ["once"]
    answer = again.events(versions=True)
    assert answer and answer[-1]["ack"] == "w-1" and answer[-1]["v"] == 1


class Deck:
    @sync_all("DECK", read_only=["owner"])
    def __init__(self) -> None:
        self.cards = [f"card {i}" for i in range(1000)]
        self.owner = "ann"


async def test_another_workers_commit_lands_as_its_ops(planes: list[RedisBackplane]) -> None:
    a = shared("DECK", Deck, backplane=planes[0])
    b = shared("DECK", Deck, backplane=planes[1])
    await a.ready()
    await b.ready()
    cards = b.obj.cards
    async with a.lock():
        a.cards.insert(0, "first")
    async with b.lock():  # caught up
        assert b.obj.cards is cards  # the same list, changed in place: not rebuilt
        assert b.cards == a.cards
    async with a.lock():  # ops that depend on each other land on a validated copy
        a.cards.insert(0, "second")
        a.cards[500] = "changed"
    async with b.lock():
        assert b.cards == a.cards
        assert b.sync.log.doc == b.sync.state()
    async with a.lock():  # clients may not write this one: the attribute is loaded whole
        a.owner = "bob"
        a.cards.append("last")
    async with b.lock():
        assert (b.owner, b.cards[-1]) == ("bob", "last")
        assert b.sync.log.doc == b.sync.state()
    async with b.lock():  # and nothing of it is committed again
        pass
    assert b.sync.log.version == a.sync.log.version == 3


class Vault:
    @sync_only("VAULT", locked=..., items=...)
    def __init__(self) -> None:
        self.locked = False
        self.items: list[str] = []

    @remote_action
    async def lock(self) -> None:
        self.locked = True
        await self.sync()

    @remote_action(allow=lambda session, params: not session.vault.locked)
    async def add(self, item: str) -> None:
        self.items.append(item)
        await self.sync()


async def test_allow_on_a_shared_object_runs_in_its_turn(planes: list[RedisBackplane]) -> None:
    from fakes import FakeConn

    from ws_sync import Session
    from ws_sync.dispatch import Dispatcher
    from ws_sync.permissions import FORBIDDEN

    a = shared("VAULT", Vault, backplane=planes[0])
    b = shared("VAULT", Vault, backplane=planes[1])
    await a.ready()
    await b.ready()
    session = Session()
    session.vault = a.obj  # type: ignore[attr-defined]  # what the policy reads
    session.attach(a)
    conn = FakeConn()
    dispatcher = Dispatcher(session, conn)  # type: ignore[arg-type]
    await dispatcher.event("_ACTION:VAULT", {"type": "add", "item": "x", "$id": 1})
    await b.sync.gate.run(b.obj.lock)  # another worker locks it
    await dispatcher.event("_ACTION:VAULT", {"type": "add", "item": "y", "$id": 2})
    results = [f["data"] for f in conn.sent if f["type"].startswith("_ACTION_RESULT")]
    assert results == [
        {"id": 1, "ok": True, "result": None},
        {"id": 2, "ok": False, "error": {"message": FORBIDDEN}},
    ]
    async with b.lock():
        assert b.items == ["x"]


async def test_another_workers_commit_that_comes_first_lands_once(
    planes: list[RedisBackplane],
) -> None:
    b = shared("COUNTER", Counter, backplane=planes[1])
    await b.ready()
    gate = b.sync.gate
    b.items.append("mine")  # outside any lock: proposed, not yet sent
    b.sync.flush()
    mine = gate.proposals[-1]
    v = gate.log.delivered + 1
    theirs = [{"op": "add", "path": "/items/-", "value": "theirs"}]
    frame = wire.encode_with("_PATCH:COUNTER", theirs, v=v)
    assert gate._deliver(v, frame, "another-worker:1")  # as the stream reader would
    with pytest.raises(SharedWriteError, match="another change came first"):
        await mine.done
    assert b.items == ["theirs"]  # once: the committed state, not applied on top of it
    assert gate.log.doc == b.sync.state()
