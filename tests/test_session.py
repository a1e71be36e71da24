"""Session: the README's Server Setup, context, registration, reconnects and
takeover, state hooks, session-wide events, shared objects."""

import asyncio
import base64
import gc
import threading
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket
from session_helpers import Counter, Notes, Recorder, barrier, error, exchange, recv, recv_raw, send
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient

from ws_sync import Session, SessionState, remote_action, session_context, sync_only
from ws_sync.connection import Connection

NOTES0 = {"title": "My Notes", "notes": [], "items": [], "total_length": 0}


# --------------------------------------------------------------------------- #
# the README's Server Setup, as written


def readme_fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws")
    async def websocket_endpoint(ws: WebSocket):
        await ws.accept()

        session = Session()
        notes = Notes()  # Your synced object  # noqa: F841 - the README, verbatim

        await session.new_connection(ws)
        await session.handle_connection()

    return app


def readme_starlette_app() -> Starlette:
    async def websocket_endpoint(ws: WebSocket):
        await ws.accept()

        session = Session()
        notes = Notes()  # noqa: F841 - kept alive by this frame, as in the README

        await session.new_connection(ws)
        await session.handle_connection()

    return Starlette(routes=[WebSocketRoute("/ws", websocket_endpoint)])


@pytest.mark.parametrize("make", [readme_fastapi_app, readme_starlette_app])
def test_readme_server_setup(make):
    with TestClient(make()) as tc, tc.websocket_connect("/ws") as ws:
        assert recv(ws) == {"type": "_SET:NOTES", "data": NOTES0}
        assert exchange(ws, "_ACTION:NOTES", {"type": "RENAME", "new_title": "Groceries"}) == [
            {
                "type": "_PATCH:NOTES",
                "data": [{"op": "replace", "path": "/title", "value": "Groceries"}],
            }
        ]
        assert exchange(ws, "_ACTION:NOTES", {"type": "ADD_NOTE", "$args": ["milk"], "$id": 1}) == [
            {
                "type": "_PATCH:NOTES",
                "data": [
                    {"op": "add", "path": "/notes/0", "value": "milk"},
                    {"op": "add", "path": "/total_length", "value": 4},
                ],
            },
            {"type": "_ACTION_RESULT:NOTES", "data": {"id": 1, "ok": True, "result": 1}},
        ]
        patch = [{"op": "add", "path": "/notes/-", "value": "eggs"}]
        assert exchange(ws, "_PATCH:NOTES", patch) == [
            {"type": "_PATCH:NOTES", "data": [{"op": "add", "path": "/total_length", "value": 8}]}
        ]
        assert exchange(ws, "_GET:NOTES", {}) == [
            {
                "type": "_SET:NOTES",
                "data": {
                    "title": "Groceries",
                    "notes": ["milk", "eggs"],
                    "items": [],
                    "total_length": 8,
                },
            }
        ]


# --------------------------------------------------------------------------- #
# context and registration


async def test_a_new_session_is_current_and_claims_objects_built_next():
    session = Session()
    assert session_context.get() is session
    notes = Notes()
    assert session.syncs["NOTES"] is notes.sync
    assert notes.sync.sessions == [session]


async def test_with_session_sets_and_restores_the_context():
    outer = Session()
    inner = Session()
    assert session_context.get() is inner
    with outer:
        assert session_context.get() is outer
        with inner:
            assert session_context.get() is inner
            counter = Counter()
        assert session_context.get() is outer
    assert session_context.get() is inner
    assert "COUNTER" in inner.syncs and "COUNTER" not in outer.syncs
    assert counter.sync.sessions == [inner]


async def test_synced_objects_are_held_weakly():
    session = Session()
    notes = Notes()
    assert list(session.syncs) == ["NOTES"]
    del notes
    gc.collect()
    assert list(session.syncs) == []


async def test_keep_holds_objects_for_the_session():
    session = Session()
    session.keep(Notes())
    gc.collect()
    assert list(session.syncs) == ["NOTES"]


async def test_sync_while_disconnected_sends_nothing():
    session = Session()
    notes = Notes()
    assert not session.is_connected
    notes.notes.append("offline")
    await notes.sync()  # no connection: nothing to send to, and no error
    assert session.connection is None


# --------------------------------------------------------------------------- #
# one persistent session over several connections


class Persistent:
    """An app whose every connection goes to one Session (as a registry would)."""

    def __init__(self) -> None:
        self.session: Session | None = None
        self.notes: Notes | None = None
        self.state = Recorder()

    async def endpoint(self, ws: WebSocket) -> None:
        if self.session is None:
            self.session = Session(state=self.state)
            self.notes = Notes()
        await self.session.handle_connection(ws)

    def app(self) -> Starlette:
        return Starlette(routes=[WebSocketRoute("/ws", self.endpoint)])


