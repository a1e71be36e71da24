"""The lease of a shared object: kept by a worker between its handlers,
handed over when another worker asks, taken from a worker that died, and
never a way to lose an update (two replicas in one process for two workers)."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis
from redis_helpers import RedisServer

from ws_sync import redis_replica, remote_action, sync_only
from ws_sync.redis_backplane import RedisBackplane
from ws_sync.redis_lease import BATCH
from ws_sync.shared import Shared, SharedWriteError, shared


class Counter:
    @sync_only("COUNTER", count=...)
    def __init__(self) -> None:
        self.count = 0

    @remote_action
    async def increment(self) -> int:
        count = self.count
        await asyncio.sleep(0)
        self.count = count + 1
        await self.sync()
        return self.count


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


def make_planes(url: str, lease_ms: int = 5000) -> list[RedisBackplane]:
    prefix = f"t{random.getrandbits(32):x}:"
    return [RedisBackplane(url, prefix=prefix, lease_ms=lease_ms) for _ in range(2)]


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[list[Shared[Counter]]]:
    planes = make_planes(redis_url)
    handles = [shared("COUNTER", Counter, backplane=bp) for bp in planes]
    for h in handles:
        await h.ready()
    yield handles
    for bp in planes:
        await bp.close()


async def calls(url: str, command: str) -> int:
    """How many times Redis ran `command` so far."""
    r = Redis.from_url(url)
    try:
        stats = await r.info("commandstats")
        return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))
    finally:
        await r.aclose()


async def heartbeat_stops(bp: RedisBackplane, url: str) -> None:
    """The worker's heartbeat stops and runs out at once."""
    bp._beating_on = False
    assert bp._heartbeat is not None
    bp._heartbeat.cancel()
    r = Redis.from_url(url)
    try:
        await r.delete(bp.key("worker", bp.worker))
    finally:
        await r.aclose()


async def increment(handle: Shared[Counter]) -> int:
    return await handle.sync.gate.run(handle.obj.increment)  # type: ignore[no-any-return]


async def delivered(handle: Shared[Counter], version: int) -> None:
    while handle.sync.log.delivered < version:
        await asyncio.sleep(0.005)


async def test_a_run_of_handlers_on_one_worker_costs_one_script_each(
    pair: list[Shared[Counter]], redis_url: str
) -> None:
    a, b = pair
    await increment(a)  # takes the lease
    before = await calls(redis_url, "evalsha")
    for _ in range(20):
        await increment(a)
    assert await calls(redis_url, "evalsha") - before == 20  # the commits, nothing else
    await asyncio.wait_for(delivered(b, 21), 10)
    assert (a.count, b.count) == (21, 21)


async def test_the_lease_goes_to_the_worker_that_asks_and_back(
    pair: list[Shared[Counter]], redis_url: str
) -> None:
    a, b = pair
    await increment(a)  # a parks the lease
    parked = a.sync.gate.lease.token
    r = Redis.from_url(redis_url, decode_responses=True)
    try:
        assert await r.get(a.sync.gate.lease.key) == parked != ""
        assert await increment(b) == 2  # b asks, a hands it over
        holder = await r.get(b.sync.gate.lease.key)
    finally:
        await r.aclose()
    assert a.sync.gate.lease.token == ""
    assert holder != parked  # b's now, or let go after b's handler (it was contended)
    for i in range(3, 13):  # alternating: every turn a hand-over or a release
        assert await increment(a if i % 2 else b) == i
    await asyncio.wait_for(delivered(a, 12), 10)
    assert (a.count, b.count) == (12, 12)


async def test_a_busy_worker_hands_over_after_a_bounded_batch(
    pair: list[Shared[Counter]],
) -> None:
    a, b = pair
    order: list[str] = []

    async def slow(handle: Shared[Counter], name: str) -> None:
        async def step() -> None:
            order.append(name)
            await asyncio.sleep(0.01)
            handle.obj.count += 1

        await handle.sync.gate.run(step)

    queued = [asyncio.ensure_future(slow(a, "a")) for _ in range(30)]
    while not order:
        await asyncio.sleep(0.001)
    await slow(b, "b")
    await asyncio.gather(*queued)
    assert order.index("b") <= BATCH + 3  # not after every queued handler of a
    await asyncio.wait_for(asyncio.gather(delivered(a, 31), delivered(b, 31)), 10)
    assert a.count == b.count == 31


