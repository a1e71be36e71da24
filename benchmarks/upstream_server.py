"""Upstream ws-sync 0.6.9's server for the end-to-end benchmark, imported by
`upstream_worker.py` (PYTHONPATH = benchmarks/.upstream). The same state and
action as ours (`e2e_server.py`), written the way 0.6.9 is used: a `Session`
per connection, the state built inside it, `session.handle_connection(ws)`."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket


def rss() -> int:  # as `common.rss_bytes`: this module must not import ours
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def mem(request: Request) -> JSONResponse:
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
    return JSONResponse({"traced": traced, "rss": rss()})


def app(items: int) -> Starlette:
    import ws_sync
    from ws_sync import Session, remote_action, sync_all

    assert ".upstream" in (ws_sync.__file__ or ""), ws_sync.__file__

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

    async def endpoint(ws: WebSocket) -> None:
        session = Session()
        with session:
            state = BenchState()
            await session.handle_connection(ws)
        del state

    return Starlette(routes=[WebSocketRoute("/ws", endpoint), Route("/mem", mem)])


def serve(args: dict[str, Any]) -> None:
    if args.get("trace"):
        tracemalloc.start()
    config = uvicorn.Config(
        app(args["items"]),
        host="127.0.0.1",
        port=args["port"],
        log_level="warning",
        lifespan="off",
        ws_max_size=64 << 20,
        access_log=False,
    )
    uvicorn.Server(config).run()
