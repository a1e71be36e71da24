"""One worker's replica of an object kept in Redis, in the one order of commits.

Per shared object `key` (under the prefix, ``ws-sync:`` by default):

- ``obj:{key}``, a hash: ``epoch`` (one per deployment's line of versions),
  ``v`` (the version), ``state`` and ``state_v`` (a snapshot, as JSON, and
  its version);
- ``obj:{key}:log``, a stream: entry ``{v}-0`` holds the frame of commit `v`
  (the `_PATCH` every client gets, with its ``"v"`` and ``"ack"``);
- ``obj:{key}:lease``, ``:want`` and ``:wants``: whose turn it is to change
  the object (`ws_sync.redis_lease`).

A commit is a Lua compare-and-set: it is appended only if the version is still
the one the change was made on and no other worker holds the lease. Only then
does any client see it: the committing worker delivers it at once if it
directly follows what it has delivered, and every other worker reads the
stream and delivers its entries in order. Commits and stream reads go over
connections of the object's own (`ws_sync.redis_link`); a commit is written
from the step that made the change. A worker's `_SET` is the committed
state at the version it has delivered, never a change still on its way.

An action or a client write on a shared object runs holding the lease, after
this worker has delivered every commit up to the version the lease was
granted at, and commits before the action's answer goes out. So
read-modify-write code (``self.counter += 1``) is serializable across
workers. The lease stays with the worker until another one asks for it, so a
run of handlers on one worker costs one round trip each (the commit, which
renews the lease), plus one stream read per other worker.

Every `SNAPSHOT_EVERY` commits the committing worker stores the state; the
stream keeps `HISTORY` entries before it for resume. A worker loads the
snapshot and the entries after it, and also the history, so a client resumes
with the commits it missed on any worker (the epoch is the deployment's).

When Redis is unreachable, writes to shared objects fail with `_ERROR` at once
and change nothing; workers retry with backoff and catch up. If Redis comes
back empty, the first worker to notice stores its state under a new epoch,
and the others load it and send their clients `_SET`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic_core import from_json, to_json

from . import jsondoc, wire
from . import redis_scripts as scripts
from .commit import CommitLog
from .limits import Limits
from .recent import ELSEWHERE, RECENT_IDS, RUNNING, RanElsewhere
from .redis_lease import UNAVAILABLE, Lease, is_connection_error
from .redis_link import Link, entries
from .shared import SharedStateError, SharedWriteError, load_state
from .validation import apply_patch

if TYPE_CHECKING:
    from .redis_backplane import RedisBackplane
    from .shared import Shared
    from .sync import Sync

logger = logging.getLogger("ws_sync")

SNAPSHOT_EVERY = 64
"""Commits between snapshots of a shared object's state."""
HISTORY = 256
"""Stream entries kept before the snapshot, for clients that resume."""
SETTLE_TIMEOUT = 10.0
"""How long a commit may take to come back from the stream."""
BLOCK_MS = 1000
"""A stream read's wait; after it, the object's hash is checked."""
READ_COUNT = 512
"""Stream entries read at most at once."""
IN_DOUBT = (
    "the shared state became unreachable while this change was being committed; "
    "if it was, every client gets it once the state is reachable again"
)

_TRUSTED = Limits(max_patch_ops=1 << 62, max_copy_nodes=1 << 62)
"""A commit's ops were checked where they were made: no client's limits."""

MAX_KEPT_ANSWER = 1 << 16
"""Characters of an answer kept in Redis for a retry on another worker; a
bigger one is not kept (such a retry is told its result was lost)."""


@dataclass(eq=False)
class _Proposal:
    v: int
    frame: str
    token: str
    origin: str
    done: asyncio.Future[None]
    call: str = ""
    """The id (as JSON) of the call whose handler made this change, if any."""
    exclude: Any = None
    reply: str | None = None
    sent: bool = False
    doubt: bool = False
    """Sent, but the connection failed before the answer: Redis may have run it."""
    sent_at: float = 0.0  # monotonic
    made: float = field(default_factory=time.perf_counter)


