"""The README's Python snippets run as written, and do what the README says.

Each ```python block is run on its own, as a reader pastes it. A block right
after ``<!-- readme-test: server -->`` defines an ASGI ``app``: it is saved as
``app.py`` and served by uvicorn on 127.0.0.1 (a free port, a timeout, stopped
at the end), and a WebSocket client talks to it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    LiveServer,
    free_port,
    port_open,
    wait_until,
)
from playwright.sync_api import sync_playwright
from session_helpers import recv, send
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.sync.client import ClientConnection, connect

from ws_sync import client_route, sync_endpoint

README = ROOT / "README.md"
SERVER_MARK = "<!-- readme-test: server -->"
BLOCK = re.compile(
    r"^(?P<mark><!-- readme-test: \w+ -->\n)?(?P<indent> *)```(?P<lang>\w*)\n"
    r"(?P<code>.*?)^(?P=indent)```$",
    re.M | re.S,
)
SERVER_TIMEOUT = 20.0


class Snippet:
    def __init__(self, lang: str, code: str, line: int, server: bool) -> None:
        self.lang, self.code, self.line, self.server = lang, code, line, server

    def __repr__(self) -> str:
        return f"README.md:{self.line}"


def snippets(lang: str | None = None) -> list[Snippet]:
    text = README.read_text()
    found = []
    for m in BLOCK.finditer(text):
        line = text.count("\n", 0, m.start("code"))
        code = textwrap.dedent(m["code"])  # a block inside a list item is indented
        found.append(Snippet(m["lang"], code, line, m["mark"] == SERVER_MARK + "\n"))
    return [s for s in found if lang is None or s.lang == lang]


PYTHON = snippets("python")
PLAIN = [s for s in PYTHON if not s.server]
SERVERS = [s for s in PYTHON if s.server]


def run(snippet: Snippet) -> types.ModuleType:
    """Execute the snippet as a module of its own (pydantic resolves its annotations there)."""
    name = f"readme_snippet_{snippet.line}"
    module = types.ModuleType(name)
    module.__file__ = str(README)
    sys.modules[name] = module
    try:
        exec(compile(snippet.code, f"README.md:{snippet.line}", "exec"), module.__dict__)
    finally:
        del sys.modules[name]
    return module


def defining(name: str, containing: str = "") -> list[types.ModuleType]:
    """The modules of the plain snippets that define `name` (and contain `containing`)."""
    return [
        run(s)
        for s in PLAIN
        if re.search(rf"^class {name}\b", s.code, re.M) and containing in s.code
    ]


def test_auth_snippet_refuses_the_signed_out_and_binds_the_signed_in() -> None:
    (module,) = defining("MyCookieBackend")
    with TestClient(module.app) as tc:
        with pytest.raises(WebSocketDisconnect), tc.websocket_connect("/ws"):
            pass  # no cookie: refused before the handshake is accepted
        tc.cookies.set("user", "ada")
        with tc.websocket_connect("/ws") as ws:
            assert recv(ws)["type"] == "_REQUEST_USER_SESSION"
            send(ws, "_USER_SESSION", {"user": "u", "session": "s"})
            assert recv(ws) == {"type": "_SET:NOTES", "data": {"notes": []}}


def test_the_readme_has_python_snippets_and_server_snippets() -> None:
    assert len(PLAIN) >= 4
    assert len(SERVERS) >= 2


@pytest.mark.parametrize("snippet", PLAIN, ids=repr)
def test_snippet_runs_as_written(snippet: Snippet) -> None:
    module = run(snippet)
    assert [v for v in vars(module).values() if isinstance(v, type)]  # it defines something


# --------------------------------------------------------------------------- #
# what the snippets do, through a real endpoint (in process, no port)


class Client:
    """A raw protocol-1 client of `sync_endpoint(factory)` over Starlette's TestClient."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = iter(range(1, 1 << 30))

    def call(self, key: str, action: str, **params: Any) -> list[dict[str, Any]]:
        """Send one action with a `$id`; the frames it caused, its result last
        (a refusal's `_ERROR` with the same id is read and left out)."""
        call_id = next(self.ids)
        send(self.ws, f"_ACTION:{key}", {"type": action, "$id": call_id, **params})
        frames: list[dict[str, Any]] = []
        result, error = None, None
        while result is None or (not result["data"]["ok"] and error is None):
            frame = recv(self.ws)
            if frame["type"] == f"_ACTION_RESULT:{key}" and frame["data"]["id"] == call_id:
                result = frame
            elif frame["type"] == "_ERROR" and frame["data"].get("id") == call_id:
                error = frame
            else:
                frames.append(frame)
        return [*frames, result]


@contextlib.contextmanager
def connected(factory: Any) -> Iterator[tuple[Client, dict[str, Any]]]:
    app = Starlette(routes=[sync_endpoint(factory, user_sessions=False)])
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        first = recv(ws)
        assert first["type"].startswith("_SET:")
        yield Client(ws), first


