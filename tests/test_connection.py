"""Connection: the bounded outbound queue and its writer, closing, and the
inbound limits (frame size, JSON depth, rate)."""

import asyncio
import json
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.websockets import WebSocketState

from ws_sync.connection import Connection, FrameRejected
from ws_sync.limits import Limits, TokenBucket, too_deep


class FakeWebSocket:
    """The parts of a Starlette WebSocket a Connection uses. `stalled` holds
    every send until it is set: a client that stops reading. `yields` makes
    every send wait that many loop turns before it completes (as the
    TestClient's does); `fail` is raised by the next send as soon as it starts.
    `started` records every frame a send began, `abandoned` every frame whose
    send was cancelled or closed before it completed."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}
        self.application_state = WebSocketState.CONNECTED
        self.sent: list[Any] = []
        self.closed_with: tuple[int, str] | None = None
        self.stalled = asyncio.Event()
        self.stalled.set()
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.first_send = asyncio.Event()
        self.progress = asyncio.Event()
        self.receiving = asyncio.Event()
        self.yields = 0
        self.fail: BaseException | None = None
        self.started: list[Any] = []
        self.abandoned: list[Any] = []

    async def send(self, message: dict[str, Any]) -> None:
        data = message.get("text", message.get("bytes"))
        self.started.append(data)
        self.first_send.set()
        if self.fail is not None:
            raise self.fail
        try:
            for _ in range(self.yields):
                await asyncio.sleep(0)
            await self.stalled.wait()
        except BaseException:
            self.abandoned.append(data)
            raise
        self.sent.append(data)
        self.progress.set()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.stalled.wait()
        self.application_state = WebSocketState.DISCONNECTED
        self.closed_with = (code, reason)

    async def receive(self) -> dict[str, Any]:
        self.receiving.set()
        return await self.inbox.get()


def connection(**limits: Any) -> tuple[Connection, FakeWebSocket]:
    ws = FakeWebSocket()
    conn = Connection(ws, Limits(**limits))  # type: ignore[arg-type]
    conn.start()
    return conn, ws


async def drained(conn: Connection, ws: FakeWebSocket, count: int) -> list[Any]:
    async with asyncio.timeout(5):
        while len(ws.sent) < count:
            ws.progress.clear()
            await ws.progress.wait()
    return ws.sent


# --------------------------------------------------------------------------- #
# outbound


async def test_frames_go_out_in_order():
    conn, ws = connection()
    for i in range(5):
        assert conn.push(f"t{i}")
    assert conn.push_many(["meta", b"bytes"])
    assert await drained(conn, ws, 7) == ["t0", "t1", "t2", "t3", "t4", "meta", b"bytes"]
    assert conn.queued == (0, 0)


async def test_too_many_queued_frames_disconnect_a_slow_client():
    conn, ws = connection(outbound_frames=10, outbound_bytes=10_000, close_timeout=5)
    ws.stalled.clear()
    assert conn.push("first")
    await ws.first_send.wait()  # the writer holds "first" in a send that does not finish
    for i in range(10):
        assert conn.push(f"f{i}")
    assert conn.queued == (10, 20)
    assert not conn.push("one too many")
    assert conn.closing and conn.close_code == 1013
    assert conn.queued == (0, 0)  # memory is released at once
    assert not conn.push("after")
    ws.stalled.set()  # the close frame can go out once the client reads again
    async with asyncio.timeout(5):
        await conn.wait_closed()
    assert ws.closed_with == (1013, "too slow")
    assert ws.sent == []  # the cancelled send never completed


async def test_too_many_queued_bytes_disconnect_a_slow_client():
    conn, ws = connection(outbound_frames=1000, outbound_bytes=100, close_timeout=0.05)
    ws.stalled.clear()
    conn.push("x")
    await ws.first_send.wait()
    assert conn.push("a" * 60)
    assert not conn.push_many(["b" * 30, b"c" * 30])  # all or nothing
    assert conn.closing and conn.close_code == 1013
    async with asyncio.timeout(5):
        await conn.wait_closed()  # close frame never taken: gives up after close_timeout
    assert ws.closed_with is None


async def test_a_stalled_send_disconnects_after_the_send_timeout():
    conn, ws = connection(send_timeout=0.05, close_timeout=0.05)
    ws.stalled.clear()
    conn.push("stuck")
    await ws.first_send.wait()
    assert conn._watchdog is None  # one frame in flight, none waiting: nothing to watch
    conn.push("waiting")
    async with asyncio.timeout(5):
        await conn.wait_closed()
    assert conn.close_code == 1013 and ws.sent == []


async def test_a_slow_but_moving_client_is_not_cut_off():
    conn, ws = connection(send_timeout=0.2)
    for i in range(50):
        conn.push(f"f{i}")
    assert await drained(conn, ws, 50) == [f"f{i}" for i in range(50)]
    assert not conn.closing


async def test_push_from_another_thread_is_handed_to_the_loop():
    conn, ws = connection()
    thread = threading.Thread(target=lambda: conn.push_many(["a", "b"]) and conn.push("c"))
    thread.start()
    thread.join()
    assert await drained(conn, ws, 3) == ["a", "b", "c"]


async def test_close_sends_what_is_queued_then_disconnect_then_closes():
    conn, ws = connection()
    conn.push("last words")
    await conn.close(1000, message="bye")
    assert ws.sent == [
        "last words",
        json.dumps({"type": "_DISCONNECT", "data": "bye"}, separators=(",", ":")),
    ]
    assert ws.closed_with == (1000, "")
    assert not conn.push("late")


async def test_close_of_a_client_that_reads_nothing_is_bounded():
    conn, ws = connection(close_timeout=0.05)
    ws.stalled.clear()
    conn.push("never read")
    async with asyncio.timeout(5):
        await conn.close(message="bye")
    assert conn.closing and ws.closed_with is None


async def test_a_send_that_does_not_wait_goes_out_inside_push():
    conn, ws = connection()
    await asyncio.sleep(0)  # the writer has started and is idle
    assert conn.push("a")
    assert conn.push_many(["meta", b"bytes"])
    assert ws.sent == ["a", "meta", b"bytes"]  # no loop turn needed: sent by push itself
    assert conn.queued == (0, 0)
    assert not conn._wake.is_set()  # the writer was not woken


async def test_frames_pushed_while_a_send_waits_go_out_after_it_in_order():
    conn, ws = connection()
    ws.yields = 1  # every send waits one loop turn halfway
    assert conn.push("a")
    assert ws.started == ["a"] and ws.sent == []  # started by push, suspended halfway
    assert conn.push("b")
    assert conn.push_many(["c", b"d"])
    assert ws.started == ["a"]  # nothing else starts while "a" is pending
    assert conn.queued == (3, 3)
    assert await drained(conn, ws, 4) == ["a", "b", "c", b"d"]
    assert ws.started == ["a", "b", "c", b"d"]  # one send at a time, in order
    ws.yields = 0
    for _ in range(3):
        await asyncio.sleep(0)  # the writer goes idle again
    assert conn.push("e")
    assert ws.sent[-1] == "e"  # and sends start in push again


async def test_push_many_behind_a_send_that_suspends_keeps_the_group_in_order():
    conn, ws = connection(outbound_frames=1, outbound_bytes=1)
    ws.yields = 1
    # the group is taken whole: its first frame starts at once, the rest queue
    # behind it even though they are over the budget
    assert conn.push_many(["meta", b"bytes", "after"])
    assert conn.queued == (2, 10)
    assert await drained(conn, ws, 3) == ["meta", b"bytes", "after"]
    assert not conn.closing


async def test_close_soon_behind_a_suspended_send_sends_everything_first():
    conn, ws = connection()
    ws.stalled.clear()
    conn.push("a")
    conn.push("b")
    conn.close_soon(1000, message="bye")
    assert not conn.push("late")
    ws.stalled.set()
    async with asyncio.timeout(5):
        await conn.wait_closed()
    assert ws.sent == [
        "a",
        "b",
        json.dumps({"type": "_DISCONNECT", "data": "bye"}, separators=(",", ":")),
    ]
    assert ws.closed_with == (1000, "")


@pytest.mark.parametrize(
    "error", [OSError("gone"), RuntimeError("closed"), asyncio.CancelledError()]
)
async def test_a_send_that_fails_inside_push_closes_the_connection_not_the_caller(error):
    conn, ws = connection()
    await asyncio.sleep(0)
    ws.fail = error
    assert not conn.push("x")  # no exception reaches the caller
    assert ws.started == ["x"]
    assert conn.closing
    async with asyncio.timeout(5):
        await conn.wait_closed()
    ws.fail = None
    assert not conn.push("after")
    assert not conn.push_many(["a", "b"])
    assert ws.started == ["x"]
    assert conn.queued == (0, 0)


async def test_a_send_that_fails_inside_push_many_drops_the_rest():
    conn, ws = connection()
    await asyncio.sleep(0)
    ws.fail = OSError("gone")
    assert not conn.push_many(["meta", b"bytes"])
    assert ws.started == ["meta"]
    assert conn.closing and conn.queued == (0, 0)


async def blocked_reader(conn: Connection, ws: Any) -> asyncio.Task[Any]:
    """A task that called `conn.receive()` and waits in it."""

    async def reader() -> Any:
        conn.bind_reader()
        return await conn.receive()

    task = asyncio.create_task(reader())
    async with asyncio.timeout(5):
        await ws.receiving.wait()
    return task


async def test_a_send_that_fails_inside_push_wakes_the_blocked_reader():
    conn, ws = connection()

    task = await blocked_reader(conn, ws)
    ws.fail = OSError("gone")
    assert not conn.push("x")
    with pytest.raises(asyncio.CancelledError):
        await task
    assert conn.reader_cancelled


async def test_a_send_that_fails_after_suspending_closes_the_connection():
    conn, ws = connection()
    ws.stalled.clear()
    assert conn.push("x")
    conn.push("queued")
    ws.stalled.set()
    real_wait = ws.stalled.wait

    async def broken() -> None:
        raise OSError("gone")

    ws.stalled.wait = broken  # type: ignore[method-assign]
    async with asyncio.timeout(5):
        await conn.wait_closed()  # "x" was resumed by the writer; "queued" failed
    ws.stalled.wait = real_wait  # type: ignore[method-assign]
    assert ws.sent == ["x"] and conn.closing
    assert not conn.push("after")


async def test_a_stalled_client_is_cut_off_without_holding_up_another():
    slow, slow_ws = connection(outbound_frames=5, outbound_bytes=10_000, close_timeout=0.05)
    fast, fast_ws = connection(outbound_frames=5, outbound_bytes=10_000)
    await asyncio.sleep(0)
    slow_ws.stalled.clear()
    for i in range(20):
        frame = f"f{i}"
        fast.push(frame)
        slow.push(frame)
        assert fast_ws.sent[-1] == frame  # sent inside push, whatever the slow client does
    assert slow.closing and slow.close_code == 1013
    assert not fast.closing and fast.queued == (0, 0)
    async with asyncio.timeout(5):
        await slow.wait_closed()
    assert slow_ws.sent == [] and slow_ws.abandoned == ["f0"]
    assert fast_ws.sent == [f"f{i}" for i in range(20)]


async def test_abort_before_the_writer_takes_a_suspended_send_closes_it():
    conn, ws = connection(outbound_frames=1, close_timeout=0.05)
    await asyncio.sleep(0)
    ws.stalled.clear()
    assert conn.push("a")  # suspended in push; the writer has not run since
    assert conn.push("b")
    assert not conn.push("c")  # over the budget: aborted at once
    assert ws.abandoned == ["a"]  # the pending send was stopped, not left dangling
    assert conn.closing and conn.close_code == 1013
    async with asyncio.timeout(5):
        await conn.wait_closed()
    assert ws.sent == []


async def test_a_stalled_send_started_in_push_is_watched_once_frames_wait():
    conn, ws = connection(send_timeout=0.05, close_timeout=0.05)
    await asyncio.sleep(0)
    ws.stalled.clear()
    conn.push("stuck")  # starts in push and suspends: handed to the writer
    await asyncio.sleep(0.1)  # longer than send_timeout, but no frame waits behind it
    assert not conn.closing
    conn.push("waiting")
    async with asyncio.timeout(5):
        await conn.wait_closed()
    assert conn.close_code == 1013 and ws.sent == [] and ws.abandoned == ["stuck"]


async def test_push_outside_a_task_leaves_the_send_to_the_writer():
    """A send may need to run inside a task (anyio asks sniffio, which looks
    for the current task): pushes from loop callbacks and other threads are
    sent by the writer, not started in the callback."""
    ws = FakeWebSocket()
    fake_send = ws.send

    async def send(message: dict[str, Any]) -> None:
        if asyncio.current_task() is None:
            raise RuntimeError("not in a task")
        await fake_send(message)

    ws.send = send  # type: ignore[method-assign]
    conn = Connection(ws, Limits())  # type: ignore[arg-type]
    conn.start()
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    loop.call_soon(conn.push, "from a callback")
    loop.call_soon(conn.push_many, ["meta", b"bytes"])
    thread = threading.Thread(target=lambda: conn.push("from a thread"))
    thread.start()
    thread.join()
    assert await drained(conn, ws, 4) == ["from a callback", "meta", b"bytes", "from a thread"]
    assert not conn.closing


async def test_frames_pushed_before_start_go_out_first():
    ws = FakeWebSocket()
    conn = Connection(ws, Limits())  # type: ignore[arg-type]
    assert conn.push("early")
    conn.start()
    assert conn.push("later")
    assert ws.sent == []  # "later" waits behind "early", which the writer sends
    assert await drained(conn, ws, 2) == ["early", "later"]


# --------------------------------------------------------------------------- #
# inbound


async def test_receive_returns_frames_and_none_at_disconnect():
    conn, ws = connection()
    await ws.inbox.put({"type": "websocket.receive", "text": "hello"})
    await ws.inbox.put({"type": "websocket.receive", "bytes": b"\x00"})
    await ws.inbox.put({"type": "websocket.disconnect", "code": 1000})
    assert await conn.receive() == "hello"
    assert await conn.receive() == b"\x00"
    assert await conn.receive() is None
    assert conn.closing
    assert await conn.receive() is None


async def test_frames_put_back_are_received_first():
    conn, ws = connection()
    await ws.inbox.put({"type": "websocket.receive", "text": "later"})
    conn.unread(["a", b"b"])
    assert [await conn.receive() for _ in range(3)] == ["a", b"b", "later"]


async def test_oversized_frames_are_rejected():
    conn, ws = connection(max_frame_size=4)
    await ws.inbox.put({"type": "websocket.receive", "text": "12345"})
    await ws.inbox.put({"type": "websocket.receive", "bytes": b"12345"})
    await ws.inbox.put({"type": "websocket.receive", "text": "1234"})
    for _ in range(2):
        with pytest.raises(FrameRejected, match="larger than 4"):
            await conn.receive()
    assert await conn.receive() == "1234"


async def test_frames_over_the_rate_are_delayed_not_dropped():
    conn, ws = connection(rate=50.0, burst=2)
    for i in range(6):
        await ws.inbox.put({"type": "websocket.receive", "text": str(i)})
    loop = asyncio.get_running_loop()
    start = loop.time()
    got = [await conn.receive() for _ in range(6)]
    assert got == [str(i) for i in range(6)]
    # two from the burst, four at 50/s: the reader waited about 80 ms
    assert loop.time() - start >= 0.07
    assert not conn.closing


async def test_connections_of_one_address_share_its_budget():
    shared = TokenBucket(rate=20.0, burst=1)
    pairs = [connection(rate=None), connection(rate=None)]
    conns = [Connection(ws, Limits(rate=None), shared) for _, ws in pairs]
    for _, ws in pairs:
        await ws.inbox.put({"type": "websocket.receive", "text": "x"})
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.gather(*(c.receive() for c in conns))
    assert loop.time() - start >= 0.04  # the second frame waited for the shared token


async def test_a_client_that_keeps_the_limit_saturated_is_closed_with_1008():
    conn, ws = connection(rate=0.001, burst=1, throttle_timeout=5.0)
    for i in range(2):
        await ws.inbox.put({"type": "websocket.receive", "text": str(i)})
    assert await conn.receive() == "0"
    with pytest.raises(FrameRejected, match="rate limit"):
        await conn.receive()  # due in 1000 s: beyond any patience
    await conn.wait_closed()
    assert conn.close_code == 1008


async def test_a_close_wakes_a_reader_held_by_the_rate_limit():
    conn, ws = connection(rate=1.0, burst=1, throttle_timeout=None)
    for i in range(2):
        await ws.inbox.put({"type": "websocket.receive", "text": str(i)})
    assert await conn.receive() == "0"
    reader = asyncio.create_task(_bound_receive(conn))
    await asyncio.sleep(0.01)
    conn.abort(1013, "too slow")
    with pytest.raises(asyncio.CancelledError):
        await reader


async def _bound_receive(conn: Connection) -> Any:
    conn.bind_reader()
    return await conn.receive()


def test_token_bucket_reserve_owes_instead_of_refusing(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("ws_sync.limits.time.monotonic", lambda: now[0])
    bucket = TokenBucket(rate=10.0, burst=2)
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.1)
    assert bucket.reserve() == pytest.approx(0.2)  # queued behind the first
    now[0] += 0.2
    assert bucket.reserve() == pytest.approx(0.1)
    assert TokenBucket(None, 1).reserve() == 0.0


async def test_abort_wakes_a_reader_blocked_in_receive():
    conn, ws = connection(close_timeout=0.05)

    task = await blocked_reader(conn, ws)
    conn.abort(1013, "too slow")
    with pytest.raises(asyncio.CancelledError):
        await task
    assert conn.reader_cancelled


def test_token_bucket_refills_at_its_rate(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("ws_sync.limits.time.monotonic", lambda: now[0])
    bucket = TokenBucket(rate=2.0, burst=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token back
    assert [bucket.take() for _ in range(2)] == [True, False]
    now[0] += 100  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 3
    assert all(TokenBucket(None, 1).take() for _ in range(1000))


# --------------------------------------------------------------------------- #
# JSON depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("{}", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('"[[[[[[[[["', 0),  # brackets inside a string do not count
        ('["\\"[[[[[[", [[1]]]', 3),  # nor after an escaped quote
        ('{"k\\\\": [[[]]]}', 4),  # an escaped backslash ends before the quote
    ],
)
def test_too_deep_counts_structure_only(text, depth):
    assert not too_deep(text, depth)
    assert too_deep(text, depth - 1) == (depth > 0)


json_trees = st.recursive(
    st.none() | st.integers() | st.text(alphabet='[]{}"\\ab', max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\ab', max_size=4), inner, max_size=3)
    ),
    max_leaves=20,
)


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


@given(json_trees, st.integers(min_value=0, max_value=8))
def test_too_deep_agrees_with_the_parsed_depth(tree, limit):
    assert too_deep(json.dumps(tree), limit) == (depth_of(tree) > limit)


def test_too_deep_is_fast_on_huge_input():
    import time

    text = "[" * 500_000 + "]" * 500_000
    start = time.perf_counter()
    assert too_deep(text, 64)
    flat = json.dumps(["x" * 100] * 10_000)
    assert not too_deep(flat, 64)
    assert time.perf_counter() - start < 2.0


async def test_a_frame_larger_than_the_budget_still_goes_out_alone():
    conn, ws = connection(outbound_bytes=10)
    assert conn.push("x" * 100)  # an empty queue takes it
    assert await drained(conn, ws, 1) == ["x" * 100]
    assert not conn.closing


async def test_work_done_for_a_client_delays_its_next_frames():
    conn, ws = connection(rate=None, write_share=0.5, write_burst=0.01)
    for i in range(2):
        await ws.inbox.put({"type": "websocket.receive", "text": str(i)})
    assert await conn.receive() == "0"
    conn.charge(0.06)  # 0.05 s over its burst, at half the loop's time: 0.1 s to wait
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await conn.receive() == "1"
    assert loop.time() - start >= 0.09
