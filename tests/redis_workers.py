"""Real uvicorn worker processes of one app, and a protocol-2 client for them."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import websockets
from e2e_helpers import free_port, port_open

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
QUIET = ("--host", "127.0.0.1", "--log-level", "warning")


class Worker:
    """``uvicorn redis_app:app`` on a free port, with the given backplane."""

    def __init__(self, backplane: str, app: str = "redis_app:app") -> None:
        self.backplane = backplane
        self.app = app
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/ws?ws_sync=2"
        self.http = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> Worker:
        env = {
            **os.environ,
            "WS_SYNC_BACKPLANE": self.backplane,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)]),
        }
        port = str(self.port)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", self.app, "--port", port, *QUIET],
            env=env,
            cwd=TESTS,
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None


@contextlib.contextmanager
def running(backplane: str, n: int) -> Iterator[list[Worker]]:
    """`n` started workers of the test app on `backplane`, stopped after."""
    made = [Worker(backplane) for _ in range(n)]
    try:
        for w in made:
            w.start()
        yield made
    finally:
        for w in made:
            w.stop()


class Copy:
    """A client's copy of one object."""

    def __init__(self) -> None:
        self.state: Any = None
        self.version = -1
        self.epoch = ""
        self.gaps: list[tuple[int, int]] = []
        self.sets = 0

    @property
    def held(self) -> bool:
        return self.version >= 0


class Client:
    """A protocol-2 client of one object: keeps its copy, checks that the
    versions it gets follow each other, answers its own calls."""

    def __init__(self, key: str = "BOARD", user: str | None = None) -> None:
        self.key = key
        self.user = user or uuid.uuid4().hex
        self.session = uuid.uuid4().hex
        self.copies: dict[str, Copy] = {key: Copy()}
        self.errors: list[Any] = []
        self._ids = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:8]
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._writes: set[str] = set()
        self.done: list[dict[str, Any]] = []
        self.disconnected: Any = None
        self._pending: set[asyncio.Future[None]] = set()
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()

    async def connect(self, url: str) -> Client:
        self._ws = await websockets.connect(url, max_size=None)
        held = {k: {"epoch": c.epoch, "v": c.version} for k, c in self.copies.items() if c.held}
        await self._send("_HELLO", {"protocol": 2, "versions": held})
        self._reader = asyncio.ensure_future(self._read())
        return self

    @property
    def connected(self) -> bool:
        return self._reader is not None and not self._reader.done()

    @property
    def close_code(self) -> int | None:
        return None if self._ws is None else self._ws.close_code  # type: ignore[no-any-return]

    async def closed(self, timeout: float = 20.0) -> int | None:
        """Wait until the server closed the connection; its close code."""
        assert self._reader is not None
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader

    async def _send(self, event: str, data: Any, **envelope: Any) -> None:
        await self._ws.send(json.dumps({"type": event, "data": data, **envelope}))

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self._ws:
                self._frame(json.loads(raw))
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError("connection closed"))
                waiter.exception()  # retrieved: its caller, if still waiting, raises it

    def _frame(self, frame: dict[str, Any]) -> None:
        event = frame["type"]
        if event == "_REQUEST_USER_SESSION":
            answer = asyncio.ensure_future(
                self._send("_USER_SESSION", {"user": self.user, "session": self.session})
            )
            self._pending.add(answer)
            answer.add_done_callback(self._pending.discard)
            answer.add_done_callback(lambda f: f.cancelled() or f.exception())  # closed first
        elif event.startswith("_SET:"):
            copy = self.copies.setdefault(event[5:], Copy())
            copy.state, copy.version, copy.epoch = frame["data"], frame["v"], frame["epoch"]
            copy.sets += 1
        elif event.startswith("_PATCH:"):
            copy = self.copies.setdefault(event[7:], Copy())
            v = frame["v"]
            if v <= copy.version:
                return
            if v != copy.version + 1:
                copy.gaps.append((copy.version, v))
            copy.state = jsonpatch.apply_patch(copy.state, frame["data"])
            copy.version = v
            ack = frame.get("ack")
            if ack in self._waiting:
                self._waiting.pop(ack).set_result(frame)
        elif event.startswith("_ACTION_RESULT:"):
            waiter = self._waiting.pop(frame["data"]["id"], None)
            if waiter is not None:
                waiter.set_result(frame["data"])
        elif event.startswith("_TASK_DONE:"):
            self.done.append(frame)
        elif event == "_DISCONNECT":
            self.disconnected = frame["data"]
        elif event == "_ERROR":
            self.errors.append(frame["data"])
            if frame["data"].get("id") in self._writes:  # an action waits for its result
                self._waiting.pop(frame["data"]["id"]).set_result(frame["data"])
        self.changed.set()

    def _call(self) -> tuple[str, asyncio.Future[Any]]:
        call_id = f"{self._prefix}-{next(self._ids)}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = future
        return call_id, future

    async def action(self, name: str, key: str | None = None, **params: Any) -> Any:
        call_id, future = self._call()
        data = {"type": name, "$id": call_id, **params}
        await self._send(f"_ACTION:{key or self.key}", data)
        return await asyncio.wait_for(future, 30)

    async def send_action(
        self, call_id: str, name: str, key: str | None = None, **params: Any
    ) -> asyncio.Future[Any]:
        """Send (or send again) the call `call_id`; the future of its answer."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = future
        await self._send(f"_ACTION:{key or self.key}", {"type": name, "$id": call_id, **params})
        return future

    async def start_task(self, name: str, key: str, call_id: str | None = None) -> None:
        data = {"type": name} if call_id is None else {"type": name, "$id": call_id}
        await self._send(f"_TASK_START:{key}", data)

    async def patch(self, ops: list[dict[str, Any]]) -> Any:
        """A versioned write; its acknowledgement (or `_ERROR`)."""
        call_id = f"{self._prefix}-{next(self._ids)}"
        return await asyncio.wait_for(await self.send_patch(call_id, ops), 30)

    async def send_patch(
        self, call_id: str, ops: list[dict[str, Any]], base: tuple[str, int] | None = None
    ) -> asyncio.Future[Any]:
        """Send (or send again, on its first `base`) the write `call_id`; the
        future of its acknowledgement (or `_ERROR`)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = future
        self._writes.add(call_id)
        epoch, v = base or (self.epoch, self.version)
        await self._send(f"_PATCH:{self.key}", ops, v=v, epoch=epoch, **{"$id": call_id})
        return future

    @property
    def main(self) -> Copy:
        return self.copies[self.key]

    @property
    def state(self) -> Any:
        return self.main.state

    @property
    def version(self) -> int:
        return self.main.version

    @property
    def epoch(self) -> str:
        return self.main.epoch

    @property
    def gaps(self) -> list[tuple[int, int]]:
        return self.main.gaps

    @property
    def sets(self) -> int:
        return self.main.sets

    async def ready(self, timeout: float = 20.0) -> Client:
        async with asyncio.timeout(timeout):
            while self.state is None:
                self.changed.clear()
                await self.changed.wait()
        return self


async def settle(clients: list[Client], timeout: float = 20.0) -> None:
    """Until every client holds the same version (and so, the same state)."""
    async with asyncio.timeout(timeout):
        while len({(c.epoch, c.version) for c in clients}) > 1:
            await asyncio.sleep(0.05)
