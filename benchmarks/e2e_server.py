"""Servers of the end-to-end benchmark: ours (ws-sync's `sync_endpoint`) and a
bare WebSocket echo (the floor), both Starlette on uvicorn.

    python -m benchmarks.e2e_server {ours|bare|echo} PORT ITEMS [--trace]

Ours: every connection gets a fresh session (``user_sessions=False``) holding a
`BenchState` with ITEMS dict items; the client's ``_ACTION:BENCH {type: INC}``
changes one field of one item and syncs (one ``_PATCH:BENCH`` back). With
`bare` is our endpoint with sessions that hold no object. With
``--trace``, tracemalloc runs and ``GET /mem`` reports the server's memory.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from .common import rss_bytes

# Rate limiting stays on (its cost is part of the path) but high enough that a
# closed-loop benchmark client is never throttled.
BENCH_LIMITS: dict[str, Any] = {"rate": 1e9, "burst": 10**9}


async def mem(request: Request) -> JSONResponse:
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
    return JSONResponse({"traced": traced, "rss": rss_bytes()})


def bench_state(items: int) -> type:
    """The synced class the clients drive: `INC` changes one field and syncs."""
    from ws_sync import remote_action, sync_all

    class BenchState:
        @sync_all("BENCH")
        def __init__(self) -> None:
            self.items = [
                {"id": i, "name": f"item {i}", "value": 0, "done": False} for i in range(items)
            ]
            self._k = 0

        @remote_action("INC")
        async def inc(self) -> None:
            self.items[self._k]["value"] += 1
            self._k = (self._k + 1) % len(self.items)
            await self.sync()  # type: ignore[attr-defined]

    return BenchState


def ours_app(items: int) -> Starlette:
    from ws_sync import Limits, sync_endpoint

    route = sync_endpoint(
        bench_state(items),
        path="/ws",
        user_sessions=False,
        allowed_origins=["*"],
        limits=Limits(**BENCH_LIMITS),
    )
    return Starlette(routes=[route, Route("/mem", mem)])


def bare_app() -> Starlette:
    """Our endpoint with sessions that hold no object: the cost of a session alone."""
    from ws_sync import Limits, sync_endpoint

    route = sync_endpoint(
        lambda: None,
        path="/ws",
        user_sessions=False,
        allowed_origins=["*"],
        limits=Limits(**BENCH_LIMITS),
    )
    return Starlette(routes=[route, Route("/mem", mem)])


def echo_app() -> Starlette:
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                text = await ws.receive_text()
                await ws.send_text(text)
        except WebSocketDisconnect:
            pass

    return Starlette(routes=[WebSocketRoute("/ws", echo), Route("/mem", mem)])


def serve(app: Starlette, port: int) -> None:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ws_max_size=64 << 20,
        access_log=False,
    )
    uvicorn.Server(config).run()


def main() -> None:
    kind, port, items = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if "--trace" in sys.argv:
        tracemalloc.start()
    app = {"ours": lambda: ours_app(items), "bare": bare_app, "echo": echo_app}[kind]()
    serve(app, port)


if __name__ == "__main__":
    main()
