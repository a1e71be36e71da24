"""User sessions kept in Redis: any worker can resume one, and tasks left
running on a worker that died are reported failed.

Per session (under the prefix): ``session:{user}:{sid}``, a hash with the
worker that serves it, the principal, and ``task:{obj}:{task}`` fields for its
running tasks; ``session:{user}:{sid}:{key}`` and its stream, one per synced
object, kept like a shared object's (`ws_sync.redis_replica`) but written by
one worker at a time, with a TTL renewed by every commit.

A session made while Redis is unreachable stays in its worker for its whole
life: it works, but its objects are not stored, and a client that moves to
another worker gets a fresh session there.

`forget_principal` deletes every stored session of a principal (a revoked
one): the user id of such a session starts with its principal's encoded
identity (`ws_sync.auth.stored_user`), so one SCAN finds them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic_core import from_json, to_json

from . import wire
from .auth import stored_user
from .redis_replica import Replica

if TYPE_CHECKING:
    from .redis_backplane import RedisBackplane

LOST_TASK = "the worker running this task stopped"


async def adopt(bp: RedisBackplane, session: Any, ids: tuple[str, str], ttl: float) -> None:
    """Keep the objects `session` was just built with in Redis, under its
    ids, for `ttl` seconds after their last change: a session already
    stored (its worker died, or the client moved) is loaded into them.
    While Redis is unreachable the session stays local (see above)."""
    if not bp.connected:
        bp.counters["local_sessions"] += 1
        return
    try:
        await _adopt(bp, session, ids, ttl)
    except Exception as e:
        if not bp.unreachable(e):
            raise
        bp.down(e)
        bp.counters["local_sessions"] += 1
        return
    bp.up()


async def _adopt(bp: RedisBackplane, session: Any, ids: tuple[str, str], ttl: float) -> None:
    ttl_ms = max(1, int(ttl * 1000))
    user, sid = ids
    record = bp.key("session", user, sid)
    stored: list[str] = [record]
    session.stored_keys = stored  # for a revocation to delete them
    fields = {"worker": bp.worker}
    principal = getattr(session, "user", None)
    if principal is not None:
        fields["principal"] = to_json(principal, fallback=str).decode()
    async with bp.client.pipeline(transaction=True) as pipe:
        pipe.hset(record, mapping=fields)
        pipe.pexpire(record, ttl_ms)
        await pipe.execute()
    for key, sync in list(session.syncs.items()):
        if sync.gate is not None or sync.obj is None:
            continue  # shared: kept already
        replica = Replica(bp, key, f"{record}:{key}", ttl_ms=ttl_ms, record=record)
        stored += _keys(replica)
        await replica.adopt(sync.obj)
    bp._beat()
    await _lost_tasks(bp, session, record)
    session.on_task = lambda obj, task, on, call: _note_task(bp, record, obj, task, on, call)


def _note_task(
    bp: RedisBackplane, record: str, obj: str, task: str, on: bool, call_id: Any
) -> None:
    """A task of the session started here (with its start's call id) or ended."""
    name = f"task:{obj}:{task}"
    r = bp.client
    if not on:
        command = r.hdel(record, name, f"call:{obj}:{task}")
    elif call_id is None:
        command = r.hset(record, name, bp.worker)
    else:
        fields = {name: bp.worker, f"call:{obj}:{task}": to_json(call_id).decode()}
        command = r.hset(record, mapping=fields)
    pending = asyncio.ensure_future(command)
    bp._background.add(pending)
    pending.add_done_callback(bp._background.discard)
    pending.add_done_callback(lambda f: f.cancelled() or f.exception())


async def _lost_tasks(bp: RedisBackplane, session: Any, record: str) -> None:
    """Tasks of the session noted by other workers: their starts are not
    run again here if the client sends them again, and each task of a worker
    that is gone gets its `_TASK_DONE` "failed" on the client's next
    connection."""
    noted = await bp.client.hgetall(record)
    for name, worker in noted.items():
        if not name.startswith("task:") or worker == bp.worker:
            continue
        obj, _, task = name[5:].partition(":")
        call = noted.get(f"call:{obj}:{task}")
        if call is not None:
            session.calls.put(from_json(call))  # handled: its outcome is the task's
        if await bp.client.exists(bp.key("worker", worker)):
            continue  # still running there
        await bp.client.hdel(record, name, f"call:{obj}:{task}")
        done = {"type": task, "status": "failed", "error": LOST_TASK}
        session.task_ended(obj, task, wire.encode(wire.task_done_event(obj), done))


async def forget_principal(bp: RedisBackplane, name: str) -> int:
    """Delete every stored session of the principal `name` (their records
    and objects); how many keys. SCANs the keyspace: its cost grows with the
    number of keys in Redis, not with the principal's sessions."""
    base = bp.key("session", stored_user(name, ""))
    pattern = _glob_escape(base) + "*"
    deleted = 0
    batch: list[str] = []
    async for key in bp.client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 500:
            deleted += await bp.client.unlink(*batch)
            batch.clear()
    if batch:
        deleted += await bp.client.unlink(*batch)
    return deleted


async def forget_sessions(bp: RedisBackplane, sessions: Iterable[Any]) -> int:
    """Delete what these sessions stored in Redis; how many keys."""
    keys = [k for s in sessions for k in getattr(s, "stored_keys", ())]
    return int(await bp.client.unlink(*keys)) if keys else 0


def _keys(replica: Replica) -> list[str]:
    """Every key `replica` may write (what a revocation deletes)."""
    lease, answers = replica.lease, replica.answers
    objects = [replica.hash, replica.stream, answers, answers + ":order"]
    return [*objects, lease.key, lease.want, lease.wants]


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
