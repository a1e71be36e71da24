"""Protocol 2: calls retried after a lost connection run once, writes resent
are applied once, a resumed client sees its running tasks, and `_PING`."""

import asyncio
import json
import time
from typing import Any

from session_helpers import make_app, recv, send
from starlette.applications import Starlette
from starlette.testclient import TestClient

from ws_sync import remote_action, remote_task, session_context, sync_endpoint, sync_only


class Ledger:
    entries: list[str]

    @sync_only("LEDGER", entries=...)
    def __init__(self) -> None:
        self.entries = []
        self.runs = 0
        self.gate = asyncio.Event()

    @remote_action("ADD")
    async def add(self, entry: str) -> int:
        self.runs += 1
        self.entries.append(entry)
        return len(self.entries)

    @remote_task("JOB")
    async def job(self) -> Any:
        yield "halfway"
        await self.gate.wait()


def v2(ws: Any) -> dict[str, Any]:
    return recv(ws, versions=True)


def greet(ws: Any, versions: dict[str, Any] | None = None) -> None:
    send(ws, "_HELLO", {"protocol": 2, "versions": versions or {}})
    assert v2(ws)["type"] == "_REQUEST_USER_SESSION"
    assert v2(ws)["type"] == "_HELLO"
    send(ws, "_USER_SESSION", {"user": "u", "session": "s"})


def opened(ws: Any, versions: dict[str, Any] | None = None) -> dict[str, Any]:
    greet(ws, versions)
    return v2(ws)


def test_an_action_retried_after_a_reconnect_runs_once_and_answers_again() -> None:
    app, sessions = make_app(Ledger, user_sessions=True)
    with TestClient(app) as tc:
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            state = opened(ws)
            send(ws, "_ACTION:LEDGER", {"type": "ADD", "entry": "pay", "$id": "p-1"})
            first = [v2(ws), v2(ws)]
            assert first[0]["v"] == 1
        ledger = sessions.last().objects["LEDGER"]
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            greet(ws, {"LEDGER": {"epoch": state["epoch"], "v": 1}})  # up to date: no frame
            send(ws, "_ACTION:LEDGER", {"type": "ADD", "entry": "pay", "$id": "p-1"})
            again = v2(ws)
        assert ledger.runs == 1 and ledger.entries == ["pay"]
        assert (
            again
            == first[-1]
            == {
                "type": "_ACTION_RESULT:LEDGER",
                "data": {"id": "p-1", "ok": True, "result": 1},
            }
        )


def test_an_action_on_a_shared_object_retried_without_user_sessions_runs_once() -> None:
    """Without user ids every connection is a new session: the shared object
    remembers the call."""
    ledger = Ledger()

    def join() -> Ledger:
        session_context.get().attach(ledger.sync)
        return ledger

    app = Starlette(routes=[sync_endpoint(join, user_sessions=False)])
    with TestClient(app) as tc:
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            send(ws, "_HELLO", {"protocol": 2, "versions": {}})
            assert v2(ws)["type"] == "_HELLO"
            assert v2(ws)["type"] == "_SET:LEDGER"
            send(ws, "_ACTION:LEDGER", {"type": "ADD", "entry": "pay", "$id": "p-1"})
            first = [v2(ws), v2(ws)]
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            send(ws, "_HELLO", {"protocol": 2, "versions": {}})
            assert v2(ws)["type"] == "_HELLO"
            assert v2(ws)["type"] == "_SET:LEDGER"
            send(ws, "_ACTION:LEDGER", {"type": "ADD", "entry": "pay", "$id": "p-1"})
            again = v2(ws)
            send(ws, "_ACTION:LEDGER", {"type": "ADD", "entry": "rent", "$id": "p-2"})
            assert [v2(ws)["type"], v2(ws)["data"]] == [
                "_PATCH:LEDGER",
                {"id": "p-2", "ok": True, "result": 2},
            ]
    assert ledger.runs == 2 and ledger.entries == ["pay", "rent"]
    assert (
        again
        == first[-1]
        == {
            "type": "_ACTION_RESULT:LEDGER",
            "data": {"id": "p-1", "ok": True, "result": 1},
        }
    )


def test_protocol_1_ids_are_not_remembered() -> None:
    app, sessions = make_app(Ledger)
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        for _ in range(2):  # a reloaded page counting from 1 again
            send(ws, "_ACTION:LEDGER", {"type": "ADD", "entry": "x", "$id": 1})
            recv(ws)
            assert recv(ws)["type"] == "_ACTION_RESULT:LEDGER"
        assert sessions.last().objects["LEDGER"].runs == 2


