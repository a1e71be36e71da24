"""`send_json`-shaped sockets seen as Starlette's (`ws_sync.socket`)."""

from __future__ import annotations

import json
from typing import Any

from starlette.websockets import WebSocketDisconnect, WebSocketState

from ws_sync.socket import JsonSocket, as_starlette, is_json_socket


class Double:
    def __init__(self, incoming: list[Any]) -> None:
        self.incoming = list(incoming)
        self.sent: list[Any] = []
        self.closed_with: tuple[Any, ...] | None = None
        self.application_state = WebSocketState.CONNECTING

    async def send_json(self, data: Any) -> None:
        self.sent.append(data)

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)

    async def receive_json(self) -> Any:
        if not self.incoming:
            raise WebSocketDisconnect(1001)
        return self.incoming.pop(0)

    async def receive_bytes(self) -> bytes:
        return bytes(self.incoming.pop(0))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed_with = (code, reason)


async def test_messages_both_ways() -> None:
    inner = Double([{"type": "_BIN_META", "data": {}}, [7], {"type": "X"}])
    ws = as_starlette(inner)
    assert isinstance(ws, JsonSocket) and as_starlette(inner) is ws
    await ws.send({"type": "websocket.send", "text": '{"a": 1}'})
    await ws.send({"type": "websocket.send", "bytes": b"\x00"})
    assert inner.sent == [{"a": 1}, b"\x00"]
    first = await ws.receive()
    assert json.loads(first["text"]) == {"type": "_BIN_META", "data": {}}
    assert await ws.receive() == {"type": "websocket.receive", "bytes": b"\x07"}
    assert json.loads((await ws.receive())["text"]) == {"type": "X"}
    assert await ws.receive() == {"type": "websocket.disconnect", "code": 1001}
    await ws.close(1013, "slow")
    assert inner.closed_with == (1013, "slow")


def test_state_and_shape() -> None:
    inner = Double([])
    assert is_json_socket(inner) and not is_json_socket(JsonSocket(inner))
    assert as_starlette(inner).application_state == WebSocketState.CONNECTING
    handed_over = as_starlette(inner, accepted=True)
    assert handed_over.application_state == WebSocketState.CONNECTED
    inner.application_state = WebSocketState.DISCONNECTED
    assert handed_over.application_state == WebSocketState.DISCONNECTED
