"""The integration helper: a whole app in a few lines, the Origin allowlist,
the packaged client route."""

from typing import Any

import pytest
from fastapi import FastAPI
from session_helpers import Counter, Notes, Recorder, exchange, recv, recv_raw, send
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from ws_sync import SessionRegistry, client_route, session_context, sync_endpoint
from ws_sync.endpoint import STATIC_DIR
from ws_sync.origin import origin_allowed

NOTES0 = {"title": "My Notes", "notes": [], "items": [], "total_length": 0}


def test_a_whole_app_in_a_few_lines():
    app = Starlette(routes=[sync_endpoint(Notes, user_sessions=False), client_route()])

    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        assert recv(ws) == {"type": "_SET:NOTES", "data": NOTES0}
        assert exchange(ws, "_ACTION:NOTES", {"type": "RENAME", "newTitle": "x"}) == [
            {"type": "_PATCH:NOTES", "data": [{"op": "replace", "path": "/title", "value": "x"}]}
        ]
        script = tc.get("/ws-sync/ws-sync.js")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        assert script.text == (STATIC_DIR / "ws-sync.js").read_text()


def test_fastapi_with_user_sessions():
    app = FastAPI()
    route = sync_endpoint(lambda: [Notes(), Counter()], path="/sync")
    app.router.routes.append(route)
    with TestClient(app) as tc:
        with tc.websocket_connect("/sync") as ws:
            assert recv(ws) == {"type": "_REQUEST_USER_SESSION", "data": None}
            send(ws, "_USER_SESSION", {"user": "u", "session": "s"})
            assert [recv(ws)["type"], recv(ws)["type"]] == ["_SET:NOTES", "_SET:COUNTER"]
            exchange(ws, "_ACTION:COUNTER", {"type": "INCREMENT"})
        with tc.websocket_connect("/sync") as ws:
            recv(ws)
            send(ws, "_USER_SESSION", {"user": "u", "session": "s"})
            assert recv(ws)["type"] == "_SET:NOTES"
            assert recv(ws) == {"type": "_SET:COUNTER", "data": {"count": 1, "label": "fixed"}}
    assert isinstance(route.registry, SessionRegistry) and len(route.registry) == 1


def test_async_factory_runs_in_the_session():
    seen: list[Any] = []

    async def factory() -> Notes:
        seen.append(session_context.get())
        return Notes()

    registry = SessionRegistry(ttl=60)
    app = Starlette(routes=[sync_endpoint(factory, user_sessions=registry)])
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        send(ws, "_USER_SESSION", {"user": "u", "session": "s"})
        assert recv(ws)["type"] == "_SET:NOTES"
        assert registry.get(("u", "s")) is seen[0]


def test_without_user_sessions_each_connection_is_a_new_session_closed_after():
    made: list[Any] = []

    def factory() -> Notes:
        session = session_context.get()
        session.state = Recorder()
        made.append(session)
        return Notes()

    app = Starlette(routes=[sync_endpoint(factory, user_sessions=False)])
    with TestClient(app) as tc:
        for _ in range(2):
            with tc.websocket_connect("/ws") as ws:
                assert recv(ws) == {"type": "_SET:NOTES", "data": NOTES0}  # fresh each time
                exchange(ws, "_ACTION:NOTES", {"type": "ADD_NOTE", "note": "n"})
            assert made[-1].state.terminated.wait(5)
    assert len(made) == 2 and made[0] is not made[1]
    assert all(session.closed for session in made)


# --------------------------------------------------------------------------- #
# Origin


@pytest.mark.parametrize(
    ("allowed", "origin", "ok"),
    [
        (None, None, True),  # not a browser
        (None, "http://testserver", True),  # same origin
        (None, "https://testserver", True),
        (None, "http://evil.example", False),
        (None, "http://testserver.evil.example", False),
        (None, "null", False),
        (["https://app.example.com"], "https://app.example.com", True),
        (["https://app.example.com/"], "HTTPS://APP.EXAMPLE.COM", True),
        (["https://app.example.com"], "http://app.example.com", False),
        (["https://app.example.com"], "http://testserver", False),
        (["*"], "http://anything.example", True),
    ],
)
def test_origin_allowlist(allowed, origin, ok):
    app = Starlette(routes=[sync_endpoint(Notes, user_sessions=False, allowed_origins=allowed)])
    headers = {"origin": origin} if origin else {}
    with TestClient(app) as tc:
        if ok:
            with tc.websocket_connect("/ws", headers=headers) as ws:
                assert recv(ws)["type"] == "_SET:NOTES"
        else:
            with (
                pytest.raises(WebSocketDisconnect) as e,
                tc.websocket_connect("/ws", headers=headers),
            ):
                pass
            assert e.value.code == 1008


def test_origin_allowed_compares_with_the_host_header():
    class Conn:
        def __init__(self, headers: dict[str, str]) -> None:
            self.headers = headers

    assert origin_allowed(Conn({"origin": "http://a.example:8000", "host": "a.example:8000"}))  # type: ignore[arg-type]
    assert not origin_allowed(Conn({"origin": "http://a.example:9000", "host": "a.example:8000"}))  # type: ignore[arg-type]
    assert not origin_allowed(Conn({"origin": "ftp://a.example", "host": "a.example"}))  # type: ignore[arg-type]
    assert not origin_allowed(Conn({"origin": "http://a.example"}))  # type: ignore[arg-type]


def test_client_route_serves_every_packaged_file_and_nothing_else():
    app = Starlette(routes=[client_route("/static-client")])
    with TestClient(app) as tc:
        for path in sorted(STATIC_DIR.iterdir()):
            if path.is_file():
                response = tc.get(f"/static-client/{path.name}")
                assert response.status_code == 200
                assert response.content == path.read_bytes()
        assert tc.get("/static-client/nope.js").status_code == 404
        assert tc.get("/static-client/../endpoint.py").status_code == 404


@pytest.mark.parametrize("user_sessions", [False, True])
def test_a_failing_factory_is_logged_and_the_client_told(user_sessions, caplog):
    def factory() -> Any:
        raise RuntimeError("database down: secret details")

    app = Starlette(routes=[sync_endpoint(factory, user_sessions=user_sessions)])
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        if user_sessions:
            recv(ws)
            send(ws, "_USER_SESSION", {"user": "u", "session": "s"})
        frame = recv(ws)
        assert frame == {
            "type": "_ERROR",
            "data": {
                "event": "_INVALID",
                "message": "the server could not open a session",
                "errors": [],
            },
        }
        assert recv_raw(ws) == {"type": "websocket.close", "code": 1011, "reason": "internal error"}
    assert "session factory failed" in caplog.text and "secret details" in caplog.text
