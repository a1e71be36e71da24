"""Permissions against a real server: a signed-in editor changes the shared
board, a viewer reads it and is refused every change, answered, with nothing
changed; an object's `can_read` keeps it from those it refuses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from auth_app import AuthApp, Peer, sign_in
from session_helpers import serve
from websockets.asyncio.client import connect

from ws_sync import Session, Sync, remote_action, sync_all
from ws_sync.actions import Params
from ws_sync.permissions import FORBIDDEN, named
from ws_sync.validation import ClientWriteError

Peers = tuple[AuthApp, str, Peer, Peer]


@pytest.fixture
async def peers() -> AsyncIterator[Peers]:
    """The app, its URL, a signed-in editor and a signed-in viewer, both live."""
    app = AuthApp()
    async with serve(app.app) as url:
        editor = await Peer.open(url, await sign_in(url, "ed", "editor"), ("e", "1"))
        viewer = await Peer.open(url, await sign_in(url, "vi", "viewer"), ("v", "1"))
        for peer in (editor, viewer):
            await peer.until("_SET:BOARD")
            await peer.settle()  # the rest of the initial state
        yield app, url, editor, viewer
        await asyncio.gather(editor.close(), viewer.close())


def audits(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    return [
        r.audit  # type: ignore[attr-defined]
        for r in [*caplog.get_records("setup"), *caplog.records]
        if r.name == "ws_sync.audit" and r.audit["event"] == event  # type: ignore[attr-defined]
    ]


def forbidden(event: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "_ERROR",
        "data": {"event": event, "message": FORBIDDEN, "errors": [], **extra},
    }


async def test_a_viewer_reads_the_board_but_its_actions_are_refused_and_answered(
    peers: Peers, caplog: pytest.LogCaptureFixture
) -> None:
    app, _, editor, viewer = peers
    initial = {f["type"]: f["data"] for f in viewer.frames}
    assert initial["_SET:BOARD"]["cards"] == ["first"]  # it reads
    await viewer.send("_ACTION:BOARD", {"type": "ADD", "text": "spam", "$id": 7})
    await viewer.send("_ACTION:BOARD", {"type": "RENAME", "title": "mine"})  # no $id: _ERROR
    assert await viewer.settle() == [
        forbidden("_ACTION:BOARD", id=7),
        {
            "type": "_ACTION_RESULT:BOARD",
            "data": {"id": 7, "ok": False, "error": {"message": FORBIDDEN}},
        },
        forbidden("_ACTION:BOARD"),
    ]
    assert app.board.cards == ["first"] and app.board.title == "Board"
    assert [(a["principal"], a["method"]) for a in audits(caplog, "action refused")] == [
        ("vi", "ADD"),
        ("vi", "RENAME"),
    ]
    # the editor's calls run, and the viewer sees what they change
    await editor.send("_ACTION:BOARD", {"type": "ADD", "text": "real", "$id": 1})
    assert (await editor.until("_ACTION_RESULT:BOARD"))["data"]["result"] == 2
    assert (await viewer.until("_PATCH:BOARD"))["data"][0]["value"] == "real"
    await editor.send("_ACTION:BOARD", {"type": "RENAME", "title": "Ours"})
    await editor.settle()
    assert app.board.cards == ["first", "real"] and app.board.title == "Ours"
    # an action without allow is open to both
    await viewer.send("_ACTION:BOARD", {"type": "PING", "$id": 2})
    assert (await viewer.until("_ACTION_RESULT:BOARD"))["data"]["result"] == "vi"


async def test_a_viewers_writes_are_refused_whole_and_answered_with_the_state(
    peers: Peers, caplog: pytest.LogCaptureFixture
) -> None:
    app, _, editor, viewer = peers
    await viewer.send("_PATCH:BOARD", [{"op": "add", "path": "/cards/-", "value": "x"}])
    await viewer.send("_SET:BOARD", {"title": "hijacked"})
    got = await viewer.settle()
    assert [f["type"] for f in got] == ["_ERROR", "_SET:BOARD", "_ERROR", "_SET:BOARD"]
    assert got[0]["data"]["message"] == "_PATCH rejected: forbidden"
    assert got[0]["data"]["errors"] == [{"op": 0, "path": "/cards/-", "msg": FORBIDDEN}]
    assert got[2]["data"]["errors"] == [{"path": "/title", "msg": FORBIDDEN}]
    assert got[1]["data"]["cards"] == ["first"] and got[3]["data"]["title"] == "Board"
    assert app.board.cards == ["first"] and app.board.title == "Board"
    assert [(a["principal"], a["path"], a["ops"]) for a in audits(caplog, "write refused")] == [
        ("vi", "/cards/-", 1),
        ("vi", "/title", 1),
    ]
    await editor.send("_PATCH:BOARD", [{"op": "add", "path": "/cards/-", "value": "ok"}])
    await editor.settle()
    assert app.board.cards == ["first", "ok"]  # checked against the writer, not the maker
    assert (await viewer.until("_PATCH:BOARD"))["data"][0]["value"] == "ok"


async def test_a_tasks_allow_decides_its_start_and_its_cancel(peers: Peers) -> None:
    app, _, editor, viewer = peers
    await viewer.send("_TASK_CANCEL:BOARD", {"type": "WAIT"})  # not running: nothing to do
    assert await viewer.settle() == []
    await viewer.send("_TASK_START:BOARD", {"type": "WAIT", "owner": "ed", "$id": 3})
    assert await viewer.settle() == [forbidden("_TASK_START:BOARD", id=3)]
    assert app.board.sync.running_tasks == []
    await editor.send("_TASK_START:BOARD", {"type": "WAIT", "owner": "ed"})
    await editor.settle()
    assert app.board.sync.running_tasks == ["WAIT"]
    await viewer.send("_TASK_CANCEL:BOARD", {"type": "WAIT"})
    assert await viewer.settle() == [forbidden("_TASK_CANCEL:BOARD")]
    assert app.board.sync.running_tasks == ["WAIT"]  # still running
    await editor.send("_TASK_CANCEL:BOARD", {"type": "WAIT"})
    done = await editor.until("_TASK_DONE:BOARD")
    assert done["data"] == {"type": "WAIT", "status": "cancelled"}


async def test_a_refused_read_sends_nothing_and_refuses_its_events(
    peers: Peers, caplog: pytest.LogCaptureFixture
) -> None:
    app, url, editor, viewer = peers
    for peer in (editor, viewer):
        assert not any(f["type"].endswith(":SECRET") for f in peer.frames)
    await viewer.send("_GET:SECRET")
    await viewer.send("_ACTION:SECRET", {"type": "X", "$id": 4})
    got = await viewer.settle()
    assert got[0] == forbidden("_GET:SECRET")
    assert got[2]["data"] == {"id": 4, "ok": False, "error": {"message": FORBIDDEN}}
    admin = await Peer.open(url, await sign_in(url, "root", "admin"), ("a", "1"))
    assert (await admin.until("_SET:SECRET"))["data"] == {"code": "s3cret"}
    assert {a["principal"] for a in audits(caplog, "read refused")} == {"ed", "vi"}
    assert app.secret.sync.sessions == [app.registry.get(("a", "1"), "root")]
    await admin.close()


# --------------------------------------------------------------------------- #
# units


class Doc:
    @sync_all("DOC", camel=True)
    def __init__(self) -> None:
        self.page_title = "t"
        self.items = ["a", "b"]
        self.asked: list[tuple[str, str]] = []

    def can_write(self, session: Any, path: str, op: str) -> bool:
        self.asked.append((path, op))
        return path != "/pageTitle"


def test_can_write_sees_wire_paths_however_the_client_spelled_them() -> None:
    doc = Doc()
    sync: Sync = doc.sync  # type: ignore[attr-defined]
    with pytest.raises(ClientWriteError) as refused:
        sync.handle_client_set({"page_title": "x"})  # the Python spelling
    assert refused.value.errors == [{"path": "/pageTitle", "msg": FORBIDDEN}]
    ops = [
        {"op": "test", "path": "/items/0", "value": "a"},
        {"op": "move", "from": "/items/0", "path": "/items/1"},
    ]
    doc.asked.clear()
    sync.handle_client_patch(ops)
    assert doc.asked == [("/items/1", "move"), ("/items/0", "remove")]  # no "test"
    assert doc.items == ["b", "a"] and doc.page_title == "t"


def test_params_reach_allow_by_name_however_they_were_sent() -> None:
    def f(self: Any, a: int, /, b: str, *rest: int, c: bool = False) -> None: ...

    params = Params(f, camel=False, skip_first=True)
    args, kwargs = params.bind({"$args": [1, "x", 5, 6], "c": True})
    assert named(params, args, kwargs) == {"a": 1, "b": "x", "c": True, "$args": [5, 6]}
    args, kwargs = params.bind({"$args": [1], "b": "y"})
    assert named(params, args, kwargs) == {"a": 1, "b": "y", "c": False}


async def test_allow_exceptions_are_the_apps_and_run_nothing() -> None:
    def broken(session: Session, params: dict[str, Any]) -> bool:
        raise RuntimeError("policy bug")

    class Thing:
        @sync_all("THING")
        def __init__(self) -> None:
            self.n = 0

        @remote_action("BUMP", allow=broken)
        async def bump(self) -> None:
            self.n += 1

    from ws_sync.dispatch import Dispatcher

    sent: list[str] = []

    class Conn:
        protocol = 1
        closing = False

        def push(self, frame: str) -> None:
            sent.append(frame)

    with Session() as session:
        thing = Thing()
    dispatcher = Dispatcher(session, Conn())  # type: ignore[arg-type]
    await dispatcher.event("_ACTION:THING", {"type": "BUMP", "$id": 1})
    assert thing.n == 0
    assert '"ok":false' in sent[-1] and "internal error" in sent[-1]
    await session.close()


async def test_a_versioned_client_gets_its_refusals_by_id_and_the_same_answer_again() -> None:
    app = AuthApp()
    async with serve(app.app) as url:
        headers = {"Cookie": await sign_in(url, "vi", "viewer")}
        ws = await connect(f"{url}/ws?ws_sync=2", proxy=None, additional_headers=headers)
        viewer = Peer(ws)
        await viewer.send("_HELLO", {"protocol": 2, "versions": {}})
        assert (await viewer.recv())["type"] == "_REQUEST_USER_SESSION"
        await viewer.send("_USER_SESSION", {"user": "v", "session": "2"})
        board = await viewer.until("_SET:BOARD")
        epoch, version = board["epoch"], board["v"]
        await viewer.settle()  # the rest of the initial state
        patch = [{"op": "replace", "path": "/title", "value": "x"}]
        await ws.send(
            json.dumps(
                {"type": "_PATCH:BOARD", "data": patch, "$id": "w1", "epoch": epoch, "v": version}
            )
        )
        call = {"type": "ADD", "text": "spam", "$id": "c1"}
        await viewer.send("_ACTION:BOARD", call)
        await viewer.send("_ACTION:BOARD", call)  # a retry: answered again, not run
        got = [f for f in await viewer.settle() if f["type"] != "_HELLO"]
        assert got[0]["type"] == "_ERROR" and got[0]["data"]["id"] == "w1"
        assert got[0]["data"]["errors"] == [{"op": 0, "path": "/title", "msg": FORBIDDEN}]
        assert got[1]["type"] == "_SET:BOARD"
        results = [f["data"] for f in got if f["type"] == "_ACTION_RESULT:BOARD"]
        assert results == [{"id": "c1", "ok": False, "error": {"message": FORBIDDEN}}] * 2
        assert app.board.title == "Board" and app.board.cards == ["first"]
        await viewer.close()
