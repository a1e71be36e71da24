"""Helpers for the real-browser tests: servers on free local ports, waiting."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"

CHROMIUM = os.environ.get("WS_SYNC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> Iterator[Browser]:
    """Debian's chromium, headless, for the tests of one module: a missing
    browser fails them (never skips). Use as ``yield from chromium()`` in a
    module-scoped fixture."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as p:
        # launch() gives the browser a fresh, temporary user data dir.
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=30_000
        )
        yield browser
        browser.close()


def notes_of(server: LiveServer, page: Page) -> Any:
    """The server's `Notes` of the page's user session (ids from its storage)."""
    ids = page.evaluate(
        "() => [localStorage.getItem('ws-sync:user'), sessionStorage.getItem('ws-sync:session')]"
    )
    registry = server.app.state.sessions

    def find() -> Any:
        session = registry.get(tuple(ids))
        sync = session.syncs.get("NOTES") if session else None
        return sync.obj if sync else None

    return wait_until(lambda: server.call(find), what=f"the session {ids} on the server")


def add_note(page: Page, text: str) -> None:
    page.fill("#new-note", text)
    page.press("#new-note", "Enter")
    expect(page.locator("#new-note")).to_have_value("")  # cleared once ADD_NOTE answered


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `check()` until it returns something truthy; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what} (last: {value!r})"
            )
        time.sleep(0.05)


class LiveServer:
    """Serves an ASGI app with uvicorn on 127.0.0.1 from an event loop in a
    background thread. `stop()` and `start()` again restart the server on the
    same port while the app and its Python objects stay alive; `call()` runs
    code in the server's loop, so a test can read or change the objects."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="e2e-server", daemon=True
        )
        self._thread.start()
        self._server: uvicorn.Server | None = None
        self._serving: Any = None

    def start(self, timeout: float = 10.0) -> None:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = server = uvicorn.Server(config)
        self._serving = serving = asyncio.run_coroutine_threadsafe(server.serve(), self.loop)
        wait_until(lambda: server.started or serving.done(), timeout, "the server to start")
        if not server.started:
            serving.result(0)  # raises what stopped it
            raise RuntimeError(f"the server on port {self.port} did not start")

    def stop(self, timeout: float = 10.0) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.loop.call_soon_threadsafe(setattr, server, "should_exit", True)
        self._serving.result(timeout)

    def call(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """``fn()`` run in the server's loop (awaited if it returns an awaitable)."""

        async def run() -> Any:
            result = fn()
            if inspect.isawaitable(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def close(self) -> None:
        """Stop serving, cancel what still runs in the loop (sessions, tasks), end the thread."""
        with contextlib.suppress(Exception):
            self.stop()

        async def cancel_rest() -> None:
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cancel_rest(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


class ExampleProcess:
    """An example run as its users run it, ``python -m examples.<name>``,
    with ``PORT`` set; restartable on the same port."""

    def __init__(self, name: str, port: int | None = None) -> None:
        self.name = name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen[bytes] | None = None
        # its stderr: a file, as a pipe nobody reads could fill up and block it
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())

    def start(self, timeout: float = 20.0) -> None:
        env = {**os.environ, "PORT": str(self.port), "PYTHONUNBUFFERED": "1"}
        self.proc = proc = subprocess.Popen(
            [sys.executable, "-m", f"examples.{self.name}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        try:
            wait_until(
                lambda: proc.poll() is not None or port_open(self.port),
                timeout,
                f"examples.{self.name} to listen",
            )
        except AssertionError:
            self.stop()
            raise
        if proc.poll() is not None:
            raise RuntimeError(
                f"examples.{self.name} exited with {proc.returncode}:\n{self.output()}"
            )

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def close(self) -> None:
        self.stop()
        self.log.close()

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")
