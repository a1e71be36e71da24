"""Fan-out over real sockets: one uvicorn process with one shared synced object.

    python -m benchmarks.fanout_server PORT

- ``/ws``: our `sync_endpoint`; every session subscribes to the shared object.
- ``/raw``: a bare Starlette WebSocket endpoint that only keeps the socket.
- ``GET /bump?mode=ours&k=K``: K times: change one field, ``flush()``, and wait
  until every connection's writer has sent the frame and gone idle.
- ``GET /bump?mode=raw&k=K``: K times: ``await ws.send_text(frame)`` on every
  raw socket, the same bytes our patch frame has.
Each answers with the seconds of every repetition.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from .e2e_server import BENCH_LIMITS


def app() -> Starlette:
    from ws_sync import Limits, session_context, sync_all, sync_endpoint, wire

    class Shared:
        @sync_all("SHARED")
        def __init__(self) -> None:
            self.items = [
                {"id": i, "name": f"item {i}", "value": 0, "done": False} for i in range(100)
            ]

    shared = Shared()
    sync = shared.sync  # type: ignore[attr-defined]
    raw: list[WebSocket] = []
    k = [0]

    def change() -> None:
        shared.items[k[0]]["value"] += 1
        k[0] = (k[0] + 37) % len(shared.items)

    def subscribe() -> Any:
        session_context.get().attach(shared)
        return shared

    async def raw_endpoint(ws: WebSocket) -> None:
        await ws.accept()
        raw.append(ws)
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            raw.remove(ws)

    def idle(conns: list[Any]) -> bool:
        # a writer is idle once its queue is empty and it cleared its wake-up event
        return all(not c._queue and not c._wake.is_set() for c in conns)

    async def bump(request: Request) -> JSONResponse:
        mode = request.query_params["mode"]
        reps = int(request.query_params["k"])
        times: list[float] = []
        if mode == "ours":
            conns = [s.connection for s in sync.sessions if s.connection is not None]
            for _ in range(reps):
                change()
                t0 = time.perf_counter()
                sync.flush()
                while not idle(conns):
                    await asyncio.sleep(0)
                times.append(time.perf_counter() - t0)
                await asyncio.sleep(0.002)  # let the client read
            subscribers = len(conns)
        else:
            change()
            frame = wire.encode(wire.patch_event(sync.key), sync.collect())
            socks = list(raw)
            for _ in range(reps):
                t0 = time.perf_counter()
                for ws in socks:
                    await ws.send_text(frame)
                times.append(time.perf_counter() - t0)
                await asyncio.sleep(0.002)
            subscribers = len(socks)
        return JSONResponse({"times": times, "subscribers": subscribers})

    route = sync_endpoint(
        subscribe,
        path="/ws",
        user_sessions=False,
        allowed_origins=["*"],
        limits=Limits(**BENCH_LIMITS),
    )
    return Starlette(routes=[route, WebSocketRoute("/raw", raw_endpoint), Route("/bump", bump)])


def main() -> None:
    port = int(sys.argv[1])
    config = uvicorn.Config(
        app(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        backlog=4096,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
