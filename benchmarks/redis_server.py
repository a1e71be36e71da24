"""The app of the Redis benchmark's uvicorn workers: one shared counter that
every connection subscribes to. The backplane comes from ``WS_SYNC_BACKPLANE``."""

from __future__ import annotations

from starlette.applications import Starlette

import ws_sync
from ws_sync import remote_action, session_context, sync_endpoint, sync_only
from ws_sync.shared import shared


class Counter:
    count: int

    @sync_only("COUNTER", count=...)
    def __init__(self) -> None:
        self.count = 0

    @remote_action
    async def increment(self) -> int:
        self.count += 1
        await self.sync()
        return self.count


counter = shared("COUNTER", Counter)


def join() -> object:
    session_context.get().attach(counter)
    return counter


app = Starlette(
    routes=[sync_endpoint(join, user_sessions=False, max_sessions=5000)],
    lifespan=ws_sync.lifespan(grace=0.5),
)
