"""DNS rebinding: the Host allowlist of `sync_endpoint` and of the examples.

A rebinding page reaches us under the attacker's name with a matching Origin,
so only the Host header can refuse it."""

import asyncio
import base64
import os
from types import SimpleNamespace
from typing import Any

import pytest
from session_helpers import Notes, recv, serve
from starlette.applications import Starlette
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from examples.board.app import create_app as board_app
from examples.notes.app import create_app as notes_app
from ws_sync import sync_endpoint
from ws_sync.hosts import host_allowed, host_patterns

LOCAL = ["localhost", "127.0.0.1"]


def conn(host: str | None) -> Any:
    return SimpleNamespace(headers={} if host is None else {"host": host})


@pytest.mark.parametrize(
    ("allowed", "host", "ok"),
    [
        (None, "evil.example", True),  # no allowlist: no check, as before
        (["*"], "evil.example", True),
        (LOCAL, "localhost", True),
        (LOCAL, "localhost:8000", True),
        (LOCAL, "127.0.0.1:51234", True),
        (LOCAL, "LocalHost:8000", True),
        (LOCAL, "evil.example:8000", False),
        (LOCAL, "localhost.evil.example", False),
        (LOCAL, "127.0.0.1.nip.io", False),
        (LOCAL, "evil.example#@localhost", False),
        (LOCAL, "localhost:80:80", False),
        (LOCAL, "", False),
        (LOCAL, None, False),
        (["*.example.com"], "app.example.com:443", True),
        (["*.example.com"], "a.b.example.com", True),
        (["*.example.com"], "example.com", False),  # as TrustedHostMiddleware
        (["*.example.com"], "evilexample.com", False),
        (["[::1]"], "[::1]:8000", True),
        (["[::1]"], "[::2]:8000", False),
    ],
)
def test_host_allowed(allowed, host, ok):
    patterns = host_patterns(allowed) if allowed is not None else None
    assert host_allowed(conn(host), patterns) is ok


@pytest.mark.parametrize("bad", ["localhost:8000", "*example.com", "a.*.com", "", "http://x"])
def test_a_pattern_that_would_never_match_fails_at_startup(bad):
    with pytest.raises(ValueError, match="allowed host"):
        sync_endpoint(Notes, allowed_hosts=[bad])


def test_the_endpoint_refuses_a_foreign_host_before_accepting():
    app = Starlette(routes=[sync_endpoint(Notes, user_sessions=False, allowed_hosts=LOCAL)])
    client = TestClient(app)
    # the Origin matches the Host, as for a rebinding page: the same-origin check passes
    with pytest.raises(WebSocketDisconnect) as e, connect(client, "evil.example:8000"):
        pass
    assert e.value.code == 1008
    with connect(client, "127.0.0.1:8000") as ws:
        assert recv(ws)["type"] == "_SET:NOTES"


def connect(client: TestClient, host: str) -> Any:
    """A WebSocket from a page served by `host` (Host and Origin alike)."""
    return client.websocket_connect(f"ws://{host}/ws", headers={"origin": f"http://{host}"})


async def handshake_status(port: int, host: str, path: str = "/ws") -> int:
    """The HTTP status a browser on `host` gets for a WebSocket handshake
    (its Origin matching its Host, as a rebinding page's does)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        writer.write(request.encode())
        status_line = await asyncio.wait_for(reader.readline(), 10)
        return int(status_line.split()[1])
    finally:
        writer.close()


@pytest.mark.parametrize("ws", ["websockets", "websockets-sansio"])
async def test_uvicorn_answers_403_to_a_rebinding_handshake(ws):
    app = Starlette(routes=[sync_endpoint(Notes, user_sessions=False, allowed_hosts=LOCAL)])
    async with serve(app, ws=ws) as url:
        port = int(url.rsplit(":", 1)[1])
        assert await handshake_status(port, f"evil.example:{port}") == 403
        assert await handshake_status(port, f"127.0.0.1:{port}") == 101
        assert await handshake_status(port, f"localhost:{port}") == 101


async def test_without_allowed_hosts_a_rebinding_handshake_still_passes():
    """The default (None) is the old behaviour: no Host check."""
    app = Starlette(routes=[sync_endpoint(Notes, user_sessions=False)])
    async with serve(app) as url:
        port = int(url.rsplit(":", 1)[1])
        assert await handshake_status(port, f"evil.example:{port}") == 101


@pytest.mark.parametrize("make", [notes_app, board_app], ids=["notes", "board"])
def test_the_examples_serve_local_hosts_only(make):
    app = make()
    for host in ("127.0.0.1:8000", "localhost:8000", "localhost"):
        local = TestClient(app, base_url=f"http://{host}")
        assert local.get("/").status_code == 200
        assert local.get("/ws-sync/ws-sync.js").status_code == 200
        with connect(local, host) as ws:
            assert recv(ws)["type"] in ("_REQUEST_USER_SESSION", "_SET:BOARD")
    rebinding = TestClient(app, base_url="http://evil.example:8000")
    assert rebinding.get("/").status_code == 400
    assert rebinding.get("/ws-sync/ws-sync.js").status_code == 400
    with (
        pytest.raises((WebSocketDenialResponse, WebSocketDisconnect)),
        connect(rebinding, "evil.example:8000"),
    ):
        pass


async def test_a_served_example_refuses_a_rebinding_handshake():
    async with serve(notes_app()) as url:
        port = int(url.rsplit(":", 1)[1])
        assert await handshake_status(port, f"evil.example:{port}") in (400, 403)
        assert await handshake_status(port, f"127.0.0.1:{port}") == 101