def test_reconnect_gets_the_current_state_and_nothing_is_lost():
    p = Persistent()
    with TestClient(p.app()) as tc:
        with tc.websocket_connect("/ws") as ws:
            assert recv(ws) == {"type": "_SET:NOTES", "data": NOTES0}
            exchange(ws, "_ACTION:NOTES", {"type": "ADD_NOTE", "note": "one"})
            assert p.session is not None and p.session.ws is not None
        assert p.session is not None and p.notes is not None
        assert p.session.ws is None
        assert p.state.log == ["connect", "disconnect"]
        assert not p.session.is_connected

        async def change_while_away() -> None:
            p.notes.notes.append("two")
            p.notes.title = "away"
            await p.notes.sync()

        tc.portal.call(change_while_away)
        with tc.websocket_connect("/ws") as ws:
            assert recv(ws) == {
                "type": "_SET:NOTES",
                "data": {"title": "away", "notes": ["one", "two"], "items": [], "total_length": 6},
            }
            assert exchange(ws, "_ACTION:NOTES", {"type": "RENAME", "new_title": "back"}) == [
                {
                    "type": "_PATCH:NOTES",
                    "data": [{"op": "replace", "path": "/title", "value": "back"}],
                }
            ]
        assert p.state.log == ["connect", "disconnect", "connect", "disconnect"]


def test_takeover_disconnects_the_old_connection_and_keeps_the_new_one():
    p = Persistent()
    with TestClient(p.app()) as tc:
        with tc.websocket_connect("/ws") as old:
            recv(old)
            exchange(old, "_ACTION:NOTES", {"type": "ADD_NOTE", "note": "from old"})
            with tc.websocket_connect("/ws") as new:
                state = {"title": "My Notes", "notes": ["from old"], "items": [], "total_length": 8}
                assert recv(new) == {"type": "_SET:NOTES", "data": state}
                disconnect = recv(old)
                assert disconnect["type"] == "_DISCONNECT"
                assert "logged in somewhere else" in disconnect["data"]
                assert recv_raw(old) == {"type": "websocket.close", "code": 1000, "reason": ""}
                assert p.state.log == ["connect", "disconnect", "connect"]
                assert p.session is not None and p.session.is_connected
                assert exchange(new, "_ACTION:NOTES", {"type": "ADD_NOTE", "note": "new"}) == [
                    {
                        "type": "_PATCH:NOTES",
                        "data": [
                            {"op": "add", "path": "/notes/1", "value": "new"},
                            {"op": "add", "path": "/total_length", "value": 11},
                        ],
                    }
                ]
        assert p.state.log == ["connect", "disconnect", "connect", "disconnect"]


def test_disconnect_sends_the_message_and_keeps_the_session():
    class Leaving:
        @sync_only("LEAVING", n=...)
        def __init__(self) -> None:
            self.n = 0

        @remote_action("LOGOUT")
        async def logout(self) -> None:
            await session_context.get().disconnect("bye")

    holder: dict[str, Any] = {}

    async def endpoint(ws: WebSocket) -> None:
        if "session" not in holder:
            holder["session"] = Session()
            holder["obj"] = Leaving()
        await holder["session"].handle_connection(ws)

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    with TestClient(app) as tc:
        with tc.websocket_connect("/ws") as ws:
            recv(ws)
            send(ws, "_ACTION:LEAVING", {"type": "LOGOUT"})
            assert recv(ws) == {"type": "_DISCONNECT", "data": "bye"}
            assert recv_raw(ws)["type"] == "websocket.close"
        assert not holder["session"].is_connected and not holder["session"].closed
        with tc.websocket_connect("/ws") as ws:
            assert recv(ws) == {"type": "_SET:LEAVING", "data": {"n": 0}}


def test_every_send_on_init_object_gets_set_on_connect_and_late_ones_at_once():
    class Quiet:
        @sync_only("QUIET", _send_on_init=False, v=...)
        def __init__(self) -> None:
            self.v = 1

    class Maker:
        @sync_only("MAKER", n=...)
        def __init__(self) -> None:
            self.n = 0
            self.kept: list[Any] = []

        @remote_action("MAKE")
        async def make(self) -> None:
            self.kept.append(Counter())

    async def endpoint(ws: WebSocket) -> None:
        session = Session()
        objs = [Notes(), Quiet(), Maker()]  # noqa: F841 - alive for the connection
        await session.handle_connection(ws)

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        assert [recv(ws)["type"], recv(ws)["type"]] == ["_SET:NOTES", "_SET:MAKER"]
        assert exchange(ws, "_GET:QUIET") == [{"type": "_SET:QUIET", "data": {"v": 1}}]
        assert exchange(ws, "_ACTION:MAKER", {"type": "MAKE"}) == [
            {"type": "_SET:COUNTER", "data": {"count": 0, "label": "fixed"}}
        ]