async def test_a_dead_workers_lease_is_taken_at_once(redis_url: str) -> None:
    planes = make_planes(redis_url, lease_ms=60_000)  # would outlast the asker's patience
    a, b = (shared("COUNTER", Counter, backplane=bp) for bp in planes)
    try:
        await a.ready()
        await b.ready()
        await increment(a)  # a holds the lease, parked, for a minute
        await heartbeat_stops(planes[0], redis_url)  # as when the worker is killed
        assert await asyncio.wait_for(increment(b), 10) == 2
    finally:
        for bp in planes:
            await bp.close()


async def test_a_lost_lease_costs_a_retry_never_an_update(
    pair: list[Shared[Counter]], redis_url: str
) -> None:
    a, b = pair
    await increment(a)
    r = Redis.from_url(redis_url)
    try:  # a stalled past its lease: Redis gave it to b, a still thinks it is parked
        await r.delete(a.sync.gate.lease.key)
    finally:
        await r.aclose()
    assert a.sync.gate.lease.held()
    await increment(b)
    with pytest.raises(SharedWriteError):
        await increment(a)  # its commit is refused: b committed meanwhile
    await asyncio.wait_for(delivered(a, 2), 10)  # told its lease was lost, it reads on
    assert a.count == 2  # the refused change is gone, b's is there
    assert await increment(a) == 3  # asks again, and counts on b's commit
    await asyncio.wait_for(delivered(b, 3), 10)
    assert b.count == 3


BUSY = """
local start = tonumber(redis.call('TIME')[1])
while tonumber(redis.call('TIME')[1]) < start + tonumber(ARGV[1]) do end
return 1
"""


async def test_a_commit_run_after_its_call_timed_out_is_taken_from_the_stream(
    redis_url: str,
) -> None:
    prefix = f"t{random.getrandbits(32):x}:"
    planes = [
        RedisBackplane(
            redis_url,
            prefix=prefix,
            client=Redis.from_url(redis_url, decode_responses=True, socket_timeout=1),
        )
        for _ in range(2)
    ]
    a, b = (shared("COUNTER", Counter, backplane=bp) for bp in planes)
    r = Redis.from_url(redis_url)
    try:
        await a.ready()
        await b.ready()
        await increment(a)  # a parks the lease: the next handler's only call is its commit
        busy = asyncio.ensure_future(r.eval(BUSY, 0, 3))  # Redis reads nothing for 2-3 s
        await asyncio.sleep(0.2)
        # the commit call times out after 1 s; Redis runs it once free: it was committed
        assert await increment(a) == 2
        await busy
        await asyncio.wait_for(delivered(b, 2), 10)
        assert (a.count, b.count) == (2, 2)
        assert planes[0].counters["unavailable"] >= 1  # the commit call did fail
    finally:
        await r.aclose()
        for bp in planes:
            await bp.close()


async def test_the_wait_for_a_turn_is_told_apart_from_the_work(
    pair: list[Shared[Counter]],
) -> None:
    a, b = pair
    holding = asyncio.Event()

    async def hold_b() -> None:
        async with b.lock():
            holding.set()
            await asyncio.sleep(0.5)
            b.count += 1

    held = asyncio.ensure_future(hold_b())
    await holding.wait()
    worked: list[float] = []

    def apply() -> None:
        began = asyncio.get_running_loop().time()
        a.obj.count += 1
        worked.append(asyncio.get_running_loop().time() - began)

    waited: list[float] = []
    await a.sync.gate.write(apply, waited=waited)
    await held
    assert a.count == 2
    [wait] = waited
    assert wait >= 0.3 > worked[0]  # the turn b held is waiting, not the client's work


async def test_two_busy_workers_take_turns(pair: list[Shared[Counter]]) -> None:
    a, b = pair
    order: list[str] = []

    async def play(handle: Shared[Counter], name: str) -> None:
        for _ in range(25):

            async def step() -> None:
                order.append(name)
                handle.obj.count += 1

            await handle.sync.gate.run(step)

    await asyncio.gather(*(play(h, n) for h, n in ((a, "a"), (b, "b")) for _ in range(4)))
    turns = sum(1 for x, y in itertools.pairwise(order) if x != y)
    assert turns >= 200 // (BATCH + 1) // 2  # each hands over after a bounded batch
    await asyncio.wait_for(asyncio.gather(delivered(a, 200), delivered(b, 200)), 10)
    assert a.count == b.count == 200


