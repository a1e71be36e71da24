"""The app the multi-worker tests run in each uvicorn worker process: one
shared board, every session attached to it. The backplane comes from
``WS_SYNC_BACKPLANE``, as in a deployment."""

from __future__ import annotations

import asyncio
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.websockets import WebSocket

import ws_sync
from ws_sync import remote_action, remote_task, session_context, sync_endpoint, sync_only
from ws_sync.auth import revoke
from ws_sync.backplane import leader
from ws_sync.metrics import metrics_route
from ws_sync.shared import one_worker, shared


class Board:
    count: int
    items: list[str]

    @sync_only("BOARD", count=..., items=..., worker=...)
    def __init__(self) -> None:
        self.count = 0
        self.items = []
        self.worker = ""

    @remote_action
    async def increment(self) -> int:
        count = self.count
        self.worker = str(os.getpid())  # the handler's worker, for the tests to see
        self.count = count + 1
        await self.sync()
        return self.count

    @remote_action
    async def increment_slowly(self, seconds: float) -> int:
        """Committed at once, answered after `seconds` (a worker can die between)."""
        self.count += 1
        await self.sync()
        await asyncio.sleep(seconds)
        return self.count

    @remote_action
    async def peek(self) -> int:
        return self.count

    @remote_action
    async def add(self, item: str) -> int:
        self.items.append(item)
        await self.sync()
        return len(self.items)


class Notes:
    """One per user session: kept in Redis with the session."""

    notes: list[str]

    @sync_only("NOTES", notes=...)
    def __init__(self) -> None:
        self.notes = []

    @remote_action
    async def note(self, text: str) -> int:
        self.notes.append(text)
        await self.sync()
        return len(self.notes)

    @remote_task
    async def wait(self) -> None:
        await asyncio.Event().wait()


board = shared("BOARD", Board)


def join() -> list[object]:
    session_context.get().attach(board)
    return [board, Notes()]


app = Starlette(routes=[sync_endpoint(join)], lifespan=ws_sync.lifespan(grace=0.5))


def signed_in(ws: WebSocket) -> str | None:
    """The tests' sign-in: the principal is named in the query (``?user=``)."""
    return ws.query_params.get("user")


async def revoke_route(request: Request) -> JSONResponse:
    closed = await revoke(request.path_params["name"], "Signed out")
    return JSONResponse({"closed": closed})


leadership: list[object] = []
"""What the one-worker job saw of its lease here, each time it started."""


@one_worker("ops-leader")
async def lead() -> None:
    leadership.append(leader())
    await asyncio.Event().wait()


async def leader_route(request: Request) -> JSONResponse:
    return JSONResponse(leadership)


ops_app = Starlette(
    routes=[
        Route("/leader", leader_route),
        sync_endpoint(join, authenticate=signed_in, shared_timeout=2.0),
        sync_endpoint(Notes, path="/notes"),  # uses no shared object
        Route("/revoke/{name}", revoke_route, methods=["POST"]),
        metrics_route("/metrics"),
    ],
    lifespan=ws_sync.lifespan(grace=0.5),
)
"""The operations tests' app: signed-in sessions, a revoke route, metrics,
an endpoint whose sessions need no shared object, and what the one-worker
job saw (every worker of this module competes for it)."""
