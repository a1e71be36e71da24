"""What a client is told about a failure, with and without `expose_errors`."""

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from session_helpers import Notes, error, exchange, make_app, recv, send
from starlette.testclient import TestClient

from ws_sync import remote_task, sync_only
from ws_sync.actions import ParamsError
from ws_sync.errors import HIDDEN, TaskError, describe, errors_of
from ws_sync.validation import ClientWriteError


class Strict(BaseModel):
    n: int


def _validation_error() -> ValidationError:
    try:
        Strict(n="x")  # type: ignore[arg-type]
    except ValidationError as e:
        return e
    raise AssertionError("no error")


def test_input_errors_are_always_described() -> None:
    params = ParamsError("invalid params for action 'A'", [{"loc": ["n"], "msg": "bad"}])
    write = ClientWriteError("_SET rejected: 1 error(s)", [{"path": "/x", "msg": "bad"}])
    for expose in (True, False):
        assert describe(params, expose) == "invalid params for action 'A'"
        assert describe(write, expose) == "_SET rejected: 1 error(s)"
        assert describe(_validation_error(), expose) == "validation failed: 1 error(s)"
        assert describe(TaskError("task 'T' is already running"), expose) == (
            "task 'T' is already running"
        )
    assert errors_of(params) == [{"loc": ["n"], "msg": "bad"}]
    assert errors_of(_validation_error())[0]["loc"] == ["n"]
    assert errors_of(RuntimeError("x")) == []


def test_app_errors_are_hidden_unless_exposed() -> None:
    assert describe(RuntimeError("db password is hunter2")) == "db password is hunter2"
    assert describe(RuntimeError()) == "RuntimeError"
    assert describe(RuntimeError("db password is hunter2"), expose=False) == HIDDEN


class Jobs:
    @sync_only("JOBS", done=...)
    def __init__(self) -> None:
        self.done = 0

    @remote_task("FAIL")
    async def fail(self) -> None:
        raise ValueError("secret detail")


@pytest.fixture
def hidden() -> Any:
    app, _ = make_app(Notes, Jobs)  # hiding is the default
    with TestClient(app) as tc, tc.websocket_connect("/ws") as socket:
        assert recv(socket)["type"] == "_SET:NOTES"
        assert recv(socket)["type"] == "_SET:JOBS"
        yield socket


def test_a_failing_action_tells_the_client_nothing_more(hidden: Any, caplog: Any) -> None:
    frames = exchange(hidden, "_ACTION:NOTES", {"type": "FAIL", "$id": "f"})
    ref = frames[0]["data"]["ref"]
    assert len(ref) == 8 and int(ref, 16) >= 0
    assert frames == [
        error("_ACTION:NOTES", HIDDEN, id="f", ref=ref),
        {
            "type": "_ACTION_RESULT:NOTES",
            "data": {"id": "f", "ok": False, "error": {"message": HIDDEN, "ref": ref}},
        },
    ]
    assert "boom" not in str(frames)
    # the server log has the details under the same reference
    assert "boom" in caplog.text and f"ref {ref}" in caplog.text
    # the client's own mistakes are still explained
    frames = exchange(hidden, "_ACTION:NOTES", {"type": "NOPE"})
    assert frames == [error("_ACTION:NOTES", "unknown action 'NOPE'")]


def test_a_failing_task_reports_a_hidden_error(hidden: Any, caplog: Any) -> None:
    send(hidden, "_TASK_START:JOBS", {"type": "FAIL"})
    while (frame := recv(hidden))["type"] != "_TASK_DONE:JOBS":
        pass
    assert frame["data"]["status"] == "failed"
    assert frame["data"]["error"] == HIDDEN
    assert f"ref {frame['data']['ref']}" in caplog.text
    assert "secret detail" in caplog.text


def test_expose_errors_shows_the_text() -> None:
    app, _ = make_app(Notes, expose_errors=True)
    with TestClient(app) as tc, tc.websocket_connect("/ws") as socket:
        recv(socket)
        frames = exchange(socket, "_ACTION:NOTES", {"type": "FAIL", "$id": 1})
        assert frames[0]["data"]["message"] == "boom"
        assert frames[1]["data"]["error"]["message"] == "boom"
