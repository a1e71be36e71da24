"""Where a deployment's shared state lives: in this process, or in Redis.

One setting switches it, so the same app module runs in one process or many::

    WS_SYNC_BACKPLANE=memory://                 # the default: this process only
    WS_SYNC_BACKPLANE=redis://10.0.0.5:6379/0   # every worker, through Redis

or ``sync_endpoint(..., backplane="redis://...")`` (a URL or a `Backplane`).
The in-process backplane adds nothing to the paths of objects that are not
declared with `ws_sync.shared`, and only a handle around those that are.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .shared import Shared

ENV = "WS_SYNC_BACKPLANE"
DEFAULT_URL = "memory://"


class Backplane:
    """What a deployment shares: the shared objects, leadership of
    one-worker jobs, revocations. This base is the in-process one."""

    url = DEFAULT_URL
    embedded = True
    """Shared objects are made at first use, without waiting for I/O."""
    connected = True
    """Whether the backplane answered its last request (this one always does)."""

    async def start(self) -> None:
        """Connect (the in-process one has nothing to connect to)."""

    async def close(self) -> None:
        """Disconnect and stop background work."""

    def make(self, handle: Shared[Any]) -> Any:
        """The live object of `handle`, made now (embedded backplanes only)."""
        return handle.build()

    async def open(self, handle: Shared[Any]) -> Any:
        """The live object of `handle`: made by its factory, or loaded."""
        return self.make(handle)

    def lock(self, handle: Shared[Any]) -> contextlib.AbstractAsyncContextManager[Any]:
        """Exclusive use of a shared object for server code; its changes are
        committed on exit."""
        return _local_lock(handle)

    async def adopt(self, session: Any, ids: tuple[str, str], ttl: float) -> None:
        """Keep the objects of a new user session where any worker finds them
        (here: nowhere; a session lives and dies with its process)."""

    async def lead(self, name: str, job: Callable[[], Awaitable[Any]]) -> None:
        """Run `job` on one worker of the deployment at a time (here: this
        one), as the holder of a `Leadership` that `leader` returns."""
        await run_leading(job, Leadership(name, next(_fences), until=float("inf")))

    async def revoke(self, name: str, message: str | None) -> int:
        """Close every session of the principal `name` in the deployment
        (here: this process); how many were closed here."""
        from .auth import close_sessions_of

        return await close_sessions_of(name, message)

    def unreachable(self, error: BaseException) -> bool:
        """Whether `error` says the backplane could not be reached (so that
        trying again later may work). The in-process one is always there."""
        return False

    def stats(self) -> dict[str, float]:
        """Counters for `ws_sync.metrics`."""
        return {}


class RevokeIncomplete(ConnectionError):
    """`ws_sync.auth.revoke` closed the sessions of this worker, but could not
    reach the backplane: other workers may still serve the principal, and its
    stored sessions may still be resumed. Call it again."""

    def __init__(self, name: str, closed: int) -> None:
        super().__init__(f"revoke {name!r}: the backplane is unreachable; closed {closed} here")
        self.closed = closed


# --------------------------------------------------------------------------- #
# leadership of one-worker jobs


@dataclass(eq=False)
class Leadership:
    """The lease a `one_worker` job runs under: its `name`, its fencing
    `token` (larger for every later holder), and until when (this worker's
    monotonic clock) no other worker can hold it."""

    name: str
    token: int
    until: float

    @property
    def held(self) -> bool:
        return time.monotonic() < self.until


_fences = itertools.count(1)
_leadership: ContextVar[Leadership | None] = ContextVar("ws_sync_leadership", default=None)


def run_leading(job: Callable[[], Awaitable[Any]], held: Leadership) -> asyncio.Task[Any]:
    """`job` in a task of its own, as the holder of `held` (see `leader`)."""

    async def run() -> Any:
        return await job()

    context = contextvars.copy_context()
    context.run(_leadership.set, held)
    return asyncio.get_running_loop().create_task(run(), context=context)


def leader() -> tuple[str, int] | None:
    """``(name, token)`` of the `one_worker` job running this code, else None.

    The token is a fencing token: every acquisition of the job's lease in the
    deployment gets a larger one. Pass it to external systems that can reject
    stale writers (a database row's ``fence`` column, an object store's
    precondition): a worker that stalled past its lease (a GC pause, SIGSTOP)
    and wakes up while another holds it writes with a smaller token, and is
    refused there."""
    held = _leadership.get()
    return None if held is None else (held.name, held.token)


def still_leader() -> bool:
    """Whether the running `one_worker` job still holds its lease: its last
    renewal, sent less than the lease's length ago by this worker's clock,
    succeeded. No I/O: check it right before an external side effect. False
    after a stall past the lease, once the lease was lost, and outside a job.
    The check and the side effect can still be separated by a stall; only
    the token (`leader`) closes that gap."""
    held = _leadership.get()
    return held is not None and held.held


_locks: dict[int, asyncio.Lock] = {}
_holding: ContextVar[frozenset[int]] = ContextVar("ws_sync_holding", default=frozenset())


@contextlib.asynccontextmanager
async def _local_lock(handle: Shared[Any]) -> AsyncIterator[Any]:
    obj = handle.obj
    held = _holding.get()
    if id(handle) in held:  # nested: already ours
        yield obj
        return
    lock = _locks.setdefault(id(handle), asyncio.Lock())
    async with lock:
        token = _holding.set(held | {id(handle)})
        try:
            yield obj
        finally:
            _holding.reset(token)
            obj.sync.flush()


def from_url(url: str) -> Backplane:
    """A backplane for ``memory://`` or ``redis://host:port/db`` (also ``rediss://``)."""
    if url in ("", "memory", "memory://"):
        return Backplane()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis_backplane import RedisBackplane

        return RedisBackplane(url)
    raise ValueError(f"{ENV}: unknown backplane {url!r} (memory:// or redis://host:port/db)")


_current: Backplane | None = None


def current() -> Backplane:
    """The process's backplane: set by `use`, else from `WS_SYNC_BACKPLANE`."""
    global _current
    if _current is None:
        _current = from_url(os.environ.get(ENV, DEFAULT_URL))
    return _current


def use(backplane: Backplane | str) -> Backplane:
    """Make `backplane` (or the one its URL names) the process's backplane."""
    global _current
    chosen = from_url(backplane) if isinstance(backplane, str) else backplane
    if _current is not None and _current is not chosen and _current.url != chosen.url:
        from .shared import loaded

        if loaded():
            raise RuntimeError("shared objects are already loaded from another backplane")
    if _current is None or _current.url != chosen.url or not isinstance(backplane, str):
        _current = chosen
    return _current