class _Hold:
    __slots__ = ("active", "replica")

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self.active = True


_holding: ContextVar[_Hold | None] = ContextVar("ws_sync_redis_hold", default=None)


class ReplicaLog(CommitLog):
    """A shared object's log in one worker: `version` counts the commits
    proposed here too, `delivered` only those that came back from Redis."""

    __slots__ = ("delivered", "doc", "replica")
    local = False

    def __init__(self, replica: Replica, epoch: str, version: int, doc: dict[str, Any]) -> None:
        super().__init__()
        self.replica = replica
        self.epoch = epoch
        self.version = version
        self.delivered = version
        self.doc = doc
        """The committed state at `delivered`, as the clients hold it."""

    def append(self, frame: str) -> None:
        self.version += 1
        self.replica.propose(self.version, frame)

    def restart(self) -> None:
        raise SharedWriteError(f"{self.replica.key}: a value that is not JSON cannot be shared")

    def route(self, frame: str, exclude: Any = None, reply: str | None = None) -> None:
        proposal = self.replica.proposals[-1]
        proposal.exclude = exclude
        proposal.reply = reply

    def set_frame(self, key: str, **fields: Any) -> str:
        return wire.encode_with(
            wire.set_event(key), self.doc, v=self.delivered, epoch=self.epoch, **fields
        )

    def since(self, epoch: str, version: int) -> list[str] | None:
        if epoch != self.epoch or not 0 <= version <= self.delivered:
            return None
        missed = self.delivered - version
        if missed > len(self._frames):
            return None
        return self._frames[len(self._frames) - missed :] if missed else []

    def record(self, frame: str) -> None:
        """A delivered commit enters the history."""
        self.delivered += 1
        self._frames.append(frame)
        self._chars += len(frame)
        if len(self._frames) > self.max_commits or self._chars > self.max_chars:
            self._trim()


@contextlib.asynccontextmanager
async def locked(handle: Shared[Any]) -> AsyncIterator[Any]:
    obj = await handle.ready()
    replica: Replica = obj.sync.gate
    async with replica.hold():
        yield obj


