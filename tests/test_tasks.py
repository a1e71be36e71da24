"""Tasks: progress streaming, results, failures, both ways of cancelling, one run
per key per object, running_tasks exposure, and the life of a task across
disconnects and session close."""

import asyncio
import threading
from typing import Any

import pytest
from session_helpers import Notes, error, exchange, make_app, recv, send
from starlette.testclient import TestClient, WebSocketTestSession
from test_spec_examples import TaskManager

from ws_sync import remote_action, remote_task, remote_task_cancel, sync_only


class Jobs:
    @sync_only("JOBS", log=..., _expose_running_tasks=True)
    def __init__(self) -> None:
        self.log: list[str] = []
        self.stop = asyncio.Event()
        self.cancelled = threading.Event()
        self.canceller_self: Any = None
        self.threads: list[int] = []

    @remote_task("COUNT")
    async def count(self, upto: int) -> Any:
        for i in range(upto):
            yield {"step": i}

    @remote_task("ADD")
    async def add(self, a: int, b: int = 1) -> int:
        return a + b

    @remote_task("FAIL")
    async def fail(self) -> None:
        raise ValueError("bad input")

    @remote_task("FOREVER")
    async def forever(self) -> Any:
        try:
            yield "started"
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    @remote_task("LOOP")
    async def loop(self) -> Any:
        yield "started"
        await self.stop.wait()
        self.log.append("loop stopped")
        await self.sync()

    @loop.cancel
    async def stop_loop(self) -> None:
        self.canceller_self = self
        self.stop.set()

    @remote_task
    async def watch(self) -> Any:
        yield "watching"
        await self.stop.wait()

    @remote_task_cancel("watch")
    def stop_watch(self) -> None:  # a plain def canceller: threadpool
        self.threads.append(threading.get_ident())
        asyncio.run_coroutine_threadsafe(self._set_stop(), self.loop_ref)

    async def _set_stop(self) -> None:
        self.stop.set()

    @remote_action("REMEMBER_LOOP")
    async def remember_loop(self) -> None:
        self.loop_ref = asyncio.get_running_loop()

    @remote_task("SYNC_GEN")
    def sync_gen(self, n: int) -> Any:
        for i in range(n):
            self.threads.append(threading.get_ident())
            yield i

    @remote_task("SYNC_FN")
    def sync_fn(self) -> int:
        self.threads.append(threading.get_ident())
        return 42

    @remote_action("PING")
    async def ping(self) -> str:
        return "pong"


def until(ws: WebSocketTestSession, frame_type: str) -> list[dict[str, Any]]:
    """Frames up to and including the first of `frame_type`."""
    frames = []
    while True:
        frames.append(recv(ws))
        if frames[-1]["type"] == frame_type:
            return frames


def running(names: list[str]) -> dict[str, Any]:
    return {
        "type": "_PATCH:JOBS",
        "data": [{"op": "add", "path": "/running_tasks", "value": names}],
    }


def progress(task: str, value: Any) -> dict[str, Any]:
    return {"type": "_TASK_PROGRESS:JOBS", "data": {"type": task, "value": value}}


def done(task: str, status: str, **rest: Any) -> dict[str, Any]:
    return {"type": "_TASK_DONE:JOBS", "data": {"type": task, "status": status, **rest}}


@pytest.fixture
def app():
    return make_app(Jobs, expose_errors=True)


@pytest.fixture
def ws(app):
    asgi, sessions = app
    with TestClient(asgi) as tc, tc.websocket_connect("/ws") as socket:
        assert recv(socket) == {"type": "_SET:JOBS", "data": {"log": [], "running_tasks": []}}
        socket.jobs = sessions.last().objects["JOBS"]  # type: ignore[attr-defined]
        socket.built = sessions.last()  # type: ignore[attr-defined]
        yield socket


def test_async_generator_streams_progress_then_completes(ws):
    send(ws, "_TASK_START:JOBS", {"type": "COUNT", "upto": 3})
    assert until(ws, "_TASK_DONE:JOBS") == [
        running(["COUNT"]),
        progress("COUNT", {"step": 0}),
        progress("COUNT", {"step": 1}),
        progress("COUNT", {"step": 2}),
        running([]),
        done("COUNT", "completed", result=None),
    ]


def test_coroutine_task_reports_its_result(ws):
    send(ws, "_TASK_START:JOBS", {"type": "ADD", "$args": [2, "3"]})
    assert until(ws, "_TASK_DONE:JOBS") == [
        running(["ADD"]),
        running([]),
        done("ADD", "completed", result=5),
    ]


def test_failed_task_is_logged_and_reported(ws, caplog):
    send(ws, "_TASK_START:JOBS", {"type": "FAIL"})
    frame = until(ws, "_TASK_DONE:JOBS")[-1]
    ref = frame["data"]["ref"]
    assert frame == done("FAIL", "failed", error="bad input", ref=ref)
    assert f"task 'FAIL' failed [ref {ref}]" in caplog.text
    assert exchange(ws, "_ACTION:JOBS", {"type": "PING", "$id": 1})[-1]["data"]["result"] == "pong"


