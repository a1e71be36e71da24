"""Helpers for the session-layer tests: synced test classes, an app that records
its sessions, a TestClient receive with a timeout, a real uvicorn server.

Synchronisation without sleeps: events of one connection are handled in
order, so sending `_GET:<key>` and reading up to its `_SET:<key>` proves that
every earlier event was handled, and returns exactly the frames they caused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any

import anyio
import uvicorn
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.testclient import WebSocketTestSession
from typing_extensions import TypedDict

from ws_sync import Session, SessionState, remote_action, remote_task, sync_all, sync_only
from ws_sync.endpoint import sync_endpoint
from ws_sync.limits import Limits

# --------------------------------------------------------------------------- #
# synced test classes


class Item(BaseModel):
    name: str
    qty: Annotated[int, Field(ge=0)] = 0


class Color(Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Point:
    x: int
    y: int


class Size(TypedDict):
    w: int
    h: int


class Notes(BaseModel):
    """The README's Notes, plus what the protocol tests need."""

    title: str = "My Notes"
    notes: list[str] = []
    items: list[Item] = []

    @sync_all("NOTES")
    def model_post_init(self, __context: Any) -> None:
        pass

    @property
    def total_length(self) -> int:
        return sum(len(note) for note in self.notes)

    @remote_action("RENAME")
    async def rename(self, new_title: str) -> None:
        self.title = new_title
        await self.sync()

    @remote_action("ADD_NOTE")
    async def add_note(self, note: str) -> int:
        self.notes.append(note)
        await self.sync()
        return len(self.notes)

    @remote_action("ADD_ITEM")
    async def add_item(self, item: Item) -> Item:
        self.items.append(item)
        await self.sync()
        return item

    @remote_action("FAIL")
    async def fail(self) -> None:
        raise RuntimeError("boom")

    @remote_task("PROCESS_BATCH")
    async def process_batch(self, items: list[str]) -> Any:
        for item in items:
            await asyncio.sleep(0)
            yield f"Processed {item}"


class Counter:
    """A plain (non-pydantic) synced class with a private and a read-only attribute."""

    @sync_only("COUNTER", count=..., label=..., _read_only=("label",))
    def __init__(self) -> None:
        self.count = 0
        self.label = "fixed"
        self.secret = "not synced"
        self._private = 1

    @remote_action
    async def increment(self, by: Annotated[int, Field(gt=0)] = 1) -> int:
        self.count += by
        await self.sync()
        return self.count


# --------------------------------------------------------------------------- #
# TestClient helpers


VERSION_FIELDS = ("v", "epoch")
"""Protocol 2's fields on `_SET`/`_PATCH`: every client gets them, protocol-1
clients ignore them, and so do the tests of protocol-1 behaviour."""


def recv(ws: WebSocketTestSession, timeout: float = 5.0, versions: bool = False) -> dict[str, Any]:
    """The next frame as JSON (without its version fields unless `versions`);
    fails instead of hanging when none comes."""
    message = _receive(ws, timeout)
    ws._raise_on_close(message)
    frame = json.loads(message["text"])
    return frame if versions else unversioned(frame)


def unversioned(frame: dict[str, Any]) -> dict[str, Any]:
    for field in VERSION_FIELDS:
        frame.pop(field, None)
    return frame


def recv_raw(ws: WebSocketTestSession, timeout: float = 5.0) -> dict[str, Any]:
    """The next ASGI message sent to the client (text, bytes or close)."""
    return _receive(ws, timeout)


def _receive(ws: WebSocketTestSession, timeout: float) -> dict[str, Any]:
    async def get() -> dict[str, Any]:
        with anyio.fail_after(timeout):
            return await ws._send_rx.receive()

    return ws.portal.call(get)


def send(ws: WebSocketTestSession, event: str, data: Any = None) -> None:
    ws.send_text(json.dumps({"type": event, "data": data}))


_barriers = iter(range(1 << 62))


def barrier(ws: WebSocketTestSession) -> list[dict[str, Any]]:
    """The frames that arrive before the answer to an unknown event sent now:
    every earlier event has been handled by then (events are handled in order)."""
    event = f"_BARRIER:{next(_barriers)}"
    send(ws, event, None)
    before = []
    while True:
        frame = recv(ws)
        if frame == error(event, f"unknown event {event!r}"):
            return before
        before.append(frame)


def exchange(ws: WebSocketTestSession, event: str, data: Any = None) -> list[dict[str, Any]]:
    """Send one event; return exactly the frames it caused."""
    send(ws, event, data)
    return barrier(ws)


def state(ws: WebSocketTestSession, key: str) -> Any:
    """The client's view of object `key`, asked for with `_GET`."""
    frames = exchange(ws, f"_GET:{key}", {})
    assert [f["type"] for f in frames] == [f"_SET:{key}"], frames
    return frames[0]["data"]


def error(event: str, message: str, errors: list[Any] | None = None, **extra: Any) -> dict:
    return {
        "type": "_ERROR",
        "data": {"event": event, "message": message, "errors": errors or [], **extra},
    }


# --------------------------------------------------------------------------- #
# an app that records what it builds


class Recorder(SessionState):
    """Session state that logs hooks; `terminated` is a threading.Event so a
    test thread can wait on it."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.terminated = threading.Event()

    async def on_connect(self) -> None:
        self.log.append("connect")

    async def on_disconnect(self) -> None:
        self.log.append("disconnect")

    async def on_terminate(self) -> None:
        self.log.append("terminate")
        self.terminated.set()


@dataclass
class Built:
    session: Session
    objects: dict[str, Any]
    state: Recorder


class Sessions:
    """Factory for `sync_endpoint` that records each session and its objects."""

    def __init__(self, *classes: Callable[[], Any]) -> None:
        self.classes = classes or (Notes,)
        self.built: list[Built] = []
        self.lock = threading.Lock()

    def __call__(self) -> list[Any]:
        from ws_sync import session_context

        session = session_context.get()
        state = Recorder()
        session.state = state
        objects = {}
        for cls in self.classes:
            obj = cls()
            objects[obj.sync.key] = obj
        with self.lock:
            self.built.append(Built(session, objects, state))
        return list(objects.values())

    def last(self) -> Built:
        return self.built[-1]


def make_app(
    *classes: Callable[[], Any], user_sessions: bool = False, **options: Any
) -> tuple[Starlette, Sessions]:
    sessions = Sessions(*classes)
    route = sync_endpoint(sessions, user_sessions=user_sessions, **options)
    return Starlette(routes=[route]), sessions


# --------------------------------------------------------------------------- #
# a real server


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the test runner owns the signals
        yield


@contextlib.asynccontextmanager
async def serve(app: Any, **config: Any) -> AsyncIterator[str]:
    """Run `app` on uvicorn at 127.0.0.1 on a free port, in this event loop.
    Yields the ws:// base URL; stops the server (bounded) on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options = {"log_level": "warning", "lifespan": "off", "timeout_graceful_shutdown": 3}
    server = _Server(uvicorn.Config(app, **{**options, **config}))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            await server.ready.wait()
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        try:
            async with asyncio.timeout(15):
                await task
        finally:
            sock.close()


FAST = Limits(close_timeout=2.0, handshake_timeout=2.0)
