"""The Redis backplane: shared objects, sessions and one-worker jobs of a
deployment, through one Redis (>= 7).

The objects themselves are kept by `ws_sync.redis_replica` (one total order of
commits, a lease per object), sessions by `ws_sync.redis_sessions`, and the
Lua scripts that make each step atomic are in `ws_sync.redis_scripts`. This
module holds the connection, the worker's heartbeat, the leader leases of
`ws_sync.one_worker` jobs (with their fencing tokens), and the pub/sub
channel that carries revocations (`ws_sync.auth.revoke`) to every worker.

A worker starts while Redis is unreachable: `start` does not fail, the
listener retries with backoff, and ``stats()["connected"]`` is 0 meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from . import redis_scripts as scripts
from .backplane import Backplane, Leadership, RevokeIncomplete, run_leading
from .redis_replica import Replica, locked

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .shared import Shared

logger = logging.getLogger("ws_sync")

LEASE_MS = 5000
"""How long a lease lasts unless renewed (a dead worker's runs out after this)."""

HEARTBEAT_MS = 3000
"""A worker counts as gone this long after its last heartbeat."""

MAX_BACKOFF = 2.0
"""The longest wait between two attempts to reach Redis."""

LEAD = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if redis.call('EXISTS', KEYS[2]) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', KEYS[2], string.format('%.0f', t[1] * 1000000 + t[2]))
  end
  return redis.call('INCR', KEYS[2])
end
return 0
"""
"""Take a leader lease and its fencing token in one step: the token counter
starts from Redis's clock in microseconds (so that it still grows if Redis
loses its data) and is incremented by every acquisition."""


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
            "retries": 0,
            "revokes_sent": 0,
            "revokes_received": 0,
            "local_sessions": 0,
            "lag_seconds": 0.0,
        }
        self.connected = True
        """False from a failed attempt to reach Redis until the next success."""
        self._heartbeat: asyncio.Future[None] | None = None
        self._beating_on = False  # the heartbeat's own stop flag (see `_beating`)
        self._listener: asyncio.Future[None] | None = None
        self._listening = False  # the listener's own stop flag, as the heartbeat's
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
        """Try Redis once and start listening for revocations; an unreachable
        Redis is logged and retried in the background, not raised."""
        try:
            await self.client.ping()
        except Exception as e:
            if not self.unreachable(e):
                raise
            self.down(e)
        else:
            self.up()
        self._listen()

    def unreachable(self, error: BaseException) -> bool:
        from redis.exceptions import ConnectionError, TimeoutError

        return isinstance(error, ConnectionError | TimeoutError | OSError)

    def up(self) -> None:
        """Redis answered."""
        if not self.connected:
            self.connected = True
            self.counters["reconnects"] += 1
            logger.info("Redis backplane %s: reachable again", self.url)

    def down(self, error: BaseException) -> None:
        """An attempt to reach Redis failed (logged once until it answers)."""
        self.counters["retries"] += 1
        if self.connected:
            self.connected = False
            logger.warning("Redis backplane %s unreachable (%s); retrying", self.url, error)

    async def close(self) -> None:
        if self._listener is not None:
            self._listening = False
            self._listener.cancel()
            await asyncio.wait([self._listener], timeout=5)
            self._listener = None
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
        self._listen()
        self._beat()
        replica = Replica(self, handle.key, self.key("obj", handle.key), handle)
        try:
            obj = await replica.open()
        except Exception as e:
            if self.unreachable(e):
                self.down(e)
            raise
        self.up()
        self._replicas[handle.key] = replica
        return obj

    def lock(self, handle: Shared[Any]) -> contextlib.AbstractAsyncContextManager[Any]:
        return locked(handle)

    async def lead(self, name: str, job: Callable[[], Awaitable[Any]]) -> None:
        """Compete for `name`'s lease; run `job` while holding it, cancel it
        when the lease is lost, and try again (a job that returns is done).
        Each acquisition takes the next fencing token (`ws_sync.backplane.leader`)."""
        lease = self.key("leader", name)
        fence = self.key("leader", name, "fence")
        holder = f"{self.worker}:{secrets.token_hex(4)}"
        take = self.script("lead", LEAD)
        renew = self.script("renew", scripts.RENEW)
        every = self.lease_ms / 3000
        while True:
            sent = time.monotonic()
            try:
                token = int(await take(keys=[lease, fence], args=[holder, self.lease_ms]))
            except Exception:
                token = 0
            _raise_if_cancelled()
            if not token:
                await asyncio.sleep(every)
                continue
            held = Leadership(name, token, until=sent + self.lease_ms / 1000)
            running = run_leading(job, held)
            try:
                while not running.done():
                    await asyncio.wait([running], timeout=every)
                    if running.done():
                        break
                    sent = time.monotonic()
                    try:
                        kept = await renew(keys=[lease], args=[holder, self.lease_ms])
                    except Exception:
                        kept = 0
                    _raise_if_cancelled()
                    if kept:
                        held.until = sent + self.lease_ms / 1000
                        continue
                    held.until = 0.0
                    logger.warning("one_worker %r: lease lost; stopping here", name)
                    running.cancel()
                    with contextlib.suppress(BaseException):
                        await running
                    break
                if running.done() and not running.cancelled():
                    running.result()
                    return
            finally:
                held.until = 0.0
                if not running.done():
                    running.cancel()
                    with contextlib.suppress(BaseException):
                        await running
                with contextlib.suppress(Exception):
                    await self.script("release", scripts.RELEASE)(keys=[lease], args=[holder])

    async def adopt(self, session: Any, ids: tuple[str, str], ttl: float) -> None:
        """Keep a new user session's objects in Redis (`ws_sync.redis_sessions`)."""
        from .redis_sessions import adopt

        self._listen()
        await adopt(self, session, ids, ttl)

    # ------------------------------------------------------------------ #
    # revocations: one pub/sub connection per worker

    async def revoke(self, name: str, message: str | None) -> int:
        """Close `name`'s sessions here, delete its stored sessions, and
        publish the revocation for the other workers (`_listen`)."""
        from .auth import close_sessions_of
        from .redis_sessions import forget_principal

        closed = await close_sessions_of(name, message)
        payload = json.dumps({"principal": name, "message": message, "worker": self.worker})
        try:
            await forget_principal(self, name)
            await self.client.publish(self.key("revoke"), payload)
        except Exception as e:
            if not self.unreachable(e):
                raise
            self.down(e)
            raise RevokeIncomplete(name, closed) from None
        self.counters["revokes_sent"] += 1
        return closed

    def _listen(self) -> None:
        """Start the worker's subscription to revocations (once)."""
        if self._listener is None or self._listener.done():
            self._listening = True
            self._listener = asyncio.ensure_future(self._listening_loop())

    async def _listening_loop(self) -> None:
        delay = 0.05
        while self._listening:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.key("revoke"))
                self.up()
                delay = 0.05
                while self._listening:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._received(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if self.unreachable(e):
                    self.down(e)
                else:
                    logger.exception("Redis backplane: the revocation listener failed")
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())
            if self._listening:
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, MAX_BACKOFF)

    def _received(self, data: str) -> None:
        try:
            revoked = json.loads(data)
            name, message, origin = revoked["principal"], revoked["message"], revoked["worker"]
        except (ValueError, KeyError, TypeError):
            logger.warning("Redis backplane: a malformed revocation was ignored")
            return
        if origin == self.worker:
            return  # closed before it was published
        self.counters["revokes_received"] += 1
        pending = asyncio.ensure_future(self._revoked(str(name), message))
        self._background.add(pending)
        pending.add_done_callback(self._background.discard)

    async def _revoked(self, name: str, message: str | None) -> None:
        from .auth import end_sessions
        from .redis_sessions import forget_sessions

        ended = await end_sessions(name, message)
        try:
            # a commit between the revoking worker's delete and this close may
            # have stored a session again
            await forget_sessions(self, ended)
        except Exception:
            logger.exception("revoke %r: deleting this worker's stored sessions failed", name)

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
        from .shared import pending

        out = dict(self.counters)
        out["connected"] = float(self.connected)
        out["shared_objects"] = len(self._replicas)
        out["shared_pending"] = pending(self)
        out["behind"] = sum(r.behind for r in self._replicas.values())
        return out


def _raise_if_cancelled() -> None:
    """Raise the cancellation of the current task if redis-py swallowed it
    (it can, when one lands inside a command): the task still counts it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