def test_task_without_canceller_is_cancelled_hard(ws):
    send(ws, "_TASK_START:JOBS", {"type": "FOREVER"})
    assert until(ws, "_TASK_PROGRESS:JOBS") == [
        running(["FOREVER"]),
        progress("FOREVER", "started"),
    ]
    send(ws, "_TASK_CANCEL:JOBS", {"type": "FOREVER"})
    assert until(ws, "_TASK_DONE:JOBS") == [running([]), done("FOREVER", "cancelled")]
    assert ws.jobs.cancelled.is_set()


def test_cancel_shorthand_runs_the_canceller_bound_to_the_object(ws):
    send(ws, "_TASK_START:JOBS", {"type": "LOOP"})
    assert until(ws, "_TASK_PROGRESS:JOBS")[-1] == progress("LOOP", "started")
    send(ws, "_TASK_CANCEL:JOBS", {"type": "LOOP"})
    assert until(ws, "_TASK_DONE:JOBS") == [
        {"type": "_PATCH:JOBS", "data": [{"op": "add", "path": "/log/0", "value": "loop stopped"}]},
        running([]),
        done("LOOP", "cancelled"),
    ]
    assert ws.jobs.canceller_self is ws.jobs


def test_explicit_remote_task_cancel_with_a_plain_def(ws):
    exchange(ws, "_ACTION:JOBS", {"type": "REMEMBER_LOOP"})
    send(ws, "_TASK_START:JOBS", {"type": "WATCH"})  # bare key "watch", JS spelling
    assert until(ws, "_TASK_PROGRESS:JOBS")[-1] == progress("watch", "watching")
    send(ws, "_TASK_CANCEL:JOBS", {"type": "watch"})
    assert until(ws, "_TASK_DONE:JOBS") == [running([]), done("watch", "cancelled")]
    assert ws.jobs.threads and threading.get_ident() not in ws.jobs.threads


def test_cancelling_a_task_that_is_not_running_is_a_no_op(ws):
    assert exchange(ws, "_TASK_CANCEL:JOBS", {"type": "FOREVER"}) == []


def test_at_most_one_run_per_task_key(ws):
    send(ws, "_TASK_START:JOBS", {"type": "FOREVER"})
    until(ws, "_TASK_PROGRESS:JOBS")
    assert exchange(ws, "_TASK_START:JOBS", {"type": "FOREVER"}) == [
        error("_TASK_START:JOBS", "task 'FOREVER' is already running")
    ]
    send(ws, "_TASK_CANCEL:JOBS", {"type": "FOREVER"})
    until(ws, "_TASK_DONE:JOBS")
    send(ws, "_TASK_START:JOBS", {"type": "FOREVER"})
    assert until(ws, "_TASK_PROGRESS:JOBS") == [
        running(["FOREVER"]),
        progress("FOREVER", "started"),
    ]


def test_tasks_run_concurrently_with_each_other_and_with_actions(ws):
    send(ws, "_TASK_START:JOBS", {"type": "FOREVER"})
    until(ws, "_TASK_PROGRESS:JOBS")
    send(ws, "_TASK_START:JOBS", {"type": "LOOP"})
    assert until(ws, "_TASK_PROGRESS:JOBS") == [
        running(["FOREVER", "LOOP"]),
        progress("LOOP", "started"),
    ]
    assert exchange(ws, "_ACTION:JOBS", {"type": "PING", "$id": 1}) == [
        {"type": "_ACTION_RESULT:JOBS", "data": {"id": 1, "ok": True, "result": "pong"}}
    ]
    assert set(ws.jobs.sync.running_tasks) == {"FOREVER", "LOOP"}


def test_sync_generator_and_sync_function_tasks_run_in_the_threadpool(ws):
    send(ws, "_TASK_START:JOBS", {"type": "SYNC_GEN", "n": 2})
    assert until(ws, "_TASK_DONE:JOBS") == [
        running(["SYNC_GEN"]),
        progress("SYNC_GEN", 0),
        progress("SYNC_GEN", 1),
        running([]),
        done("SYNC_GEN", "completed", result=None),
    ]
    send(ws, "_TASK_START:JOBS", {"type": "SYNC_FN"})
    assert until(ws, "_TASK_DONE:JOBS")[-1] == done("SYNC_FN", "completed", result=42)
    assert len(ws.jobs.threads) == 3
    assert threading.get_ident() not in ws.jobs.threads


def test_tasks_are_cancelled_when_the_session_closes(app):
    asgi, sessions = app
    with TestClient(asgi) as tc:
        with tc.websocket_connect("/ws") as ws:
            recv(ws)
            send(ws, "_TASK_START:JOBS", {"type": "FOREVER"})
            until(ws, "_TASK_PROGRESS:JOBS")
        # without user sessions the session ends with its connection
        built = sessions.last()
        assert built.state.terminated.wait(5)
        assert built.objects["JOBS"].cancelled.is_set()
        assert built.objects["JOBS"].sync.running_tasks == []
        assert built.session._runs == set()


