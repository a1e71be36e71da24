"""The Redis backplane: shared objects, sessions and one-worker jobs of a
deployment, through one Redis (>= 7).

The objects themselves are kept by `ws_sync.redis_replica` (one total order of
commits, a lease per object), sessions by `ws_sync.redis_sessions`, and the
Lua scripts that make each step atomic are in `ws_sync.redis_scripts`. This
module holds the connection, the worker's heartbeat and the leader leases of
`ws_sync.one_worker` jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from . import redis_scripts as scripts
from .backplane import Backplane
from .redis_replica import Replica, locked

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .shared import Shared

logger = logging.getLogger("ws_sync")

LEASE_MS = 5000
"""How long a lease lasts unless renewed (a dead worker's runs out after this)."""

HEARTBEAT_MS = 3000
"""A worker counts as gone this long after its last heartbeat."""


class RedisBackplane(Backplane):
    """Shared objects and one-worker jobs through one Redis (>= 7)."""

    embedded = False

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "ws-sync:",
        lease_ms: int = LEASE_MS,
        client: Redis | None = None,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.lease_ms = lease_ms
        self.worker = secrets.token_hex(4)
        self._client = client
        self._replicas: dict[str, Replica] = {}
        self._scripts: dict[str, Any] = {}
        self.counters: dict[str, float] = {
            "commits": 0,
            "conflicts": 0,
            "delivered": 0,
            "unavailable": 0,
            "reconnects": 0,
            "lag_seconds": 0.0,
        }
        self.connected = True
        self._heartbeat: asyncio.Future[None] | None = None
        self._beating_on = False  # the heartbeat's own stop flag (see `_beating`)
        self._background: set[asyncio.Future[Any]] = set()

    @property
    def client(self) -> Any:  # redis-py types its answers loosely
        if self._client is None:
            from redis.asyncio import Redis

            self._client = Redis.from_url(
                self.url, decode_responses=True, socket_connect_timeout=2, socket_timeout=5
            )
        return self._client

    def script(self, name: str, body: str) -> Any:
        found = self._scripts.get(name)
        if found is None:
            found = self._scripts[name] = self.client.register_script(body)
        return found

    async def start(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._beating_on = False
            self._heartbeat.cancel()
            # it ends on the flag if redis-py swallowed the cancellation
            await asyncio.wait([self._heartbeat], timeout=5)
            self._heartbeat = None
        for replica in list(self._replicas.values()):
            await replica.stop()
        self._replicas.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
            self._scripts.clear()

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def make(self, handle: Shared[Any]) -> Any:
        raise RuntimeError(f"shared object {handle.key!r} must be loaded from Redis first")

    async def open(self, handle: Shared[Any]) -> Any:
        self._beat()
        replica = Replica(self, handle.key, self.key("obj", handle.key), handle)
        obj = await replica.open()
        self._replicas[handle.key] = replica
        return obj

    def lock(self, handle: Shared[Any]) -> contextlib.AbstractAsyncContextManager[Any]:
        return locked(handle)

    async def lead(self, name: str, job: Callable[[], Awaitable[Any]]) -> None:
        """Compete for `name`'s lease; run `job` while holding it, cancel it
        when the lease is lost, and try again (a job that returns is done)."""
        lease = self.key("leader", name)
        token = f"{self.worker}:{secrets.token_hex(4)}"
        renew = self.script("renew", scripts.RENEW)
        while True:
            try:
                got = await self.client.set(lease, token, nx=True, px=self.lease_ms)
            except Exception:
                got = False
            if not got:
                await asyncio.sleep(self.lease_ms / 3000)
                continue
            running = asyncio.ensure_future(job())
            try:
                while not running.done():
                    await asyncio.wait([running], timeout=self.lease_ms / 3000)
                    if running.done():
                        break
                    try:
                        kept = await renew(keys=[lease], args=[token, self.lease_ms])
                    except Exception:
                        kept = 0
                    if not kept:
                        logger.warning("one_worker %r: lease lost; stopping here", name)
                        running.cancel()
                        with contextlib.suppress(BaseException):
                            await running
                        break
                if running.done() and not running.cancelled():
                    running.result()
                    return
            finally:
                if not running.done():
                    running.cancel()
                    with contextlib.suppress(BaseException):
                        await running
                with contextlib.suppress(Exception):
                    await self.script("release", scripts.RELEASE)(keys=[lease], args=[token])

    async def adopt(self, session: Any, ids: tuple[str, str], ttl: float) -> None:
        """Keep a new user session's objects in Redis (`ws_sync.redis_sessions`)."""
        from .redis_sessions import adopt

        await adopt(self, session, ids, ttl)

    def _beat(self) -> None:
        """Keep ``worker:{id}`` alive while this worker runs (tasks left by
        a worker without one are reported failed)."""
        if self._heartbeat is None or self._heartbeat.done():
            self._beating_on = True
            self._heartbeat = asyncio.ensure_future(self._beating())

    async def _beating(self) -> None:
        # redis-py can swallow a cancellation that lands inside a command
        # (while it reconnects), so the loop also stops on a flag.
        while self._beating_on:
            with contextlib.suppress(Exception):
                await self.client.set(self.key("worker", self.worker), 1, px=HEARTBEAT_MS)
            if self._beating_on:
                await asyncio.sleep(HEARTBEAT_MS / 3000)

    def stats(self) -> dict[str, float]:
        out = dict(self.counters)
        out["connected"] = float(self.connected)
        out["shared_objects"] = len(self._replicas)
        out["behind"] = sum(r.behind for r in self._replicas.values())
        return out
