"""The user-session handshake and the session registry: resume, id validation,
timeouts, early frames, idle expiry, the cap on sessions."""

import asyncio
from typing import Any

import pytest
from session_helpers import Notes, error, exchange, make_app, recv, recv_raw, send
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from ws_sync import Session, get_user_session
from ws_sync.limits import Limits
from ws_sync.registry import SessionRegistry, valid_id

NOTES0 = {"title": "My Notes", "notes": [], "items": [], "total_length": 0}
REQUEST = {"type": "_REQUEST_USER_SESSION", "data": None}


def hello(ws: Any, user: str = "u1", session: str = "s1") -> None:
    assert recv(ws) == REQUEST
    send(ws, "_USER_SESSION", {"user": user, "session": session})


def registry_app(**options: Any) -> tuple[Starlette, Any]:
    options.setdefault("limits", Limits(handshake_timeout=2.0, close_timeout=1.0))
    return make_app(Notes, user_sessions=True, **options)


def test_handshake_then_state():
    app, sessions = registry_app()
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        hello(ws)
        assert recv(ws) == {"type": "_SET:NOTES", "data": NOTES0}
        assert len(sessions.built) == 1


def test_same_ids_resume_the_session_and_its_objects():
    app, sessions = registry_app()
    with TestClient(app) as tc:
        with tc.websocket_connect("/ws") as ws:
            hello(ws)
            recv(ws)
            exchange(ws, "_ACTION:NOTES", {"type": "ADD_NOTE", "note": "kept"})
        with tc.websocket_connect("/ws") as ws:
            hello(ws)
            state = {"title": "My Notes", "notes": ["kept"], "items": [], "total_length": 4}
            assert recv(ws) == {"type": "_SET:NOTES", "data": state}
        with tc.websocket_connect("/ws") as ws:
            hello(ws, "u1", "s2")  # a new tab: a new session
            assert recv(ws) == {"type": "_SET:NOTES", "data": NOTES0}
        assert len(sessions.built) == 2
        assert sessions.built[0].state.log == ["connect", "disconnect", "connect", "disconnect"]


def test_same_ids_at_once_take_over():
    app, sessions = registry_app()
    with TestClient(app) as tc, tc.websocket_connect("/ws") as a:
        hello(a)
        recv(a)
        with tc.websocket_connect("/ws") as b:
            hello(b)
            assert recv(b)["type"] == "_SET:NOTES"
            assert recv(a)["type"] == "_DISCONNECT"
            assert recv_raw(a)["type"] == "websocket.close"
            exchange(b, "_ACTION:NOTES", {"type": "RENAME", "new_title": "b"})
            assert sessions.built[0].objects["NOTES"].title == "b"
            assert len(sessions.built) == 1


@pytest.mark.parametrize(
    "data",
    [
        None,
        "u1",
        {"user": "u1"},
        {"user": "", "session": "s"},
        {"user": "u1", "session": 5},
        {"user": "u" * 129, "session": "s"},
        {"user": "../../etc", "session": "s"},
        {"user": "<script>", "session": "s"},
        {"user": "a b", "session": "s"},
        {"user": "u1", "session": "s\n"},
    ],
)
def test_invalid_ids_are_refused(data):
    app, sessions = registry_app()
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        assert recv(ws) == REQUEST
        send(ws, "_USER_SESSION", data)
        frame = recv(ws)
        assert frame["type"] == "_ERROR" and frame["data"]["event"] == "_USER_SESSION"
        assert recv_raw(ws) == {
            "type": "websocket.close",
            "code": 1008,
            "reason": "handshake failed",
        }
        assert sessions.built == []


def test_ids_the_js_client_makes_are_valid():
    assert valid_id("0b0c2f4e-8d2a-4f7e-9a51-2b8f0e6c1d3a")
    assert valid_id("9f86d081884c7d659a2feaa0c55ad015")
    assert valid_id("alice@example.com")
    assert not valid_id("") and not valid_id(None) and not valid_id("x" * 129)


def test_no_answer_in_time_closes_the_connection():
    app, sessions = registry_app(limits=Limits(handshake_timeout=0.1, close_timeout=1.0))
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        assert recv(ws) == REQUEST
        assert recv(ws) == error("_USER_SESSION", "no _USER_SESSION in time")
        assert recv_raw(ws)["code"] == 1008
        assert sessions.built == []


def test_frames_sent_before_the_answer_are_handled_after_it():
    app, sessions = registry_app()
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        assert recv(ws) == REQUEST
        send(ws, "_GET:NOTES", {})
        send(ws, "_ACTION:NOTES", {"type": "ADD_NOTE", "note": "early", "$id": 1})
        ws.send_text("garbage")
        send(ws, "_USER_SESSION", {"user": "u", "session": "s"})
        assert recv(ws) == {"type": "_SET:NOTES", "data": NOTES0}  # on connect
        assert recv(ws) == {"type": "_SET:NOTES", "data": NOTES0}  # the early _GET
        assert recv(ws)["type"] == "_PATCH:NOTES"
        assert recv(ws) == {
            "type": "_ACTION_RESULT:NOTES",
            "data": {"id": 1, "ok": True, "result": 1},
        }
        assert recv(ws)["data"]["message"] == "frame is not valid JSON"
        assert sessions.last().objects["NOTES"].notes == ["early"]