def test_task_keys_are_per_object_and_shared_objects_share_them():
    shared = {}

    def factory() -> list[Any]:
        from ws_sync import session_context

        session = session_context.get()
        if "jobs" not in shared:
            shared["jobs"] = Jobs()  # attached to the first session
        else:
            session.attach(shared["jobs"])
        return [shared["jobs"], Notes()]

    from starlette.applications import Starlette

    from ws_sync.endpoint import sync_endpoint

    app = Starlette(routes=[sync_endpoint(factory, user_sessions=False)])
    with TestClient(app) as tc, tc.websocket_connect("/ws") as a:
        assert {recv(a)["type"], recv(a)["type"]} == {"_SET:JOBS", "_SET:NOTES"}
        with tc.websocket_connect("/ws") as b:
            assert {recv(b)["type"], recv(b)["type"]} == {"_SET:JOBS", "_SET:NOTES"}
            send(a, "_TASK_START:JOBS", {"type": "FOREVER"})
            assert until(a, "_TASK_PROGRESS:JOBS")[-1] == progress("FOREVER", "started")
            # b sees the shared object's task too, and cannot start a second run
            assert until(b, "_TASK_PROGRESS:JOBS") == [
                running(["FOREVER"]),
                progress("FOREVER", "started"),
            ]
            assert exchange(b, "_TASK_START:JOBS", {"type": "FOREVER"}) == [
                error("_TASK_START:JOBS", "task 'FOREVER' is already running")
            ]
            # each session's own Notes runs its own PROCESS_BATCH
            send(a, "_TASK_START:NOTES", {"type": "PROCESS_BATCH", "items": ["x"]})
            send(b, "_TASK_START:NOTES", {"type": "PROCESS_BATCH", "items": ["y"]})
            assert until(a, "_TASK_DONE:NOTES")[-2:] == [
                {
                    "type": "_TASK_PROGRESS:NOTES",
                    "data": {"type": "PROCESS_BATCH", "value": "Processed x"},
                },
                {
                    "type": "_TASK_DONE:NOTES",
                    "data": {"type": "PROCESS_BATCH", "status": "completed", "result": None},
                },
            ]
            assert until(b, "_TASK_DONE:NOTES")[-2]["data"]["value"] == "Processed y"
            # anyone subscribed may cancel the shared task; both hear of it
            send(b, "_TASK_CANCEL:JOBS", {"type": "FOREVER"})
            assert until(a, "_TASK_DONE:JOBS")[-1] == done("FOREVER", "cancelled")
            assert until(b, "_TASK_DONE:JOBS")[-1] == done("FOREVER", "cancelled")


# --------------------------------------------------------------------------- #
# the README's "Actions and Tasks" example (`TaskManager` as the spec writes
# it, defined once in test_spec_examples), over the wire


def test_readme_actions_and_tasks_example():
    app, sessions = make_app(TaskManager)
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        assert recv(ws) == {"type": "_SET:TASKS", "data": {"tasks": []}}
        added = {"title": "write docs", "done": False}
        assert exchange(
            ws, "_ACTION:TASKS", {"type": "CREATE_TASK", "task_data": {"title": "write docs"}}
        ) == [{"type": "_PATCH:TASKS", "data": [{"op": "add", "path": "/tasks/0", "value": added}]}]
        # the React client's createTask({title}) sends the members of the object
        assert exchange(
            ws, "_ACTION:TASKS", {"type": "CREATE_TASK", "title": "ship", "done": True}
        ) == [
            {
                "type": "_PATCH:TASKS",
                "data": [
                    {"op": "add", "path": "/tasks/1", "value": {"title": "ship", "done": True}}
                ],
            }
        ]
        frames = exchange(
            ws, "_ACTION:TASKS", {"type": "CREATE_TASK", "task_data": {"done": "maybe"}}
        )
        assert [e["loc"] for e in frames[0]["data"]["errors"]] == [
            ["task_data", "title"],
            ["task_data", "done"],
        ]
        assert len(sessions.last().objects["TASKS"].tasks) == 2

        send(ws, "_TASK_START:TASKS", {"type": "PROCESS_BATCH", "items": ["a", "b", "c"]})
        assert recv(ws) == {
            "type": "_TASK_PROGRESS:TASKS",
            "data": {"type": "PROCESS_BATCH", "value": "Processed a"},
        }
        send(ws, "_TASK_CANCEL:TASKS", {"type": "PROCESS_BATCH"})
        assert recv(ws) == {
            "type": "_TASK_DONE:TASKS",
            "data": {"type": "PROCESS_BATCH", "status": "cancelled"},
        }
