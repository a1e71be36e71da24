"""Against a real server: uvicorn on 127.0.0.1 and `websockets` clients, all in
the test's event loop (so server objects can be inspected directly). Every
wait is bounded; the server stops at the end of each test."""

import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import Any

import jsonpatch
import pytest
from session_helpers import FAST, Notes, Sessions, serve
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ws_sync import SessionRegistry, remote_action, remote_task, session_context, sync_only
from ws_sync.endpoint import sync_endpoint
from ws_sync.limits import Limits

TIMEOUT = 20.0


class Client:
    """A protocol client that keeps its copy of each object by applying
    `_SET` and `_PATCH` (RFC 6902, with jsonpatch), as the browser does."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.state: dict[str, Any] = {}
        self.frames: list[dict[str, Any]] = []
        self.next_id = 0

    @classmethod
    async def open(
        cls, url: str, user: str | None = None, session: str | None = None, **kw: Any
    ) -> "Client":
        ws = await connect(url, proxy=None, open_timeout=TIMEOUT, **kw)
        client = cls(ws)
        if user is not None:
            assert await client.recv() == {"type": "_REQUEST_USER_SESSION", "data": None}
            await client.send("_USER_SESSION", {"user": user, "session": session})
        return client

    async def send(self, event: str, data: Any = None) -> None:
        await self.ws.send(json.dumps({"type": event, "data": data}))

    async def recv(self) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT))
        self.frames.append(frame)
        kind, _, key = frame["type"].partition(":")
        if kind == "_SET":
            self.state[key] = frame["data"]
        elif kind == "_PATCH":
            self.state[key] = jsonpatch.apply_patch(self.state[key], frame["data"])
        return frame

    async def until(self, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        while True:
            frame = await self.recv()
            if done(frame):
                return frame

    async def call(self, key: str, action: str, **params: Any) -> Any:
        self.next_id += 1
        call_id = self.next_id
        await self.send(f"_ACTION:{key}", {"type": action, "$id": call_id, **params})
        result = await self.until(
            lambda f: f["type"] == f"_ACTION_RESULT:{key}" and f["data"]["id"] == call_id
        )
        assert result["data"]["ok"], result
        return result["data"]["result"]

    async def edit(self, key: str, ops: list[dict[str, Any]]) -> None:
        """A local edit, applied at once and sent (the server echoes nothing back)."""
        self.state[key] = jsonpatch.apply_patch(self.state[key], ops)
        await self.send(f"_PATCH:{key}", ops)

    async def close(self) -> None:
        await self.ws.close()

    def drop(self) -> None:
        """Lose the connection abruptly, as a browser on a failing network does."""
        self.ws.transport.abort()


def app_for(factory: Callable[[], Any], **options: Any) -> Starlette:
    return Starlette(routes=[sync_endpoint(factory, **options)])


# --------------------------------------------------------------------------- #


async def test_fifty_concurrent_clients_have_isolated_state():
    sessions = Sessions(Notes)
    async with serve(app_for(sessions, limits=FAST)) as url:

        async def one(i: int) -> Client:
            client = await Client.open(f"{url}/ws", f"user{i}", "tab")
            await client.until(lambda f: f["type"] == "_SET:NOTES")
            await client.call("NOTES", "RENAME", new_title=f"notes of {i}")
            for j in range(5):
                assert await client.call("NOTES", "ADD_NOTE", **{"$args": [f"{i}-{j}"]}) == j + 1
            return client

        clients = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(50))), TIMEOUT)
        assert len(sessions.built) == 50
        by_title = {b.objects["NOTES"].title: b.objects["NOTES"] for b in sessions.built}
        for i, client in enumerate(clients):
            server = by_title[f"notes of {i}"]
            assert server.notes == [f"{i}-{j}" for j in range(5)]
            assert client.state["NOTES"] == server.sync.state()
        await asyncio.gather(*(c.close() for c in clients))


class Stream:
    """Changes itself in many ways, syncing after each step, until cancelled."""

    @sync_only("STREAM", items=..., title=..., counter=..., _expose_running_tasks=True)
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.title = ""
        self.counter = 0
        self.steps = 0
        self.stepped = asyncio.Event()

    @remote_task("RUN")
    async def run(self) -> None:
        i = 0
        while True:
            i += 1
            self.counter = i
            if i % 3 == 0:
                self.items.append({"n": i, "tags": [str(i)]})
            if i % 5 == 0 and self.items:
                self.items[0]["tags"].append("x")
            if i % 7 == 0 and self.items:
                self.items.pop(0)
            if i % 11 == 0:
                self.title = f"t{i}"
            if i % 13 == 0 and len(self.items) > 1:
                self.items[-1] = {"n": -i, "tags": []}
            await self.sync()
            self.steps = i
            self.stepped.set()
            await asyncio.sleep(0.001)

    async def steps_past(self, n: int) -> None:
        target = self.steps + n
        while self.steps < target:
            self.stepped.clear()
            await asyncio.wait_for(self.stepped.wait(), TIMEOUT)


async def test_reconnect_and_takeover_in_a_stream_of_syncs_end_with_client_equal_to_server():
    sessions = Sessions(Stream)
    async with serve(app_for(sessions, limits=FAST)) as url:
        first = await Client.open(f"{url}/ws", "u", "s")
        await first.until(lambda f: f["type"] == "_SET:STREAM")
        stream: Stream = sessions.last().objects["STREAM"]
        await first.send("_TASK_START:STREAM", {"type": "RUN"})
        for _ in range(30):
            await first.until(lambda f: f["type"] == "_PATCH:STREAM")
        assert first.state["STREAM"]["counter"] > 0

        # the client's network drops mid-stream; the task goes on without it
        first.drop()
        await stream.steps_past(20)
        assert not sessions.last().session.is_connected

        # it comes back with the same ids: same session, state sent whole
        second = await Client.open(f"{url}/ws", "u", "s")
        await second.until(lambda f: f["type"] == "_SET:STREAM")
        for _ in range(30):
            await second.until(lambda f: f["type"] == "_PATCH:STREAM")

        # another tab with the same ids takes over mid-stream
        third = await Client.open(f"{url}/ws", "u", "s")
        await third.until(lambda f: f["type"] == "_SET:STREAM")
        disconnect = await second.until(lambda f: f["type"] == "_DISCONNECT")
        assert "somewhere else" in disconnect["data"]
        with pytest.raises(ConnectionClosed):
            await second.recv()
        for _ in range(30):
            await third.until(lambda f: f["type"] == "_PATCH:STREAM")

        await third.send("_TASK_CANCEL:STREAM", {"type": "RUN"})
        done = await third.until(lambda f: f["type"] == "_TASK_DONE:STREAM")
        assert done["data"] == {"type": "RUN", "status": "cancelled"}
        patched = third.state["STREAM"]
        assert patched == stream.sync.state()
        assert patched["running_tasks"] == []
        await third.send("_GET:STREAM", {})
        fresh = await third.until(lambda f: f["type"] == "_SET:STREAM")
        assert fresh["data"] == patched
        assert len(sessions.built) == 1
        assert stream.counter > 90
        await third.close()


class Board:
    @sync_only("BOARD", cells=..., blob=...)
    def __init__(self) -> None:
        self.cells: dict[str, str] = {}
        self.blob = ""

    @remote_action("PAINT")
    async def paint(self, cell: str, color: str) -> None:
        self.cells[cell] = color
        await self.sync()


def shared_factory(board: Board) -> Callable[[], Any]:
    def factory() -> Any:
        session_context.get().attach(board)
        return Notes()

    return factory


async def test_a_shared_object_is_broadcast_to_every_client():
    board = Board()
    async with serve(app_for(shared_factory(board), user_sessions=False, limits=FAST)) as url:
        clients = [await Client.open(f"{url}/ws") for _ in range(20)]
        for client in clients:
            await client.until(lambda f: f["type"] == "_SET:NOTES")
            assert client.state["BOARD"] == {"cells": {}, "blob": ""}
        await clients[0].call("BOARD", "PAINT", cell="a1", color="red")
        board.cells["b2"] = "blue"  # a change made by the server itself
        await board.sync()
        for client in clients:
            await client.until(lambda f: f["type"] == "_PATCH:BOARD" and "b2" in json.dumps(f))
            assert client.state["BOARD"] == {"cells": {"a1": "red", "b2": "blue"}, "blob": ""}
        # a client write reaches the others; each client's own Notes stays its own
        await clients[5].edit("BOARD", [{"op": "add", "path": "/cells/c3", "value": "green"}])
        for client in clients[:5] + clients[6:]:
            await client.until(lambda f: f["type"] == "_PATCH:BOARD" and "c3" in json.dumps(f))
        assert all(c.state["BOARD"] == board.sync.state() for c in clients)
        await clients[1].call("NOTES", "ADD_NOTE", note="mine")
        assert [c.state["NOTES"]["notes"] for c in clients[:3]] == [[], ["mine"], []]
        await asyncio.gather(*(c.close() for c in clients))


class Worker:
    @sync_only("WORKER", done=..., _expose_running_tasks=True)
    def __init__(self) -> None:
        self.done = 0

    @remote_task("CRUNCH")
    async def crunch(self, label: str) -> Any:
        i = 0
        while True:
            i += 1
            yield {"label": label, "i": i}
            await asyncio.sleep(0.005)


async def test_task_with_progress_then_cancelled():
    sessions = Sessions(Worker)
    async with serve(app_for(sessions, user_sessions=False, limits=FAST)) as url:
        client = await Client.open(f"{url}/ws")
        await client.until(lambda f: f["type"] == "_SET:WORKER")
        await client.send("_TASK_START:WORKER", {"type": "CRUNCH", "label": "job"})
        await client.until(lambda f: f["type"] == "_PATCH:WORKER")
        assert client.state["WORKER"]["running_tasks"] == ["CRUNCH"]
        values = []
        for _ in range(3):
            frame = await client.until(lambda f: f["type"] == "_TASK_PROGRESS:WORKER")
            values.append(frame["data"])
        assert values == [{"type": "CRUNCH", "value": {"label": "job", "i": i}} for i in (1, 2, 3)]
        await client.send("_TASK_CANCEL:WORKER", {"type": "CRUNCH"})
        done = await client.until(lambda f: f["type"] == "_TASK_DONE:WORKER")
        assert done["data"] == {"type": "CRUNCH", "status": "cancelled"}
        assert client.state["WORKER"]["running_tasks"] == []
        assert sessions.last().objects["WORKER"].sync.running_tasks == []
        await client.close()


async def test_a_stalled_client_is_disconnected_without_slowing_the_others():
    board = Board()
    limits = Limits(outbound_bytes=1 << 20, send_timeout=30, close_timeout=10)
    registry = SessionRegistry()
    app = app_for(shared_factory(board), user_sessions=registry, limits=limits)
    async with serve(app) as url:
        options = {"compression": None, "max_size": 1 << 22}
        stalled = await Client.open(f"{url}/ws", "stalled", "s", max_queue=1, **options)
        await stalled.until(lambda f: f["type"] == "_SET:NOTES")  # then it stops reading
        stalled_session = registry.get(("stalled", "s"))
        assert stalled_session is not None and stalled_session.connection is not None
        stalled_conn = stalled_session.connection

        others = [await Client.open(f"{url}/ws", f"u{i}", "s", **options) for i in range(3)]
        for client in others:
            await client.until(lambda f: f["type"] == "_SET:NOTES")

        rounds = 400
        seen = [-1] * len(others)
        progressed = asyncio.Event()

        async def read(k: int, client: Client) -> None:
            while seen[k] < rounds - 1:
                frame = await client.recv()
                if frame["type"] == "_PATCH:BOARD":
                    seen[k] = int(frame["data"][0]["value"].split(":")[0])
                    progressed.set()

        readers = [asyncio.create_task(read(k, c)) for k, c in enumerate(others)]
        start = time.monotonic()
        for i in range(rounds):
            board.blob = f"{i}:" + os.urandom(20_000).hex()  # 40 kB a patch, 16 MB in all
            await board.sync()
            while min(seen) < i - 10:  # the readers keep up: a few frames in flight
                progressed.clear()
                await asyncio.wait_for(progressed.wait(), TIMEOUT)
        await asyncio.wait_for(asyncio.gather(*readers), TIMEOUT)
        elapsed = time.monotonic() - start

        # the others got everything, at their own pace; the stalled one was dropped
        assert elapsed < TIMEOUT
        assert seen == [rounds - 1] * len(others)
        assert all(c.state["BOARD"] == board.sync.state() for c in others)
        assert all(registry.get((f"u{i}", "s")).is_connected for i in range(3))  # type: ignore[union-attr]
        assert stalled_conn.closing and stalled_conn.close_code == 1013
        assert not stalled_session.is_connected
        assert stalled_conn.queued == (0, 0)  # its queue was released

        # once it reads again it finds the connection closed: 1013, try again later
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await stalled.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        await asyncio.gather(*(c.close() for c in others))


async def test_a_foreign_origin_is_refused_with_403():
    async with serve(app_for(Notes, user_sessions=False, limits=FAST)) as url:
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"{url}/ws", origin="http://evil.example", proxy=None)
        assert refused.value.response.status_code == 403
        port = url.rsplit(":", 1)[1]
        client = await Client.open(f"{url}/ws", origin=f"http://127.0.0.1:{port}")
        assert (await client.recv())["type"] == "_SET:NOTES"
        await client.close()


async def test_oversized_and_hostile_frames_over_a_real_socket():
    async with serve(
        app_for(Notes, user_sessions=False, limits=Limits(max_frame_size=10_000))
    ) as url:
        client = await Client.open(f"{url}/ws")
        await client.recv()
        await client.ws.send("[" * 50_000 + "]" * 50_000)
        frame = await client.recv()
        assert frame["data"]["message"] == "frame larger than 10000: dropped"
        await client.ws.send(
            '{"type": "_SET:NOTES", "data": {"notes": ' + "[" * 5000 + "]" * 5000 + "}}"
        )
        assert (await client.recv())["data"]["message"] == "frame larger than 10000: dropped"
        await client.ws.send(
            '{"type": "_SET:NOTES", "data": {"notes": ' + "[" * 100 + "]" * 100 + "}}"
        )
        assert (await client.recv())["data"]["message"] == "JSON nested deeper than 64 levels"
        await client.ws.send(b"\xff\xfe")
        assert (await client.recv())["data"]["event"] == "_INVALID"
        assert await client.call("NOTES", "ADD_NOTE", note="alive") == 1
        await client.close()
