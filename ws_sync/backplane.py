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
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .shared import Shared

ENV = "WS_SYNC_BACKPLANE"
DEFAULT_URL = "memory://"


class Backplane:
    """What a deployment shares: the shared objects, leadership of
    one-worker jobs. This base is the in-process one."""

    url = DEFAULT_URL
    embedded = True
    """Shared objects are made at first use, without waiting for I/O."""

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
        """Run `job` on one worker of the deployment at a time (here: this one)."""
        await job()

    def stats(self) -> dict[str, float]:
        """Counters for `ws_sync.metrics`."""
        return {}


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
