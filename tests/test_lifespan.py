"""Graceful shutdown: `ws_sync.lifespan` ends every session when the server stops.

The real thing first: an app under uvicorn in a subprocess, a client with a
long task, SIGTERM. Then the parts in process: the order where the lifespan
shutdown comes while clients are still connected, a task that will not stop,
and composing with the app's own lifespan (FastAPI)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import ExampleProcess, free_port, port_open, wait_until
from fastapi import FastAPI
from session_helpers import Notes, Recorder, recv, send, serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.testclient import TestClient
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ws_sync import (
    Session,
    SessionState,
    close_sessions,
    lifespan,
    remote_task,
    session_context,
    sync_endpoint,
    sync_only,
)
from ws_sync.lifespan import CLOSE_SERVICE_RESTART

TESTS = Path(__file__).parent
TIMEOUT = 10.0


# --------------------------------------------------------------------------- #
# the app run by uvicorn in a subprocess: every step it takes goes to a file


class Marks(SessionState):
    """Writes ``terminate`` to the marker file when the session ends."""

    def __init__(self, path: str) -> None:
        self.path = path

    def mark(self, what: str) -> None:
        with open(self.path, "a") as f:
            f.write(what + "\n")

    async def on_terminate(self) -> None:
        self.mark("terminate")


class Worker:
    @sync_only("WORKER", name=...)
    def __init__(self, marks: Marks) -> None:
        self.marks = marks
        self.name = "worker"

    @remote_task("LONG")
    async def long(self) -> AsyncIterator[str]:
        try:
            yield "started"
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.05)  # a finally that awaits, as a cleanup does
            self.marks.mark("finally")


def shutdown_app() -> Starlette:
    """``uvicorn --factory test_lifespan:shutdown_app``; markers go to the
    file named by ``WS_SYNC_MARKERS``, user sessions on unless
    ``WS_SYNC_USER_SESSIONS=0``."""
    path = os.environ["WS_SYNC_MARKERS"]

    def build() -> Worker:
        marks = Marks(path)
        session_context.get().state = marks
        return Worker(marks)

    user_sessions = os.environ.get("WS_SYNC_USER_SESSIONS", "1") == "1"
    endpoint = sync_endpoint(build, user_sessions=user_sessions, allowed_hosts=["127.0.0.1"])
    return Starlette(routes=[endpoint], lifespan=lifespan())


WS_IMPLEMENTATIONS = ["websockets", "websockets-sansio", "wsproto"]
"""uvicorn's WebSocket implementations (the test extra installs wsproto)."""


async def open_session(ws: ClientConnection) -> None:
    await frames_until(ws, "_REQUEST_USER_SESSION")
    await ws.send(json.dumps({"type": "_USER_SESSION", "data": {"user": "u", "session": "s"}}))


async def frames_until(ws: ClientConnection, event: str) -> None:
    async with asyncio.timeout(TIMEOUT):
        while json.loads(await ws.recv())["type"] != event:
            pass