def test_too_many_frames_before_the_answer():
    app, sessions = registry_app(limits=Limits(handshake_timeout=2.0, rate=None))
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        assert recv(ws) == REQUEST
        for _ in range(65):
            send(ws, "_GET:NOTES", {})
        assert recv(ws) == error("_USER_SESSION", "too many frames before _USER_SESSION")
        assert recv_raw(ws)["code"] == 1008
        assert sessions.built == []


def test_idle_sessions_expire_after_the_ttl():
    app, sessions = registry_app(session_ttl=0.05)
    with TestClient(app) as tc:
        with tc.websocket_connect("/ws") as ws:
            hello(ws)
            recv(ws)
            exchange(ws, "_ACTION:NOTES", {"type": "ADD_NOTE", "note": "gone soon"})
        first = sessions.built[0]
        assert first.state.terminated.wait(5)
        assert first.session.closed and list(first.session.syncs) == []
        with tc.websocket_connect("/ws") as ws:
            hello(ws)
            assert recv(ws) == {"type": "_SET:NOTES", "data": NOTES0}  # a fresh session
        assert len(sessions.built) == 2


def test_a_full_registry_evicts_the_oldest_idle_session_or_refuses():
    app, sessions = registry_app(max_sessions=2)
    with TestClient(app) as tc:
        for sid in ("s1", "s2"):
            with tc.websocket_connect("/ws") as ws:
                hello(ws, "u", sid)
                recv(ws)
        with tc.websocket_connect("/ws") as ws:
            hello(ws, "u", "s3")
            recv(ws)
            assert sessions.built[0].state.terminated.wait(5)  # s1 was the oldest idle
            assert not sessions.built[1].state.terminated.is_set()
            with tc.websocket_connect("/ws") as ws2:
                hello(ws2, "u", "s2")  # resumes s2: both kept sessions now connected
                recv(ws2)
                with tc.websocket_connect("/ws") as ws3:
                    hello(ws3, "u", "s4")
                    assert recv(ws3) == error("_USER_SESSION", "2 sessions are in use")
                    assert recv_raw(ws3)["code"] == 1013
        assert len(sessions.built) == 3


def test_tasks_run_on_while_the_client_is_away():
    app, sessions = registry_app()
    with TestClient(app) as tc:
        with tc.websocket_connect("/ws") as ws:
            hello(ws)
            recv(ws)
        notes = sessions.last().objects["NOTES"]
        session = sessions.last().session

        async def start_and_finish_while_away() -> None:
            from ws_sync import tasks
            from ws_sync.remote import remote_table

            method = remote_table(Notes).find("task", "PROCESS_BATCH")
            run = tasks.start(session, notes.sync, method, [], {"items": ["a"]})
            notes.notes.append("done while away")
            await run.task

        tc.portal.call(start_and_finish_while_away)
        with tc.websocket_connect("/ws") as ws:
            hello(ws)
            assert recv(ws)["data"]["notes"] == ["done while away"]


# --------------------------------------------------------------------------- #
# the registry on its own


async def test_concurrent_opens_of_one_id_make_one_session():
    registry = SessionRegistry()
    made: list[Session] = []
    entered, gate = asyncio.Event(), asyncio.Event()

    async def create() -> Session:
        entered.set()
        await gate.wait()
        made.append(Session())
        return made[-1]

    async def open_gate() -> None:
        gate.set()

    first = asyncio.create_task(registry.open(("u", "s"), create))
    await entered.wait()  # the first open is making the session
    # tasks start in order: the second open waits for the first before the gate opens
    second, _ = await asyncio.gather(registry.open(("u", "s"), create), open_gate())
    assert await first is second and made == [second] and len(registry) == 1


async def test_resuming_cancels_the_expiry():
    registry = SessionRegistry(ttl=1000)

    async def create() -> Session:
        return Session()

    session = await registry.open(("u", "s"), create)
    registry.release(("u", "s"), session)
    entry = registry._entries[("u", "s")]
    timer = entry.expiry
    assert timer is not None and not timer.cancelled()
    assert await registry.open(("u", "s"), create) is session
    assert timer.cancelled() and entry.expiry is None
    await registry.close()
    assert session.closed and len(registry) == 0


async def test_a_failed_create_leaves_no_entry():
    registry = SessionRegistry()

    async def create() -> Session:
        raise RuntimeError("factory failed")

    with pytest.raises(RuntimeError):
        await registry.open(("u", "s"), create)
    assert len(registry) == 0 and registry._creating == {}


def test_get_user_session_for_a_hand_written_endpoint():
    seen: list[Any] = []

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        user, session_id = await get_user_session(ws)
        seen.append((user, session_id))
        if user is None:
            return
        session = Session()
        notes = Notes()  # noqa: F841
        await session.handle_connection(ws)

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    with TestClient(app) as tc:
        with tc.websocket_connect("/ws") as ws:
            assert recv(ws) == REQUEST
            send(ws, "_GET:NOTES")  # early: handled once the session has the connection
            send(ws, "_USER_SESSION", {"user": "u", "session": "s"})
            assert recv(ws)["type"] == "_SET:NOTES"
            assert recv(ws)["type"] == "_SET:NOTES"
        with tc.websocket_connect("/ws") as ws:
            assert recv(ws) == REQUEST
            send(ws, "_USER_SESSION", {"user": "u"})
            assert recv(ws)["type"] == "_ERROR"
            assert recv_raw(ws)["code"] == 1008
    assert seen == [("u", "s"), (None, None)]