# --------------------------------------------------------------------------- #
# session-wide events


class Events:
    @sync_only("EVENTS", n=...)
    def __init__(self) -> None:
        self.n = 0

    @remote_action("SHOW")
    async def show(self) -> None:
        session = session_context.get()
        assert await session.toast("saved", 3, type="success") == "saved 3"
        await session.download("a.txt", b"hello")
        await session.send_action("EVENTS", {"type": "FOCUS", "field": "title"})
        await session.send_binary("IMAGE", {"name": "x.png"}, b"\x89PNG")
        await self.sync.toast("object-wide", type="info")

    @remote_action("FROM_THREAD")
    def from_thread(self) -> None:
        self.n += 1
        self.sync.flush()  # a plain def: frames are handed to the loop thread


def test_toast_download_action_and_binary_to_the_session():
    async def endpoint(ws: WebSocket) -> None:
        session = Session()
        events = Events()  # noqa: F841
        await session.handle_connection(ws)

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        send(ws, "_ACTION:EVENTS", {"type": "SHOW"})
        assert recv(ws) == {"type": "_TOAST", "data": {"type": "success", "message": "saved 3"}}
        assert recv(ws) == {
            "type": "_DOWNLOAD",
            "data": {"filename": "a.txt", "data": base64.b64encode(b"hello").decode()},
        }
        assert recv(ws) == {"type": "_ACTION:EVENTS", "data": {"type": "FOCUS", "field": "title"}}
        assert recv(ws) == {
            "type": "_BIN_META",
            "data": {"type": "IMAGE", "metadata": {"name": "x.png"}},
        }
        assert recv_raw(ws) == {"type": "websocket.send", "bytes": b"\x89PNG"}
        assert recv(ws) == {"type": "_TOAST", "data": {"type": "info", "message": "object-wide"}}
        assert barrier(ws) == []
        assert exchange(ws, "_ACTION:EVENTS", {"type": "FROM_THREAD"}) == [
            {"type": "_PATCH:EVENTS", "data": [{"op": "replace", "path": "/n", "value": 1}]}
        ]


def test_custom_event_handlers():
    received: list[Any] = []

    async def endpoint(ws: WebSocket) -> None:
        session = Session(expose_errors=True)

        async def on_ping(data: Any) -> None:
            received.append(data)
            await session.send("PONG", data)

        def on_fail(data: Any) -> None:
            raise ValueError("nope")

        session.register_event("PING", on_ping)
        session.register_event("FAIL", on_fail)
        await session.handle_connection(ws)

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        assert exchange(ws, "PING", {"n": 1}) == [{"type": "PONG", "data": {"n": 1}}]
        frames = exchange(ws, "FAIL", 1)
        assert frames == [error("FAIL", "nope", ref=frames[0]["data"]["ref"])]
        assert received == [{"n": 1}]


# --------------------------------------------------------------------------- #
# shared objects


class StubConnection:
    """Stands in for a `Connection`: records the frames pushed to it."""

    closing = False

    def __init__(self) -> None:
        self.frames: list[Any] = []

    def push(self, frame: Any) -> bool:
        self.frames.append(frame)
        return True

    def push_many(self, frames: list[Any]) -> bool:
        self.frames.extend(frames)
        return True


async def test_a_shared_patch_is_serialized_once_for_all_subscribers():
    sessions = [Session() for _ in range(3)]
    stubs = [StubConnection() for _ in sessions]
    for session, stub in zip(sessions, stubs, strict=True):
        session._conns = [stub]  # type: ignore[list-item]
    with sessions[0]:
        notes = Notes()
    for session in sessions[1:]:
        session.attach(notes)
    # each connected subscriber got the state at once
    assert [[f[:16] for f in s.frames] for s in stubs] == [['{"type":"_SET:NO']] * 3
    notes.notes.append("x")
    await notes.sync()
    frames = [s.frames[-1] for s in stubs]
    assert frames[0] is frames[1] is frames[2]  # one string, written three times
    sessions[2].detach(notes)
    notes.title = "t"
    await notes.sync()
    assert [len(s.frames) for s in stubs] == [3, 3, 2]