async def test_an_ask_read_with_the_grant_is_not_forgotten(
    pair: list[Shared[Counter]], redis_url: str
) -> None:
    a, b = pair
    lease = b.sync.gate.lease
    r = Redis.from_url(redis_url, decode_responses=True)
    try:
        async with a.lock():  # a holds the lease, busy: it hands over only at the end
            taking = asyncio.ensure_future(lease.take())
            while not lease._asking or await r.get(lease.want) not in lease._asking:
                await asyncio.sleep(0.001)  # b's ask is in Redis: b waits for the grant
            [token] = lease._asking
            await asyncio.sleep(0.01)
            await r.set(lease.key, token, px=5000)  # a grant, as a hand-over makes it
            # read in one batch with it: another worker's ask
            lease.seen("1-1", {"g": token, "v": "0"})
            lease.seen("1-2", {"w": "elsewhere:1"})
            assert await taking == 0
            assert lease.wanted  # so b hands the lease on after its handler
            lease.done(False)
            assert lease.token == ""
    finally:
        await r.aclose()


async def test_a_long_handler_keeps_its_lease(redis_url: str) -> None:
    planes = make_planes(redis_url, lease_ms=300)
    a, b = (shared("COUNTER", Counter, backplane=bp) for bp in planes)
    try:
        await a.ready()
        await b.ready()
        order: list[str] = []

        async def slow() -> None:
            count = a.obj.count
            await asyncio.sleep(1.0)  # three leases long: renewed meanwhile
            a.obj.count = count + 1
            order.append("a")

        running = asyncio.ensure_future(a.sync.gate.run(slow))
        await asyncio.sleep(0.2)
        assert await increment(b) == 2  # waited for a's turn, then counted on it
        order.append("b")
        await running
        assert order == ["a", "b"]
    finally:
        for bp in planes:
            await bp.close()


# --------------------------------------------------------------------------- #
# a holder reads only the asks: whatever takes its lease away must wake it


@pytest.fixture
def long_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stream reads that wait a minute: a reader that is not woken shows."""
    monkeypatch.setattr(redis_replica, "BLOCK_MS", 60_000)


async def test_a_holder_is_not_woken_by_its_own_commits(
    pair: list[Shared[Counter]], redis_url: str
) -> None:
    a, b = pair
    await increment(a)
    await asyncio.wait_for(delivered(b, 1), 10)
    before = await calls(redis_url, "xread")
    for _ in range(20):
        await increment(a)
        assert a.sync.gate._holding_for() > 0  # parked, and reading the asks only
    await asyncio.wait_for(delivered(b, 21), 10)
    assert await calls(redis_url, "xread") - before <= 22  # b's reads: a read none of its own


async def test_a_holder_whose_lease_was_taken_hears_of_it(redis_url: str, long_reads: None) -> None:
    planes = make_planes(redis_url, lease_ms=120_000)
    a, b = (shared("COUNTER", Counter, backplane=bp) for bp in planes)
    try:
        await a.ready()
        await b.ready()
        await increment(a)
        await heartbeat_stops(planes[0], redis_url)  # its lease is taken from it
        assert await asyncio.wait_for(increment(b), 10) == 2
        await asyncio.wait_for(delivered(a, 2), 10)  # not a minute later
        assert a.count == 2
        assert not a.sync.gate.lease.held()
    finally:
        for bp in planes:
            await bp.close()


async def test_a_holder_that_lets_go_reads_every_commit_again(
    redis_url: str, long_reads: None
) -> None:
    planes = make_planes(redis_url, lease_ms=120_000)
    a, b = (shared("COUNTER", Counter, backplane=bp) for bp in planes)
    try:
        await a.ready()
        await b.ready()
        for i in range(1, 9):  # taking turns: each lets go, or hands over, after its handler
            first, other = (a, b) if i % 2 else (b, a)
            assert await asyncio.wait_for(increment(first), 10) == i
            await asyncio.wait_for(delivered(other, i), 10)
        assert a.count == b.count == 8
    finally:
        for bp in planes:
            await bp.close()


async def test_a_reader_that_read_to_the_end_is_no_longer_behind(
    pair: list[Shared[Counter]],
) -> None:
    a, b = pair
    await increment(a)
    a.sync.gate.behind = 1  # as a check made while a commit was on its way leaves it
    await increment(b)  # a reads the stream, to its end
    await asyncio.wait_for(delivered(a, 2), 10)
    assert a.sync.gate.behind == 0  # a holder that caught up may read only the asks