def test_a_task_start_retried_does_not_start_it_twice_and_a_resume_shows_its_progress() -> None:
    app, sessions = make_app(Ledger, user_sessions=True)
    with TestClient(app) as tc:
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            opened(ws)
            send(ws, "_TASK_START:LEDGER", {"type": "JOB", "$id": "t-1"})
            assert v2(ws)["data"] == {"type": "JOB", "value": "halfway"}
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            opened(ws)
            # the running task's last progress comes with the state
            assert v2(ws) == {
                "type": "_TASK_PROGRESS:LEDGER",
                "data": {"type": "JOB", "value": "halfway"},
            }
            send(ws, "_TASK_START:LEDGER", {"type": "JOB", "$id": "t-1"})
            send(ws, "_PING", {"n": 1})
            assert v2(ws) == {"type": "_PONG", "data": {"n": 1}}  # no "already running" error
            ledger = sessions.last().objects["LEDGER"]
            ledger.gate.set()
            assert v2(ws)["type"] == "_TASK_DONE:LEDGER"


def test_a_task_that_ended_while_the_client_was_away_is_reported_done_on_resume() -> None:
    app, sessions = make_app(Ledger, user_sessions=True)
    with TestClient(app) as tc:
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            state = opened(ws)
            send(ws, "_TASK_START:LEDGER", {"type": "JOB", "$id": "t-1"})
            assert v2(ws)["data"] == {"type": "JOB", "value": "halfway"}
        session = sessions.last()
        assert tc.portal is not None
        tc.portal.call(session.objects["LEDGER"].gate.set)
        for _ in range(200):
            if not session.session._runs:
                break
            time.sleep(0.01)
        held = {"LEDGER": {"epoch": state["epoch"], "v": state["v"]}}
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            greet(ws, held)
            done = v2(ws)
            assert done["type"] == "_TASK_DONE:LEDGER"
            assert done["data"] == {"type": "JOB", "status": "completed", "result": None}
        with tc.websocket_connect("/ws?ws_sync=2") as ws:  # told once
            greet(ws, held)
            send(ws, "_PING", {"n": 2})
            assert v2(ws) == {"type": "_PONG", "data": {"n": 2}}


def test_a_write_resent_after_a_reconnect_is_applied_once() -> None:
    app, sessions = make_app(Ledger, user_sessions=True)
    with TestClient(app) as tc:
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            state = opened(ws)
            write = {
                "type": "_PATCH:LEDGER",
                "data": [{"op": "add", "path": "/entries/-", "value": "once"}],
                "v": 0,
                "epoch": state["epoch"],
                "$id": "w-1",
            }
            ws.send_text(json.dumps(write))
            ack = v2(ws)
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            resumed = opened(ws, {"LEDGER": {"epoch": state["epoch"], "v": 0}})
            assert resumed == ack  # the resume carries the commit with its ack
            ws.send_text(json.dumps(write))  # resent anyway
            assert v2(ws) == ack  # answered with the same commit
        assert sessions.last().objects["LEDGER"].entries == ["once"]


def test_versioned_tabs_of_one_session_all_stay_live() -> None:
    app, sessions = make_app(Ledger, user_sessions=True)
    with (
        TestClient(app) as tc,
        tc.websocket_connect("/ws?ws_sync=2") as one,
        tc.websocket_connect("/ws?ws_sync=2") as two,
    ):
        opened(one)
        opened(two)  # the same ids: the same session, and no takeover
        assert len(sessions.built) == 1
        send(one, "_ACTION:LEDGER", {"type": "ADD", "entry": "x", "$id": "a"})
        assert v2(one)["type"] == "_PATCH:LEDGER"
        assert v2(one)["type"] == "_ACTION_RESULT:LEDGER"  # the answer to the caller
        assert v2(two)["type"] == "_PATCH:LEDGER"  # every tab gets every patch
        send(two, "_PING", None)
        assert v2(two) == {"type": "_PONG", "data": None}
        assert len(sessions.last().session.connections) == 2


def test_an_unversioned_connection_takes_over_as_upstream_does() -> None:
    app, _ = make_app(Ledger, user_sessions=True)
    with TestClient(app) as tc, tc.websocket_connect("/ws?ws_sync=2") as one:
        opened(one)
        with tc.websocket_connect("/ws") as two:
            assert recv(two)["type"] == "_REQUEST_USER_SESSION"
            send(two, "_USER_SESSION", {"user": "u", "session": "s"})
            assert recv(two)["type"] == "_SET:LEDGER"
            assert v2(one)["type"] == "_DISCONNECT"


def test_tabs_takeover_closes_even_versioned_tabs() -> None:
    app, _ = make_app(Ledger, user_sessions=True, tabs="takeover")
    with TestClient(app) as tc, tc.websocket_connect("/ws?ws_sync=2") as one:
        opened(one)
        with tc.websocket_connect("/ws?ws_sync=2") as two:
            opened(two)
            assert v2(one)["type"] == "_DISCONNECT"