def test_typed_quickstart_sends_what_the_readme_says() -> None:
    (module,) = [m for m in defining("Notes") if hasattr(m, "BaseModel")]
    with connected(module.Notes) as (client, first):
        assert first == {
            "type": "_SET:NOTES",
            "data": {"title": "My Notes", "notes": [], "total_length": 0},
        }
        frames = client.call("NOTES", "ADD_NOTE", note="hi")
        assert frames[0] == {
            "type": "_PATCH:NOTES",
            "data": [
                {"op": "add", "path": "/notes/0", "value": "hi"},
                {"op": "add", "path": "/total_length", "value": 2},
            ],
        }
        assert '`add_note("hi")` sends `[{"op": "add", "path": "/notes/0"' in (README.read_text())
        assert frames[-1]["data"]["ok"] is True


def test_plain_class_rename_is_a_remote_action() -> None:
    (module,) = [m for m in defining("Notes", "RENAME") if not hasattr(m, "BaseModel")]
    with connected(module.Notes) as (client, first):
        assert first["data"] == {"title": "My Notes", "notes": []}
        frames = client.call("NOTES", "RENAME", new_title="Groceries")
        assert frames[0]["data"] == [{"op": "replace", "path": "/title", "value": "Groceries"}]
        assert frames[-1]["data"]["ok"] is True


def test_team_manager_validates_users_and_shares_one_object() -> None:
    (module,) = defining("TeamManager")
    with connected(module.TeamManager) as (client, _):
        frames = client.call("TEAM", "ADD_USER", user_data={"name": "ada", "age": "36"})
        user = {"name": "ada", "age": 36, "email": None}
        assert frames[0]["data"] == [
            {"op": "add", "path": "/users/0", "value": user},
            {"op": "add", "path": "/user_index/ada", "value": user},
        ]
        refused = client.call("TEAM", "ADD_USER", user_data={"name": "bob", "age": "old"})
        assert refused[-1]["data"]["ok"] is False


def test_task_manager_validates_tasks_and_streams_progress() -> None:
    (module,) = defining("TaskManager")
    with connected(module.TaskManager) as (client, _):
        frames = client.call("TASKS", "CREATE_TASK", task_data={"title": "Write docs"})
        assert frames[0]["data"] == [
            {"op": "add", "path": "/tasks/0", "value": {"title": "Write docs", "done": False}}
        ]
        refused = client.call("TASKS", "CREATE_TASK", task_data={"done": True})
        assert refused[-1]["data"]["ok"] is False
        send(client.ws, "_TASK_START:TASKS", {"type": "PROCESS_BATCH", "items": ["a"]})
        assert recv(client.ws) == {
            "type": "_TASK_PROGRESS:TASKS",
            "data": {"type": "PROCESS_BATCH", "value": "Processed a"},
        }
        done = recv(client.ws)
        assert done["type"] == "_TASK_DONE:TASKS"
        assert done["data"]["status"] == "completed"


# --------------------------------------------------------------------------- #
# snippets that start a server


class Served:
    """`uvicorn app:app` for a snippet saved as app.py, on 127.0.0.1."""

    def __init__(self, snippet: Snippet, folder: Path) -> None:
        (folder / "app.py").write_text(snippet.code)
        self.port = free_port()
        self.log = folder / "server.log"
        env_path = f"{folder}:{ROOT}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--timeout-graceful-shutdown", "2"],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": env_path},
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
        )  # fmt: skip

    def wait(self) -> None:
        wait_until(
            lambda: self.proc.poll() is not None or port_open(self.port),
            SERVER_TIMEOUT,
            "the snippet's server to listen",
        )
        assert self.proc.poll() is None, self.log.read_text()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(SERVER_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def receive(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=SERVER_TIMEOUT))


@pytest.mark.parametrize("snippet", SERVERS, ids=repr)
def test_server_snippet_serves_and_answers(snippet: Snippet, tmp_path: Path) -> None:
    server = Served(snippet, tmp_path)
    try:
        server.wait()
        with connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=SERVER_TIMEOUT) as ws:
            frame = receive(ws)
            if frame["type"] == "_REQUEST_USER_SESSION":
                ws.send(
                    json.dumps({"type": "_USER_SESSION", "data": {"user": "u", "session": "s"}})
                )
                frame = receive(ws)
            states = {}
            while frame["type"].startswith("_SET:"):
                states[frame["type"]] = frame["data"]
                if "_SET:NOTES" in states and len(states) == snippet.code.count("@sync_all"):
                    break
                frame = receive(ws)
            assert states["_SET:NOTES"] == {"notes": []}
            call = {"type": "ADD_NOTE", "note": "hi", "$id": 1}
            ws.send(json.dumps({"type": "_ACTION:NOTES", "data": call}))
            assert receive(ws)["data"] == [{"op": "add", "path": "/notes/0", "value": "hi"}]
            assert receive(ws) == {
                "type": "_ACTION_RESULT:NOTES",
                "data": {"id": 1, "ok": True, "result": None},
            }
    finally:
        server.stop()
    assert "Traceback" not in server.log.read_text()