class Replica:
    """One worker's copy of one shared object, kept in step with Redis."""

    def __init__(
        self,
        backplane: RedisBackplane,
        key: str,
        hash_key: str,
        handle: Shared[Any] | None = None,
        ttl_ms: int = 0,
        record: str | None = None,
    ) -> None:
        self.bp = backplane
        self.handle = handle
        self.record = record or hash_key
        """A key whose TTL each commit renews with the object's (a session's record)."""
        self.key = key
        self.hash = hash_key
        self.solo = handle is None
        """A session's object: one worker writes it, and delivers its own
        commits once Redis has them (no stream reader, no lease)."""
        self.ttl_ms = ttl_ms
        self._detached = False
        self.stream = self.hash + ":log"
        self.answers = self.hash + ":answers"
        """Answers of the last `RECENT_IDS` calls that committed, by call id."""
        self.lease = Lease(backplane, self.hash, key)
        self.proposals: deque[_Proposal] = deque()
        self.sync: Sync | None = None
        self.log: ReplicaLog | None = None
        self.behind = 0
        self._local = asyncio.Lock()
        self._queued = 0
        self._call = ""  # the call whose handler runs now, as JSON (see `act`)
        self._committed_calls: set[str] = set()  # whose answers `keep_answer` keeps
        self._origins = itertools.count()
        self._progress = asyncio.Event()
        self._committer: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._commits: Link | None = None  # a shared object's own connections (`redis_link`)
        self._reads: Link | None = None
        self._reload_at: int | None = None
        self._obj: Any = None
        self._stopping = False

    # ------------------------------------------------------------------ #
    # loading

    async def open(self) -> Any:
        assert self.handle is not None
        obj = self.handle.build()
        await self.adopt(obj)
        from .redis_backplane import HEARTBEAT_MS  # alive before it takes a lease

        await self.bp.client.set(self.bp.key("worker", self.bp.worker), 1, px=HEARTBEAT_MS)
        await self.lease.start()
        self._commits, self._reads = Link(self.bp.client), Link(self.bp.client)
        self._reader = asyncio.ensure_future(self._read())
        return obj

    async def adopt(self, obj: Any) -> None:
        """Take `obj` (just made by its factory) as this replica's object:
        store its state if Redis has none, else load the stored one into it."""
        sync = obj.sync
        create = self.bp.script("create", scripts.CREATE)
        epoch = secrets.token_hex(4)
        state = sync.state()
        made = await create(
            keys=[self.hash, self.stream], args=[epoch, to_json(state).decode(), 0, self.ttl_ms]
        )
        if made:
            log = ReplicaLog(self, epoch, 0, state)
        else:
            for _ in range(10):
                fetched = await self._fetch(sync)
                migrated = await self._migrate(fetched)
                if migrated is not None:
                    break
            if migrated is None:
                raise SharedStateError(f"{self.key}: the state kept changing while migrating")
            log = migrated
            load_state(sync, log.doc)
        self._install(obj, sync, log)

    def _install(self, obj: Any, sync: Sync, log: ReplicaLog) -> None:
        log.max_commits, log.max_chars = sync.log.max_commits, sync.log.max_chars
        if not self.solo:
            self._obj = obj  # held: the sync holds it only weakly
        self.sync = sync
        self.log = log
        sync.log = log
        sync.gate = self

    async def _fetch(self, sync: Sync) -> ReplicaLog:
        """The stored state and history: snapshot, then the commits after it."""
        r = self.bp.client
        h = await r.hgetall(self.hash)
        if not h:
            raise SharedStateError(f"{self.key}: no stored state")
        state_v = int(h["state_v"])
        doc = from_json(h["state"])
        low = max(1, state_v - HISTORY)
        entries = await r.xrange(self.stream, min=f"{low}-0", max="+")
        log = ReplicaLog(self, h["epoch"], 0, doc)
        log.max_commits, log.max_chars = sync.log.max_commits, sync.log.max_chars
        frames = [(int(i.partition("-")[0]), f["f"]) for i, f in entries]
        for _, fields in entries:
            if fields.get("c"):  # a call sent again to this worker is answered, not run
                _ran_elsewhere(sync, fields["c"])
        expected = frames[0][0] if frames else state_v + 1
        if expected > state_v + 1:
            raise SharedStateError(f"{self.key}: stored commits begin after the snapshot")
        version = state_v
        for v, frame in frames:
            if v != expected:
                raise SharedStateError(f"{self.key}: stored commits are not contiguous at {v}")
            expected += 1
            if v > state_v:
                _apply(doc, from_json(frame))
                version = v
        kept = [frame for v, frame in frames if v <= version]
        log.version = log.delivered = version - len(kept)
        for frame in kept:
            log.record(frame)
            ack = from_json(frame).get("ack")
            if ack is not None:  # a write sent again to this worker is answered, not applied
                sync.committed_write(ack, log.delivered)
        log.version = log.delivered
        return log

    async def _migrate(self, log: ReplicaLog) -> ReplicaLog | None:
        """The stored state through the app's `migrate` hook; a state it
        changes is stored under a new epoch (clients get `_SET`), once.
        None if it changed meanwhile (fetch again)."""
        migrate = self.handle.migrate if self.handle is not None else None
        if migrate is None:
            return log
        doc = migrate(from_json(to_json(log.doc)))
        if doc == log.doc:
            return log
        epoch = secrets.token_hex(4)
        stored = await self.bp.script("migrate", scripts.MIGRATE)(
            keys=[self.hash, self.stream],
            args=[log.epoch, log.delivered, to_json(doc).decode(), epoch],
        )
        if not stored:
            return None
        fresh = ReplicaLog(self, epoch, log.delivered, doc)
        fresh.max_commits, fresh.max_chars = log.max_commits, log.max_chars
        return fresh

    async def _reload(self, announce: bool = True) -> None:
        """Take the stored state whole (a gap, another epoch, lost data)."""
        sync, old = self.sync, self.log
        assert sync is not None and old is not None
        log = await self._fetch(sync)
        self.lease.forget()
        self.lease.version = 0
        self._fail_all(SharedWriteError(f"{self.key}: {UNAVAILABLE}"))
        self.log = log
        sync.log = log
        load_state(sync, log.doc)
        self._progress.set()
        self._progress = asyncio.Event()
        if announce:
            sync.publish(log.set_frame(sync.key))

    async def stop(self) -> None:
        self._stopping = True
        await self.lease.drop()
        tasks = [t for t in (self._reader, self._committer) if t is not None]
        for task in tasks:
            task.cancel()  # a blocked read may swallow it: the flag ends the loop
        if tasks:
            await asyncio.wait(tasks, timeout=BLOCK_MS / 1000 + 2)
        for link in (self._commits, self._reads):
            if link is not None:
                with contextlib.suppress(Exception):
                    await link.close()
        self._fail_all(SharedWriteError(f"{self.key}: the backplane was closed"))

    # ------------------------------------------------------------------ #
    # reading the stream: the one order every worker delivers in

    async def _read(self) -> None:
        link = self._reads
        assert link is not None
        wants = self.lease.wants
        delay = 0.05
        check = False
        while not self._stopping:
            try:
                if check:
                    await self._check()
                    check = False
                assert self.log is not None
                block = self._holding_for()
                if block:  # nobody else can commit: only asks can come
                    streams: tuple[Any, ...] = ("STREAMS", wants, self.lease.wants_seen)
                else:
                    block = BLOCK_MS
                    streams = ("STREAMS", self.stream, wants)
                    streams += (f"{self.log.delivered}-0", self.lease.wants_seen)
                # over the object's own connection (`ws_sync.redis_link`)
                read = ("XREAD", "COUNT", READ_COUNT, "BLOCK", block, *streams)
                found = entries(await link.call(*read, wait=block / 1000))
                if not self.bp.connected:
                    self.bp.connected = True
                    self.bp.counters["reconnects"] += 1
                delay = 0.05
                if not found:
                    check = True
                    continue
                gap = False
                for name, items in found:
                    if name == wants:
                        for entry_id, fields in items:
                            self.lease.seen(entry_id, fields)
                        continue
                    for entry_id, fields in items:
                        v = int(entry_id.partition("-")[0])
                        if not self._deliver(v, fields["f"], fields.get("o", ""), fields.get("c")):
                            gap = True
                            break
                    if len(items) < READ_COUNT:
                        self.behind = 0  # read to the end of the stream
                if gap:
                    await self._reload()
                self._progress.set()
                self._progress = asyncio.Event()
                await self._after_delivery()
                await asyncio.sleep(0)  # the frames go out to clients before the next read
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if is_connection_error(e):
                    if self.bp.connected:
                        logger.warning("%s: Redis unreachable (%s); retrying", self.key, e)
                    self.bp.connected = False
                    if self._commits is not None:
                        self._commits.forget_idle()
                    self._fail_unsent(SharedWriteError(f"{self.key}: {UNAVAILABLE}"))
                else:
                    logger.exception("%s: reading the shared object's commits failed", self.key)
                check = True
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)

    def _holding_for(self) -> int:
        """Milliseconds this worker surely holds the lease and has every
        commit (0 if not): no other worker can commit meanwhile, so the
        reader waits for asks only, and this worker's own commits, which it
        delivers from their answers, do not wake it a second time. The lease
        going elsewhere, or found lost, is said on ``wants`` too
        (`ws_sync.redis_lease`), and wakes the reader."""
        lease, log = self.lease, self.log
        if not lease.token or log is None or log.delivered < lease.version or self.behind:
            return 0
        if any(p.doubt for p in self.proposals):
            return 0  # only the stream tells what became of it
        left = int((lease.until - time.monotonic()) * 1000)
        return min(left, BLOCK_MS) if left > 0 else 0

    async def _check(self) -> None:
        """After a quiet spell or an error: is Redis still holding our line?"""
        assert self.log is not None and self.sync is not None
        r = self.bp.client
        epoch, v = await r.hmget(self.hash, ["epoch", "v"])
        doubt = next((p for p in self.proposals if p.doubt), None)
        if doubt is not None and epoch == self.log.epoch and int(v) < doubt.v:
            self._fail_all(SharedWriteError(f"{self.key}: {UNAVAILABLE}"))  # it never ran
        if epoch is None:  # Redis lost its data: store ours under a new epoch
            state = to_json(self.log.doc).decode()
            made = await self.bp.script("create", scripts.CREATE)(
                keys=[self.hash, self.stream],
                args=[secrets.token_hex(4), state, self.log.delivered, self.ttl_ms],
            )
            logger.warning("%s: shared state was missing in Redis; stored=%s", self.key, made)
            await self._reload()
        elif epoch != self.log.epoch or int(v) < self.log.delivered:
            await self._reload()
        self.behind = max(0, int(v or 0) - self.log.delivered)

    def _deliver(self, v: int, frame: str, origin: str = "", call: str | None = None) -> bool:
        """Commit `v` to this worker's clients; False if it does not follow
        the last one (the caller reloads). The frame goes out first: the
        clients wait for it, while this worker's copies can follow."""
        log, sync = self.log, self.sync
        assert log is not None and sync is not None
        if v <= log.delivered:
            return True
        if v != log.delivered + 1:
            return False
        proposals = self.proposals
        own = proposals[0] if proposals and proposals[0].origin == origin else None
        if own is not None:  # its commit call may not have returned yet
            proposals.popleft()
            sync.publish(frame, own.exclude)
            if own.reply is not None and own.exclude is not None and own.exclude.is_connected:
                own.exclude.send_frame(own.reply)
            message = from_json(frame)
            _apply(log.doc, message)
            log.record(frame)
            self.bp.counters["lag_seconds"] = time.perf_counter() - own.made
            if not own.done.done():
                own.done.set_result(None)
            if self._reload_at is not None and log.delivered >= self._reload_at:
                self._reload_at = None
                self._restore()
        else:
            sync.publish(frame)
            message = from_json(frame)
            _apply(log.doc, message)
            log.record(frame)
            log.version = log.delivered
            if proposals:  # the object goes back to the committed state, this one included
                self._fail_all(SharedWriteError(f"{self.key}: another change came first; retry"))
            else:
                self._take(from_json(frame))  # its own values: none shared with the doc
            if call:  # that call ran on another worker: never here too
                _ran_elsewhere(sync, call)
        ack = message.get("ack")
        if ack is not None:
            sync.committed_write(ack, v)
        self.bp.counters["delivered"] += 1
        if own is not None and v % SNAPSHOT_EVERY == 0:
            self._snapshot_due = v
        return True

    _snapshot_due: int | None = None

    async def _after_delivery(self) -> None:
        due, self._snapshot_due = self._snapshot_due, None
        if due is None or self.log is None:
            return
        log = self.log
        with contextlib.suppress(Exception):
            await self.bp.script("snapshot", scripts.SNAPSHOT)(
                keys=[self.hash, self.stream],
                args=[log.delivered, to_json(log.doc).decode(), log.epoch, HISTORY],
            )

    def _take(self, message: dict[str, Any]) -> None:
        """Another worker's commit, into this worker's object."""
        sync, log = self.sync, self.log
        assert sync is not None and log is not None
        stray = sync.collect()  # changed here outside a handler or lock(): lost
        if stray:
            logger.warning("%s: changed outside lock(); discarded for a commit", self.key)
            self._restore()
            return
        if message.get("type", "").startswith("_SET"):
            load_state(sync, log.doc)
            return
        ops = message.get("data") or []
        try:  # the ops themselves, validated as they land: costs what the change does
            apply_patch(sync, ops, _TRUSTED)
        except Exception:  # e.g. a read-only attribute: clients may not write it
            sync.collect()
            heads = {_head(op.get("path", "")) for op in ops}
            heads |= {_head(op["from"]) for op in ops if "from" in op}
            load_state(sync, log.doc, heads)  # the attributes it touched, whole
        else:
            sync.collect()  # applied: not a change of this worker's to commit

    def _restore(self) -> None:
        """The object back to the committed state (a change that was refused)."""
        sync, log = self.sync, self.log
        assert sync is not None and log is not None
        sync.collect()
        sync._stale = False  # the committed state is JSON: what was not is gone
        load_state(sync, log.doc)
        log.version = log.delivered + sum(1 for p in self.proposals if p.sent)

    # ------------------------------------------------------------------ #
    # committing

    def propose(self, v: int, frame: str) -> None:
        loop = asyncio.get_running_loop()
        origin = f"{self.bp.worker}:{next(self._origins)}"
        token = self.lease.token if self.lease.held() else ""
        proposal = _Proposal(v, frame, token, origin, loop.create_future(), self._call)
        self.proposals.append(proposal)
        if self._call:
            if len(self._committed_calls) >= RECENT_IDS:  # answers never asked to be kept
                self._committed_calls.clear()
            self._committed_calls.add(self._call)
        if self._committer is None or self._committer.done():
            written = proposal if self._write_now(proposal) else None
            self._committer = loop.create_task(self._commit_all(written))

    def _commit_of(self, proposal: _Proposal) -> tuple[list[str], list[Any]]:
        """The keys and arguments of the COMMIT script for `proposal`."""
        assert self.log is not None
        keys = [self.hash, self.stream, self.lease.key, self.record]
        args = [
            proposal.v - 1,
            proposal.frame,
            proposal.origin,
            proposal.token,
            self.log.epoch,
            self.ttl_ms,
            self.bp.lease_ms,
            proposal.call,
        ]
        return keys, args

    def _write_now(self, proposal: _Proposal) -> bool:
        """Write the commit at once, from the step that made the change (the
        handler's ``sync()``), not a turn of the event loop later: the other
        workers' clients wait for it. Over the object's own link, when idle."""
        link = self._commits
        if link is None:
            return False
        keys, args = self._commit_of(proposal)
        try:
            if not link.send("EVALSHA", link.script(scripts.COMMIT), len(keys), *keys, *args):
                return False
        except Exception:  # never the handler's failure: the committer sends it instead
            logger.exception("%s: writing a commit failed", self.key)
            return False
        proposal.sent = True
        proposal.sent_at = time.monotonic()
        return True

    async def _written(self, proposal: _Proposal) -> Any:
        """The answer to a commit `_write_now` wrote (run again, loaded, if
        Redis did not know the script: it did not run)."""
        from redis.exceptions import NoScriptError

        assert self._commits is not None
        try:
            return await self._commits.answer()
        except NoScriptError:
            return await self._commits.run(scripts.COMMIT, *self._commit_of(proposal))

    async def _commit_all(self, written: _Proposal | None = None) -> None:
        assert self.log is not None
        while True:
            answer: Awaitable[Any]
            if written is not None:
                proposal, written = written, None
                answer = self._written(proposal)
            else:
                unsent = next((p for p in self.proposals if not p.sent), None)
                if unsent is None:
                    return
                proposal = unsent
                if self._detached:
                    with contextlib.suppress(Exception):
                        await self._reseed()
                proposal.sent_at = time.monotonic()
                proposal.sent = True  # on its way: its answer, or the stream, says what it became
                answer = self._commit(*self._commit_of(proposal))
            try:
                code, _ = await answer
            except Exception as e:
                self.bp.counters["unavailable"] += 1
                if self.solo and is_connection_error(e):
                    self._alone(proposal)
                    continue
                logger.warning("%s: commit failed: %s", self.key, e)
                if is_connection_error(e):  # the stream will tell (see `_check`)
                    proposal.doubt = True
                else:
                    proposal.sent = False
                self._fail_unsent(SharedWriteError(f"{self.key}: {UNAVAILABLE}"))
                return
            if code == 1:
                self.bp.counters["commits"] += 1
                lease = self.lease
                if proposal.token and proposal.token == lease.token:
                    lease.extended(proposal.sent_at)
                    lease.version = max(lease.version, proposal.v)
                if self.solo or proposal.v == self.log.delivered + 1:  # nothing before it
                    self._deliver(proposal.v, proposal.frame, proposal.origin)
                    self._progress.set()
                    self._progress = asyncio.Event()
                    await self._after_delivery()
                continue
            if self.solo:  # the session was also written elsewhere: the latest state wins
                self._alone(proposal)
                continue
            self.bp.counters["conflicts"] += 1
            self.lease.lose()
            proposal.sent = False
            why = "another worker holds it" if code == -2 else "another change came first"
            self._fail_unsent(SharedWriteError(f"{self.key}: not committed ({why}); retry"))
            return

    def _commit(self, keys: list[str], args: list[Any]) -> Awaitable[Any]:
        """The compare-and-set: over the object's own link, or for a session's
        object (one of many, rarely contended) through the pool."""
        if self._commits is not None:
            return self._commits.run(scripts.COMMIT, keys, args)
        return self.bp.script("commit", scripts.COMMIT)(keys=keys, args=args)  # type: ignore[no-any-return]

    def _alone(self, proposal: _Proposal) -> None:
        """A session's commit Redis did not take: the session goes on here,
        and its whole state is stored again at the next commit."""
        proposal.sent = True
        self._detached = True
        self._deliver(proposal.v, proposal.frame, proposal.origin)

    async def _reseed(self) -> None:
        log = self.log
        assert log is not None
        await self.bp.script("reseed", scripts.RESEED)(
            keys=[self.hash, self.stream],
            args=[log.epoch, to_json(log.doc).decode(), log.delivered, self.ttl_ms],
        )
        self._detached = False

    def _fail_unsent(self, error: Exception) -> None:
        """Drop the changes not yet in Redis; the object goes back to the
        committed state (once the ones already in Redis are delivered)."""
        unsent = [p for p in self.proposals if not p.sent]
        if not unsent:
            return
        for p in unsent:
            self.proposals.remove(p)
            if not p.done.done():
                p.done.set_exception(error)
                p.done.exception()  # retrieved: the waiter, if any, raises it
        if self.sync is not None:
            self.sync._writes = None
        if any(p.sent for p in self.proposals):
            assert self.log is not None
            self._reload_at = self.proposals[-1].v
            self.log.version = self._reload_at
        else:
            self._restore()

    def _fail_all(self, error: Exception) -> None:
        for p in self.proposals:
            p.sent = False
        self._reload_at = None
        self._fail_unsent(error)

    # ------------------------------------------------------------------ #
    # the gate: one handler at a time across the deployment

    async def run(self, call: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        """An action: run it holding the lease, committed before it returns."""
        async with self.hold():
            return await call(*args, **kwargs)

    async def act(self, call_id: Any, body: Callable[[], Awaitable[Any]]) -> Any:
        """Call `call_id` (a client's ``$id``, or None): `body` run holding the
        lease, after catching up, unless a commit of another worker says the
        call ran there (`RanElsewhere`). Its commits carry the id, so every
        worker, and every later load, knows it ran."""
        held = _holding.get()
        if call_id is None or (held is not None and held.active and held.replica is self):
            async with self.hold():
                return await body()
        assert self.sync is not None
        try:
            async with self.hold():
                if self.sync.calls.get(call_id) == ELSEWHERE:
                    raise RanElsewhere(call_id)
                self._call = to_json(call_id).decode()
                return await body()
        finally:
            self._call = ""

    def keep_answer(self, call_id: Any, frame: str) -> None:
        """Keep the answer of a call that committed here, for a retry that
        reaches another worker (`answer_of`); in the background, after it was
        sent: a worker that stops before that leaves the retry `ws_sync.recent.LOST_ANSWER`."""
        call = to_json(call_id).decode()
        if call not in self._committed_calls:
            return  # nothing of it was committed: a retry may run it
        self._committed_calls.discard(call)

        async def keep() -> None:
            with contextlib.suppress(Exception):
                await self.bp.script("keep", scripts.KEEP)(
                    keys=[self.answers, self.answers + ":order"],
                    args=[call, frame, RECENT_IDS, self.ttl_ms],
                )

        if len(frame) <= MAX_KEPT_ANSWER:
            pending = asyncio.ensure_future(keep())
            self.bp._background.add(pending)
            pending.add_done_callback(self.bp._background.discard)

    async def answer_of(self, call_id: Any) -> str | None:
        """The answer another worker kept for `call_id`, or None."""
        try:
            found = await self.bp.client.hget(self.answers, to_json(call_id).decode())
        except Exception:
            return None
        return found if isinstance(found, str) else None

    async def write(
        self, apply: Callable[..., Any], *args: Any, waited: list[float] | None = None
    ) -> None:
        """A client's write, applied holding the lease and committed. `waited`
        gets the seconds spent waiting for the turn and the commit: not work
        done for the client (`Connection.charge`)."""
        start = time.perf_counter()
        busy = 0.0
        try:
            async with self.hold():
                began = time.perf_counter()
                apply(*args)
                busy = time.perf_counter() - began
        finally:
            if waited is not None:
                waited.append(time.perf_counter() - start - busy)

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        held = _holding.get()
        if held is not None and held.active and held.replica is self:
            yield
            return
        if self.solo:
            async with self._local:
                try:
                    yield
                finally:
                    self._flush()
                    await self._settled()
            return
        self._queued += 1
        try:
            await self._local.acquire()
        finally:
            self._queued -= 1
        try:
            lease = self.lease
            version = await lease.take()
            hold = _Hold(self)
            reset = _holding.set(hold)
            renewing = lease.keep()
            try:
                await self._caught_up(version)
                try:
                    yield
                finally:
                    self._flush()
                    await self._settled()
            finally:
                hold.active = False
                _holding.reset(reset)
                lease.done(self._queued > 0)
                renewing.cancel()
        finally:
            self._local.release()

    async def _caught_up(self, version: int) -> None:
        """Wait until this worker has delivered every commit up to `version`."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while self.log is not None and self.log.delivered < version:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SharedWriteError(f"{self.key}: {UNAVAILABLE}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), left)

    def _flush(self) -> None:
        sync = self.sync
        if sync is None:
            return
        try:
            sync.flush()
        except Exception:
            logger.exception("%s: committing the changes of a handler failed", self.key)
            self._restore()

    async def _settled(self) -> None:
        """Wait until every change proposed here is delivered (or refused)."""
        if not self.proposals:
            return
        last = self.proposals[-1]
        if last.done.done():
            last.done.result()  # its failure, if it failed
            return
        try:
            await asyncio.wait_for(asyncio.shield(last.done), SETTLE_TIMEOUT)
        except TimeoutError:
            why = IN_DOUBT if any(p.doubt for p in self.proposals) else UNAVAILABLE
            raise SharedWriteError(f"{self.key}: {why}") from None


def _ran_elsewhere(sync: Sync, call: str) -> None:
    call_id = from_json(call)
    if sync.calls.get(call_id) in (None, RUNNING):  # an answer made here stays
        sync.calls.put(call_id, ELSEWHERE)


def _head(path: str) -> str:
    token = path[1:].partition("/")[0]
    return token.replace("~1", "/").replace("~0", "~")


def _apply(doc: dict[str, Any], message: dict[str, Any]) -> None:
    """A committed frame, onto the committed state."""
    if message.get("type", "").startswith("_SET"):
        doc.clear()
        doc.update(message.get("data") or {})
        return
    ops = message.get("data") or []
    if ops:
        whole = jsondoc.apply(doc, ops)
        if whole is not doc:  # an op on the path "" (ws-sync makes none)
            doc.clear()
            doc.update(whole)