def test_shared_object_changes_reach_every_session_and_private_ones_stay_apart():
    shared: dict[str, Any] = {}
    built: list[Any] = []

    async def endpoint(ws: WebSocket) -> None:
        session = Session()
        if "board" not in shared:
            shared["board"] = Counter()
        else:
            session.attach(shared["board"])
        mine = Notes()
        built.append(mine)
        await session.handle_connection(ws)

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    with TestClient(app) as tc, tc.websocket_connect("/ws") as a, tc.websocket_connect("/ws") as b:
        a_first = {recv(a)["type"], recv(a)["type"]}
        b_first = {recv(b)["type"], recv(b)["type"]}
        assert a_first == b_first == {"_SET:COUNTER", "_SET:NOTES"}
        # an action on the shared object: both get the patch
        patch = {
            "type": "_PATCH:COUNTER",
            "data": [{"op": "replace", "path": "/count", "value": 2}],
        }
        assert exchange(a, "_ACTION:COUNTER", {"type": "increment", "by": 2}) == [patch]
        assert recv(b) == patch
        # a client write from b: validated once, reaches a; b already has it (no echo)
        ops = [{"op": "replace", "path": "/count", "value": 5}]
        assert exchange(b, "_PATCH:COUNTER", ops) == []
        assert recv(a) == {"type": "_PATCH:COUNTER", "data": ops}
        assert shared["board"].count == 5
        # per-session objects stay isolated
        exchange(a, "_ACTION:NOTES", {"type": "ADD_NOTE", "note": "only a"})
        assert built[0].notes == ["only a"] and built[1].notes == []
        assert barrier(b) == []


# --------------------------------------------------------------------------- #
# closing


async def test_close_cancels_tasks_terminates_and_leaves_objects():
    state = Recorder()
    session = Session(state=state)
    other = Session()
    with session:
        notes = Notes()
    other.attach(notes)
    started = asyncio.Event()

    class Long:
        @sync_only("LONG", n=...)
        def __init__(self) -> None:
            self.n = 0

    from ws_sync import tasks
    from ws_sync.remote import RemoteMethod

    async def forever(self: Any) -> None:
        started.set()
        await asyncio.Event().wait()

    with session:
        long = Long()
    run = tasks.start(session, long.sync, RemoteMethod("task", "F", "forever", forever), [], {})
    await started.wait()
    await session.close()
    assert run.task is not None and run.task.done()
    assert state.log == ["terminate"]
    assert session.closed and list(session.syncs) == []
    assert notes.sync.sessions == [other]
    with pytest.raises(RuntimeError, match="closed"):
        await session.new_connection(Connection.__new__(Connection))


async def test_session_state_hooks_may_be_plain_functions():
    seen: list[str] = []

    class Plain(SessionState):
        def on_terminate(self) -> None:  # type: ignore[override]
            seen.append(threading.current_thread().name)

    session = Session(state=Plain())
    await session.close()
    assert len(seen) == 1 and seen[0] != threading.current_thread().name


async def test_a_late_subscriber_gets_pending_changes_in_its_set_only():
    first, late = Session(), Session()
    stubs = [StubConnection(), StubConnection()]
    first._conns, late._conns = [stubs[0]], [stubs[1]]  # type: ignore[list-item]
    with first:
        notes = Notes()
    notes.notes.append("pending")  # not synced yet
    late.attach(notes)
    assert [f[:17] for f in stubs[0].frames] == ['{"type":"_SET:NOT', '{"type":"_PATCH:N']
    assert len(stubs[1].frames) == 1
    assert '"notes":["pending"]' in stubs[1].frames[0]


def test_accepted_client_writes_change_the_state_and_echo_only_normalization():
    async def endpoint(ws: WebSocket) -> None:
        session = Session()
        holder.append(Notes())
        await session.handle_connection(ws)

    holder: list[Notes] = []
    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        # the client already shows what it set: nothing comes back but derived values
        assert exchange(ws, "_SET:NOTES", {"title": "set", "notes": ["a", "bc"]}) == [
            {"type": "_PATCH:NOTES", "data": [{"op": "add", "path": "/total_length", "value": 3}]}
        ]
        # a value the server coerced comes back as the server has it
        ops = [{"op": "add", "path": "/items/-", "value": {"name": "pen", "qty": "2"}}]
        assert exchange(ws, "_PATCH:NOTES", ops) == [
            {
                "type": "_PATCH:NOTES",
                "data": [{"op": "add", "path": "/items/0", "value": {"name": "pen", "qty": 2}}],
            }
        ]
        notes = holder[0]
        assert notes.title == "set" and notes.notes == ["a", "bc"]
        assert notes.items[0].qty == 2
        assert exchange(ws, "_GET:NOTES") == [{"type": "_SET:NOTES", "data": notes.sync.state()}]