def test_shared_board_reaches_every_session_of_the_server_snippet(tmp_path: Path) -> None:
    """The factory snippet attaches one board to each session: a change reaches all."""
    (snippet,) = [s for s in SERVERS if "session_context" in s.code]
    module = run(snippet)
    module.board.cards.append("first")  # before anyone connects
    with TestClient(module.app) as tc, tc.websocket_connect("/ws") as a:
        recv(a)
        send(a, "_USER_SESSION", {"user": "a", "session": "a"})
        seen = {recv(a)["type"]: None for _ in range(2)}
        assert set(seen) == {"_SET:NOTES", "_SET:BOARD"}
        with tc.websocket_connect("/ws") as b:
            recv(b)
            send(b, "_USER_SESSION", {"user": "b", "session": "b"})
            frames = [recv(b), recv(b)]
            assert {"type": "_SET:BOARD", "data": {"cards": ["first"]}} in frames
            assert tc.portal.call(_sync_board, module.board) is None
            expected = {
                "type": "_PATCH:BOARD",
                "data": [{"op": "add", "path": "/cards/1", "value": "second"}],
            }
            assert recv(a) == expected
            assert recv(b) == expected


async def _sync_board(board: Any) -> None:
    board.cards.append("second")
    await board.sync()


# --------------------------------------------------------------------------- #
# the rest of the README


def test_frontend_snippets_derive_the_socket_scheme_from_the_page() -> None:
    for snippet in snippets():
        if snippet.lang in ("html", "jsx", "js", "javascript"):
            assert "ws://" not in snippet.code.replace("ws://${", ""), snippet
            assert 'location.protocol === "https:" ? "wss" : "ws"' in snippet.code, snippet


def test_react_snippet_imports_and_provides_the_session() -> None:
    (jsx,) = snippets("jsx")
    assert 'import { SessionProvider, useSynced } from "./react.js";' in jsx.code
    assert "<SessionProvider session={session}>" in jsx.code
    assert '"react"' in README.read_text()  # the bare-import note


def test_js_task_api_is_documented_with_the_clients_names() -> None:
    dts = (ROOT / "ws_sync/static/ws-sync.d.ts").read_text()
    (html,) = snippets("html")
    for name in ("startTask", "cancelTask", "onTaskProgress", "onTaskDone", "action", "set"):
        assert re.search(rf"^  {name}(<[^>]*>)?\(", dts, re.M), name
        assert f".{name}(" in html.code


def test_images_and_links_are_absolute_for_package_indexes() -> None:
    text = README.read_text()
    targets = re.findall(r"\]\(([^)]+)\)", text)
    assert targets
    for target in targets:
        assert target.startswith(("https://", "#")), target
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        path = image.split("/main/", 1)[1]
        assert (ROOT / path).is_file(), image


def test_installs_from_source_not_from_the_index() -> None:
    text = README.read_text()
    assert "pip install ws-sync\n" not in text
    assert ".venv/bin/pip install ." in text


@pytest.mark.e2e
def test_html_snippet_runs_in_chromium_against_the_readme_models() -> None:
    """The frontend snippet, as a page, against the README's `Notes` and `TaskManager`."""
    (html,) = snippets("html")
    (typed,) = [m for m in defining("Notes") if hasattr(m, "BaseModel")]
    (tasks,) = defining("TaskManager")
    made: list[Any] = []

    def factory() -> list[Any]:
        made.extend([typed.Notes(), tasks.TaskManager()])
        return made[-2:]

    async def page(_: Any) -> HTMLResponse:
        return HTMLResponse(f"<!doctype html><html><body>{html.code}</body></html>")

    app = Starlette(
        routes=[sync_endpoint(factory, user_sessions=False), client_route(), Route("/", page)]
    )
    server = LiveServer(app)
    server.start()
    logs: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                tab = browser.new_page()
                tab.on("console", lambda m: logs.append(m.text))
                tab.on("pageerror", lambda e: logs.append(f"pageerror {e}"))
                done = lambda m: m.text.startswith("completed")  # noqa: E731
                with tab.expect_console_message(done, timeout=20_000):
                    tab.goto(server.url)
            finally:
                browser.close()
    finally:
        server.close()
    notes, manager = made
    assert notes.notes == ["hi"] and notes.title == "New title"
    assert "progress Processed a" in logs and "progress Processed b" in logs
    assert not [s for s in logs if s.startswith("pageerror")]
    assert manager.tasks == []
