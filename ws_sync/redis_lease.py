"""Whose turn it is to change a shared object: a lease per object in Redis.

Handlers on a shared object run one at a time across the deployment: a worker
takes the object's lease (``{obj}:lease``), catches up to the version it was
granted at, runs the handler and commits. It then keeps the lease, parked,
until another worker asks for it, so the next handler on the same worker
starts at once and its commit is its only round trip. The commit renews the
lease.

Asking is part of taking: a worker that finds the lease held leaves its token
in ``{obj}:want`` and an entry in the stream ``{obj}:wants``. The holder reads
that stream with the commits; when idle (or as soon as its handler ends) it
hands the lease straight to the asker and announces the grant on the same
stream, which wakes the asker without another round trip of its own.

The same stream says when a lease leaves its holder (``x``: let go, found
lost, or taken from a worker without heartbeat): a holder's stream reader
waits on ``wants`` alone (`ws_sync.redis_replica`), and this wakes it.

A lease is safe to lose: every commit is still a compare-and-set on the
version, so a holder that stalled past its lease (or whose parked lease was
taken) gets a conflict, never a lost update. A holder whose worker stopped
sending heartbeats loses its lease to the next asker at once; otherwise it
runs out after `lease_ms`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from typing import TYPE_CHECKING, Any

from . import redis_scripts as scripts
from .shared import SharedWriteError

if TYPE_CHECKING:
    from .redis_backplane import RedisBackplane

ACQUIRE_TIMEOUT = 15.0
"""How long a handler waits for its turn before failing."""
WANT_MS = 500
"""How long an ask stands unless asked again (an asker polls more often)."""
BATCH = 4
"""Handlers queued here that still run before the lease goes to a worker
that asked: fewer hand-overs under load, and a bounded wait for the asker."""
CONTENDED_S = 1.0
"""After another worker asked for the lease this recently, a worker lets it
go after each handler instead of parking it: the next asker takes it in one
round trip instead of waiting for a hand-over."""

UNAVAILABLE = "the shared state is unreachable now; nothing was changed, try again"


class Lease:
    """This worker's side of one shared object's lease."""

    def __init__(self, bp: RedisBackplane, hash_key: str, name: str) -> None:
        self.bp = bp
        self.name = name
        self.key = hash_key + ":lease"
        self.hash = hash_key
        self.want = hash_key + ":want"
        self.wants = hash_key + ":wants"
        self.wants_seen = "0-0"
        """The last entry of ``wants`` read (the stream reader reads on)."""
        self.token = ""
        """The token Redis knows this worker's lease by, or "" when not held."""
        self.version = 0
        """The object's version when the lease was granted or last used here."""
        self.until = 0.0
        """A monotonic time before which the lease is surely still ours."""
        self.busy = False
        self.wanted = False
        self.contended = -CONTENDED_S
        """When another worker last asked for the lease (monotonic)."""
        self.streak = 0
        self._tokens = itertools.count()
        self._asking: dict[str, asyncio.Future[int]] = {}
        self._handing: asyncio.Future[None] | None = None
        self._renewal: asyncio.Future[None] | None = None

    @property
    def ms(self) -> int:
        return self.bp.lease_ms

    def held(self) -> bool:
        return bool(self.token) and time.monotonic() < self.until

    def extended(self, sent_at: float) -> None:
        """Redis set the lease to last `lease_ms` from after `sent_at`."""
        self.until = sent_at + self.ms / 1000 * 0.9

    def forget(self) -> None:
        """Not ours any more (lost, handed over, or Redis lost its data)."""
        self.token = ""
        self.until = 0.0
        self.wanted = False

    def lose(self) -> None:
        """Found lost (a commit refused, a renewal failed): forgotten here,
        and given up in Redis, should it still be ours there (a worker that
        asked need not wait for it to run out). Either way it is said on
        ``wants``, which wakes this worker's stream reader if it is reading
        only that stream, as a holder does (`ws_sync.redis_replica`)."""
        if self.token:
            self._hand_over()

    async def start(self) -> None:
        """Read on from the asks and grants made from now on."""
        last = await self.bp.client.xrevrange(self.wants, count=1)
        if last:
            self.wants_seen = last[0][0]

    # ------------------------------------------------------------------ #
    # taking and leaving

    async def take(self) -> int:
        """Make the lease ours for a handler; the version to catch up to."""
        handing = self._handing
        if handing is not None and not handing.done():
            await asyncio.wait([handing])
        self.busy = True
        try:
            if self.held() and self.until - time.monotonic() >= self.ms / 2000:
                return self.version  # parked here since: nobody committed
            return await self._ask()
        except BaseException:
            self.busy = False
            raise

    async def _ask(self) -> int:
        token = self.token or f"{self.bp.worker}:{next(self._tokens)}"
        script = self.bp.script("lease", scripts.LEASE)
        args = [token, self.ms, self.bp.key("worker", ""), WANT_MS, 0]
        keys = [self.key, self.hash, self.want, self.wants]
        deadline = time.monotonic() + ACQUIRE_TIMEOUT
        wait = 0.005
        granted = asyncio.get_running_loop().create_future()
        self._asking[token] = granted
        try:
            while True:
                sent = time.monotonic()
                try:
                    got, wanted = await script(keys=keys, args=args)
                except Exception as e:
                    if not is_connection_error(e):
                        raise
                    self.bp.counters["unavailable"] += 1
                    raise SharedWriteError(f"{self.name}: {UNAVAILABLE}") from None
                if got == -1:
                    raise SharedWriteError(f"{self.name}: {UNAVAILABLE}")
                if got < 0:
                    self.forget()
                    self.contended = time.monotonic()
                    if time.monotonic() > deadline:
                        raise SharedWriteError(f"{self.name}: busy for {ACQUIRE_TIMEOUT}s; retry")
                    with contextlib.suppress(TimeoutError):
                        got = await asyncio.wait_for(asyncio.shield(granted), wait)
                    wait = min(wait * 2, 0.1) * (0.75 + random.random() / 2)
                    args[-1] = 1  # asked again: announced again, should the holder have missed it
                    if got < 0:
                        continue
                if not self.token:  # an ask seen meanwhile stands
                    self.wanted = self.wanted or bool(wanted)
                    self.streak = 0
                self.token = token
                self.extended(sent)
                self.version = max(self.version, got)
                return got
        finally:
            self._asking.pop(token, None)

    def done(self, waiting: bool) -> None:
        """The handler ended (`waiting`: another one is queued here): keep the
        lease for it, park it, or let it go to a worker that asked."""
        self.busy = False
        if self._renewal is not None:
            self._renewal.cancel()
            self._renewal = None
        if not self.token:
            return
        if self.wanted:
            if waiting and self.streak < BATCH:
                self.streak += 1
                return
            self._hand_over()
        elif not waiting and time.monotonic() - self.contended < CONTENDED_S:
            self._hand_over()  # released, for the next asker to take at once

    def _hand_over(self) -> None:
        token = self.token
        self.forget()
        self._handing = _spawn(self.bp, self._give(token))

    async def _give(self, token: str) -> None:
        with contextlib.suppress(Exception):
            await self.bp.script("handoff", scripts.HANDOFF)(
                keys=[self.key, self.hash, self.want, self.wants], args=[token, self.ms]
            )

    def keep(self) -> asyncio.TimerHandle:
        """Keep the lease while a handler runs: renewed from a third of the
        lease on (most handlers are over long before, and cost no task)."""
        loop = asyncio.get_running_loop()
        return loop.call_later(self.ms / 3000, self._renewing, self.token)

    def _renewing(self, token: str) -> None:
        if self.token == token and self.busy:
            self._renewal = _spawn(self.bp, self._renew(token))

    async def _renew(self, token: str) -> None:
        """Renew until the handler ends or the lease is lost (ends by itself
        then, even if a cancellation was swallowed by redis-py)."""
        script = self.bp.script("renew", scripts.RENEW)
        with contextlib.suppress(Exception):
            while self.token == token and self.busy:
                sent = time.monotonic()
                if not await script(keys=[self.key], args=[token, self.ms]):
                    self.lose()
                    return
                self.extended(sent)
                await asyncio.sleep(self.ms / 3000)

    async def drop(self) -> None:
        """Give the lease up (this worker stops)."""
        token = self.token
        self.forget()
        if token:
            with contextlib.suppress(Exception):
                await self._give(token)

    # ------------------------------------------------------------------ #
    # what the stream reader sees on ``wants``

    def seen(self, entry_id: str, fields: dict[str, Any]) -> None:
        """An entry of ``wants``: an ask (``w``), a grant (``g``, with the
        version ``v``), or a lease gone from its holder (``x``: let go, found
        lost, or taken from a worker that stopped sending heartbeats)."""
        self.wants_seen = entry_id
        gone = fields.get("x")
        if gone is not None:
            if gone == self.token:
                self.forget()
            return
        asker = fields.get("w")
        if asker is not None:
            if asker.partition(":")[0] != self.bp.worker:
                self.wanted = True
                self.contended = time.monotonic()
                if self.token and not self.busy:
                    self._hand_over()
            return
        granted = self._asking.get(fields.get("g", ""))
        if granted is not None and not granted.done():
            granted.set_result(int(fields.get("v") or 0))


def _spawn(bp: RedisBackplane, work: Any) -> asyncio.Future[None]:
    pending: asyncio.Future[None] = asyncio.ensure_future(work)
    bp._background.add(pending)
    pending.add_done_callback(bp._background.discard)
    return pending


def is_connection_error(e: BaseException) -> bool:
    from redis.exceptions import ConnectionError, TimeoutError

    return isinstance(e, ConnectionError | TimeoutError | OSError)
