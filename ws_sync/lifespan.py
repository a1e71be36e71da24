"""Graceful shutdown: end every session when the server stops.

A `WebSocketRoute` receives no lifespan events, so sessions would simply be
dropped with the process: their tasks never reach their ``finally``,
`SessionState.on_terminate` never runs. Give the app this lifespan::

    app = Starlette(routes=[...], lifespan=ws_sync.lifespan())
    app = FastAPI(lifespan=ws_sync.lifespan(my_lifespan))  # the app's own runs around it

At shutdown every session of the server (in a `SessionRegistry` or not) is
closed: its tasks are cancelled and get ``grace`` seconds to finish, a client
still connected is closed with 1012 (service restart, no `_DISCONNECT`) so it
reconnects to the next server, and `on_terminate` runs. Closing sockets and the
hooks get another ``grace`` seconds; whatever still runs then is abandoned, so
the process exits.

At startup it connects the backplane (`ws_sync.backplane`), loads the
`ws_sync.shared` objects and starts the `ws_sync.shared.one_worker` jobs; a
backplane that is unreachable does not hold the startup up: the objects load
and the jobs start in the background once it answers. At shutdown, after the
sessions, it stops them and disconnects.

Uvicorn closes every WebSocket with 1012 itself before the lifespan shutdown,
then waits for the endpoints to return (for ever, unless
``timeout_graceful_shutdown`` is set); sessions that survive reconnects are
then idle in their registry, tasks still running. Servers that send the
lifespan shutdown first leave the connections to us. Either order ends the
same way. Without a lifespan (``--lifespan off``) nothing of this runs: uvicorn
ends the process by raising the signal again, and no ``finally`` runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from . import registry, session, shared

CLOSE_SERVICE_RESTART = 1012

logger = logging.getLogger("ws_sync")

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


def lifespan(app_lifespan: Lifespan | None = None, *, grace: float = 3.0) -> Lifespan:
    """A lifespan for ``Starlette(lifespan=...)`` or ``FastAPI(lifespan=...)``
    that closes every session at shutdown (`close_sessions`). The app's own
    `app_lifespan` is entered around it: its resources are still there for
    the tasks' ``finally`` blocks and the `on_terminate` hooks, and the state
    it yields is the app's."""

    @contextlib.asynccontextmanager
    async def run(app: Any) -> AsyncIterator[Any]:
        inner = app_lifespan(app) if app_lifespan is not None else contextlib.nullcontext()
        async with inner as state:
            jobs = await shared.start()
            try:
                yield state
            finally:
                await close_sessions(grace=grace)
                await shared.stop(jobs)

    return run


async def close_sessions(*, grace: float = 3.0, code: int = CLOSE_SERVICE_RESTART) -> None:
    """Close every session made in the running event loop (the server's), in
    a registry or not, and wait for those whose close began elsewhere (their
    connection ended). Tasks get `grace` seconds to finish, the rest another
    `grace`. Sessions of other loops (other servers or tests in the process)
    are left alone."""
    loop = asyncio.get_running_loop()
    ours = {s for s, made_in in list(session._live.items()) if made_in is loop}
    closing = [
        r.close(ids, code=code, grace=grace)
        for r in list(registry._live)
        for ids, entry in list(r._entries.items())
        if entry.session in ours
    ]
    closing += [s.close(code=code, grace=grace) for s in ours]
    try:
        async with asyncio.timeout(2 * grace):
            await asyncio.gather(*closing, return_exceptions=True)
            while any(s in session._live for s in ours):
                await asyncio.sleep(0.05)
    except TimeoutError:
        left = sum(s in session._live for s in ours)
        logger.warning("shutdown: %d session(s) not closed after %ss; abandoned", left, 2 * grace)
