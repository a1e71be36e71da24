"""Running remote tasks: concurrent, cancellable, at most one per key per object.

A task runs as its own asyncio task in the context of the session that
started it. An async generator streams each value it yields as
`_TASK_PROGRESS:<key>`; every task ends with one `_TASK_DONE:<key>`
(completed, cancelled or failed). Both go to every connected subscriber of the
object, as the object's `running_tasks` do. A task lives on when its client
disconnects (the session may resume) and is cancelled when its session closes.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from typing import TYPE_CHECKING, Any, Literal

from starlette.concurrency import iterate_in_threadpool

from . import wire
from .errors import TaskError, failure
from .invoke import invoke
from .remote import RemoteMethod
from .sync import Sync
from .threads import offloaded

if TYPE_CHECKING:
    from .session import Session

logger = logging.getLogger("ws_sync")

Status = Literal["completed", "cancelled", "failed"]


class TaskRun:
    """One running task of one object."""

    def __init__(self, session: Session, sync: Sync, method: RemoteMethod) -> None:
        self.session = session
        self.sync = sync
        self.method = method
        self.key = method.key
        self.cancel_requested = False
        self.started = False
        self.task: asyncio.Task[None] | None = None
        self.last_progress: dict[str, Any] | None = None
        self.params: dict[str, Any] = {}
        """The params by name, when the task has an `allow` (its cancel is asked too)."""

    async def main(self, func: Any, args: list[Any], kwargs: dict[str, Any]) -> None:
        self.started = True
        status: Status = "completed"
        result: Any = None
        error: dict[str, Any] | None = None
        progress = wire.task_progress_event(self.sync.key)
        try:
            if inspect.isasyncgenfunction(func):
                async for value in func(*args, **kwargs):
                    self._progress(progress, value)
            elif inspect.isgeneratorfunction(func):
                with offloaded():
                    async for value in iterate_in_threadpool(func(*args, **kwargs)):
                        self._progress(progress, value)
            else:
                result = await invoke(func, *args, **kwargs)
            if self.cancel_requested:
                status = "cancelled"
        except asyncio.CancelledError:
            status = "cancelled"
        except Exception as e:
            f = failure(e, self.session.expose_errors, f"{self.sync.key}: task {self.key!r}")
            status, error = "failed", {"error": f.message, **f.extra}
        finally:
            self.session.flush_pending()
        self._end(status, result, error)

    def _progress(self, event: str, value: Any) -> None:
        self.last_progress = {"type": self.key, "value": value}
        self.sync.broadcast(event, self.last_progress)

    def progress_frame(self) -> str | None:
        """The last progress again, for a client that (re)connects meanwhile."""
        if self.last_progress is None:
            return None
        return wire.encode(wire.task_progress_event(self.sync.key), self.last_progress)

    def _never_ran(self, task: asyncio.Task[None]) -> None:
        """Done callback: a task cancelled before its first step skips `main`."""
        if not self.started:
            self._end("cancelled", None, None)

    def _end(self, status: Status, result: Any, error: dict[str, Any] | None) -> None:
        runs = _running.get(self.sync)
        if runs is not None and runs.get(self.key) is self:
            del runs[self.key]
        self.session._runs.discard(self)
        _set_running(self.sync, self.key, False)
        note = getattr(self.session, "on_task", None)  # stand-ins for a session lack it
        if note is not None:
            note(self.sync.key, self.key, False, None)
        done: dict[str, Any] = {"type": self.key, "status": status}
        if status == "completed":
            done["result"] = result
        elif error is not None:
            done.update(error)
        event = wire.task_done_event(self.sync.key)
        try:
            frame = wire.encode(event, done)
        except wire.NonJSONValue as e:  # the result: the task failed after all
            f = failure(e, self.session.expose_errors, f"{self.sync.key}: task {self.key!r}")
            failed = {"type": self.key, "status": "failed", "error": f.message, **f.extra}
            frame = wire.encode(event, failed)
        self.sync.publish(frame)
        for s in self.sync.sessions:
            if not s.is_connected:
                s.task_ended(self.sync.key, self.key, frame)


_running: weakref.WeakKeyDictionary[Sync, dict[str, TaskRun]] = weakref.WeakKeyDictionary()


def running(sync: Sync) -> dict[str, TaskRun]:
    """The tasks running on an object, by key."""
    return dict(_running.get(sync, {}))


def _set_running(sync: Sync, key: str, on: bool) -> None:
    """Keep `sync.running_tasks` current; the core puts it in the state."""
    tasks = sync.running_tasks
    if on and key not in tasks:
        tasks.append(key)
    elif not on and key in tasks:
        tasks.remove(key)
    else:
        return
    if sync.expose_running_tasks:
        sync.flush()


def start(
    session: Session,
    sync: Sync,
    method: RemoteMethod,
    args: list[Any],
    kwargs: dict[str, Any],
    call_id: Any = None,
) -> TaskRun:
    """Start `method` on the object of `sync` (params already validated);
    `call_id` is the client's ``$id`` of the start, noted with the task."""
    runs = _running.setdefault(sync, {})
    if method.key in runs:
        raise TaskError(f"task {method.key!r} is already running")
    obj = sync.obj
    if obj is None:
        raise TaskError(f"{sync.key}: the object is gone")
    run = TaskRun(session, sync, method)
    runs[method.key] = run
    session._runs.add(run)
    _set_running(sync, method.key, True)
    run.task = asyncio.get_running_loop().create_task(
        run.main(method.bind(obj), args, kwargs), name=f"ws_sync task {sync.key} {method.key}"
    )
    run.task.add_done_callback(run._never_ran)
    handles = getattr(sync.running_tasks, "handles", None)
    if handles is not None:
        handles[method.key] = run.task
    note = getattr(session, "on_task", None)
    if note is not None:  # a backplane keeps the session: it notes the task
        note(sync.key, method.key, True, call_id)
    return run


async def cancel(sync: Sync, key: str, canceller: RemoteMethod | None) -> bool:
    """Cancel the running task `key`: through its canceller if it has one (run
    bound to the object), else `Task.cancel`. False if it was not running."""
    run = _running.get(sync, {}).get(key)
    if run is None or run.task is None or run.task.done():
        return False
    run.cancel_requested = True
    obj = sync.obj
    if canceller is not None and obj is not None:
        await invoke(canceller.bind(obj))
    else:
        run.task.cancel()
    return True


async def cancel_all(runs: list[TaskRun]) -> None:
    """Hard-cancel tasks and wait for them to end (a closing session)."""
    tasks = [r.task for r in runs if r.task is not None and not r.task.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