@pytest.mark.parametrize("user_sessions", [True, False], ids=["user-sessions", "per-connection"])
@pytest.mark.parametrize("ws", WS_IMPLEMENTATIONS)
async def test_sigterm_ends_tasks_and_sessions_and_tells_clients_to_come_back(
    ws: str, user_sessions: bool, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.touch()
    log = tmp_path / "log"
    port = free_port()
    env = {
        **os.environ,
        "WS_SYNC_MARKERS": str(marks),
        "WS_SYNC_USER_SESSIONS": "1" if user_sessions else "0",
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        *(sys.executable, "-m", "uvicorn", "--factory", "test_lifespan:shutdown_app"),
        *("--app-dir", str(TESTS), "--host", "127.0.0.1", "--port", str(port), "--ws", ws),
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=TESTS.parent, env=env, stdout=out, stderr=out)
    try:
        wait_until(lambda: proc.poll() is not None or port_open(port), 20, "uvicorn to listen")
        assert proc.poll() is None, log.read_text()
        async with connect(f"ws://127.0.0.1:{port}/ws", proxy=None) as client:
            if user_sessions:
                await open_session(client)
            await frames_until(client, "_SET:WORKER")
            await client.send(json.dumps({"type": "_TASK_START:WORKER", "data": {"type": "LONG"}}))
            await frames_until(client, "_TASK_PROGRESS:WORKER")

            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(TIMEOUT):
                    while True:
                        frame = json.loads(await client.recv())
                        assert frame["type"] != "_DISCONNECT"  # it would stop the reconnects
        assert closed.value.rcvd is not None, "no close frame"
        assert closed.value.rcvd.code == CLOSE_SERVICE_RESTART
        returncode = await asyncio.to_thread(proc.wait, TIMEOUT)
        assert time.monotonic() - sent <= TIMEOUT
        # uvicorn raises the signal again once it has shut down
        assert returncode in (0, -signal.SIGTERM), log.read_text()
        assert marks.read_text().split() == ["finally", "terminate"], log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_the_notes_example_stops_within_seconds_with_a_task_running() -> None:
    """``python -m examples.notes`` as users run it: SIGTERM while its long
    PROCESS task runs; the page is told to come back and the process ends."""
    server = ExampleProcess("notes")
    server.start()
    try:
        proc = server.proc
        assert proc is not None
        async with connect(f"ws://127.0.0.1:{server.port}/ws", proxy=None) as client:
            await open_session(client)
            await frames_until(client, "_SET:NOTES")
            data = {"type": "PROCESS", "steps": 10_000}
            await client.send(json.dumps({"type": "_TASK_START:NOTES", "data": data}))
            await frames_until(client, "_TASK_PROGRESS:NOTES")
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(TIMEOUT):
                    while True:
                        await client.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == CLOSE_SERVICE_RESTART
        await asyncio.to_thread(proc.wait, TIMEOUT)
        assert time.monotonic() - sent <= TIMEOUT
        output = server.output()
        assert "Application shutdown complete" in output
        assert "Traceback" not in output and "ERROR" not in output, output
    finally:
        server.close()


# --------------------------------------------------------------------------- #
# in process


class Stubborn:
    """A task slow to stop when cancelled, and one that stops at once."""

    @sync_only("STUBBORN", ended=...)
    def __init__(self) -> None:
        self.ended: list[str] = []

    @remote_task("SLOW")
    async def slow(self) -> AsyncIterator[str]:
        try:
            yield "started"
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(2)  # a cleanup longer than the grace period
            self.ended.append("SLOW")

    @remote_task("POLITE")
    async def polite(self) -> AsyncIterator[str]:
        try:
            yield "started"
            await asyncio.sleep(3600)
        finally:
            self.ended.append("POLITE")


async def start_task(client: ClientConnection, key: str, task: str) -> None:
    await client.send(json.dumps({"type": f"_TASK_START:{key}", "data": {"type": task}}))
    async with asyncio.timeout(TIMEOUT):
        while True:
            frame = json.loads(await client.recv())
            if frame["type"] == f"_TASK_PROGRESS:{key}" and frame["data"]["type"] == task:
                return


async def test_a_shutdown_before_the_server_closes_the_sockets_closes_them_with_1012():
    """Servers that send the lifespan shutdown first leave the connections
    open: the sessions close them, with 1012 and no `_DISCONNECT`."""
    built: list[tuple[Session, Recorder, Stubborn]] = []

    def build() -> Stubborn:
        session, state, obj = session_context.get(), Recorder(), Stubborn()
        session.state = state
        built.append((session, state, obj))
        return obj

    app = Starlette(routes=[sync_endpoint(build, user_sessions=False)])
    async with serve(app) as url, connect(f"{url}/ws", proxy=None) as client:
        await frames_until(client, "_SET:STUBBORN")
        await start_task(client, "STUBBORN", "POLITE")
        await close_sessions(grace=1.0)
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(TIMEOUT):
                while True:
                    assert json.loads(await client.recv())["type"] != "_DISCONNECT"
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == CLOSE_SERVICE_RESTART
        [(session, state, obj)] = built
        assert session.closed
        assert obj.ended == ["POLITE"]
        assert state.log == ["connect", "disconnect", "terminate"]


async def test_a_task_slow_to_stop_does_not_hold_up_the_shutdown():
    registry_sessions: list[tuple[Session, Recorder, Stubborn]] = []

    def build() -> Stubborn:
        session, state, obj = session_context.get(), Recorder(), Stubborn()
        session.state = state
        registry_sessions.append((session, state, obj))
        return obj

    app = Starlette(routes=[sync_endpoint(build)])
    async with serve(app) as url, connect(f"{url}/ws", proxy=None) as client:
        await open_session(client)
        await frames_until(client, "_SET:STUBBORN")
        await start_task(client, "STUBBORN", "SLOW")
        await start_task(client, "STUBBORN", "POLITE")
        started = time.monotonic()
        await close_sessions(grace=0.3)
        assert time.monotonic() - started < 2.0
        [(session, state, obj)] = registry_sessions
        assert session.closed
        assert obj.ended == ["POLITE"]  # the polite one did end, the slow one not yet
        assert state.log[-1] == "terminate"  # and on_terminate ran all the same


def test_fastapi_with_its_own_lifespan_around_ours():
    """The app's own lifespan is entered first and left last: its state is the
    app's, and still there for `on_terminate`."""
    steps: list[str] = []

    @contextlib.asynccontextmanager
    async def own(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        steps.append("own startup")
        yield {"db": "pool"}
        steps.append("own shutdown")

    class Terminating(Recorder):
        async def on_terminate(self) -> None:
            await super().on_terminate()
            steps.append("on_terminate")

    def build() -> Notes:
        session_context.get().state = Terminating()
        return Notes()

    app = FastAPI(lifespan=lifespan(own))
    app.router.routes.append(sync_endpoint(build))

    @app.get("/db")
    def db(request: Request) -> str:  # the state the app's lifespan yielded
        return str(request.state.db)

    with TestClient(app) as tc:
        assert steps == ["own startup"]
        with tc.websocket_connect("/ws") as ws:
            assert recv(ws)["type"] == "_REQUEST_USER_SESSION"
            send(ws, "_USER_SESSION", {"user": "u", "session": "s"})
            assert recv(ws)["type"] == "_SET:NOTES"
        assert tc.get("/db").json() == "pool"
        # the client left: its session waits in the registry for it to come back
        assert steps == ["own startup"]
    assert steps == ["own startup", "on_terminate", "own shutdown"]
