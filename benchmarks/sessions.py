"""In-process sessions for the fan-out and memory sections: our real `Session`
and `Connection` (outbound queue, writer task) on a fake Starlette WebSocket
whose `send` only counts frames."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.websockets import WebSocketState


class FakeWebSocket:
    """What `ws_sync.connection.Connection` uses of a Starlette WebSocket. An
    already-accepted socket: `send` records, `receive` waits forever."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}
        self.application_state = WebSocketState.CONNECTED
        self.client_state = WebSocketState.CONNECTED
        self.sent = 0
        self.last: Any = None
        self._never = asyncio.Event()

    async def accept(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def send(self, message: dict[str, Any]) -> None:
        self.sent += 1
        self.last = message

    async def receive(self) -> dict[str, Any]:
        await self._never.wait()
        return {"type": "websocket.disconnect"}

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.application_state = WebSocketState.DISCONNECTED
        self._never.set()


async def connected_session(**kwargs: Any) -> tuple[Any, FakeWebSocket]:
    """A `Session` connected to a `FakeWebSocket` (its writer task running)."""
    from ws_sync import Session

    ws = FakeWebSocket()
    session = Session(**kwargs)
    await session.new_connection(ws)  # type: ignore[arg-type]
    return session, ws


async def drain(sockets: list[FakeWebSocket], expected: list[int], spins: int = 10_000) -> None:
    """Let the writer tasks run until every socket has received its frames."""
    for _ in range(spins):
        if all(ws.sent >= n for ws, n in zip(sockets, expected, strict=True)):
            return
        await asyncio.sleep(0)
    raise RuntimeError("writers did not drain")
