"""WebSocket objects that speak JSON rather than ASGI messages.

A `Session` drives Starlette's `WebSocket` at the ASGI level (``send`` and
``receive`` of messages). Upstream's sessions used only ``send_json``,
``send_bytes``, ``receive_json`` and ``receive_bytes``, and test doubles and
other frameworks' sockets are often shaped that way; `as_starlette` gives such
an object the few members a `Connection` uses.
"""

from __future__ import annotations

import inspect
import json
import weakref
from typing import Any

from starlette.websockets import WebSocketDisconnect, WebSocketState

_adapters: weakref.WeakKeyDictionary[Any, JsonSocket] = weakref.WeakKeyDictionary()


class JsonSocket:
    """A `send_json` / `receive_json` socket seen as a Starlette one.

    With `accepted` (a socket handed over already connected, as upstream's
    ``session.ws = ws`` did), a socket still in its CONNECTING state counts as
    connected."""

    def __init__(self, inner: Any, accepted: bool = False) -> None:
        self.inner = inner
        self.accepted = accepted
        self.scope: dict[str, Any] = dict(getattr(inner, "scope", None) or {"type": "websocket"})
        self.client = getattr(inner, "client", None)
        self._binary_next = False  # a _BIN_META came: its bytes are read next

    @property
    def application_state(self) -> WebSocketState:
        state = getattr(self.inner, "application_state", WebSocketState.CONNECTED)
        if self.accepted and state == WebSocketState.CONNECTING:
            return WebSocketState.CONNECTED
        return state  # type: ignore[no-any-return]

    client_state = application_state

    async def accept(self, *args: Any, **kwargs: Any) -> None:
        accept = getattr(self.inner, "accept", None)
        if accept is not None:
            await accept(*args, **kwargs)

    async def send(self, message: dict[str, Any]) -> None:
        if message.get("text") is not None:
            await self.inner.send_json(json.loads(message["text"]))
        elif message.get("bytes") is not None:
            await self.inner.send_bytes(message["bytes"])

    async def receive(self) -> dict[str, Any]:
        try:
            if self._binary_next:
                self._binary_next = False
                return {"type": "websocket.receive", "bytes": await self.inner.receive_bytes()}
            data = await self.inner.receive_json()
        except WebSocketDisconnect as e:
            return {"type": "websocket.disconnect", "code": e.code}
        self._binary_next = isinstance(data, dict) and data.get("type") == "_BIN_META"
        return {"type": "websocket.receive", "text": json.dumps(data)}

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        close = self.inner.close
        if len(inspect.signature(close).parameters) == 0:
            await close()
        else:
            await close(code, reason)


def is_json_socket(ws: Any) -> bool:
    """Shaped like upstream's socket rather than Starlette's."""
    return not hasattr(ws, "receive") and hasattr(ws, "receive_json")


def as_starlette(ws: Any, accepted: bool = False) -> Any:
    """`ws` itself if it has Starlette's members, else its (one) `JsonSocket`."""
    if not is_json_socket(ws):
        return ws
    adapter = _adapters.get(ws)
    if adapter is None:
        adapter = _adapters[ws] = JsonSocket(ws, accepted)
    adapter.accepted = adapter.accepted or accepted
    return adapter
