"""Routing the events of one connection, strictly in arrival order.

Each event is handled to the end before the next is read: an action is
awaited, a task is only started. Whatever a client sends, a bad event gets one
`_ERROR` (plus, for a rejected `_SET`/`_PATCH`, a fresh `_SET:<key>`) and
changes nothing; the connection stays open. Every `_ERROR` about a frame
carries the frame's ``$id`` (as ``id``) when one could be read, and every
`_ACTION` with ``$id`` gets exactly one `_ACTION_RESULT`, whatever happened
to it, so a client never waits forever for an answer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from . import tasks, wire
from .auth import audit
from .connection import Connection, Frame, FrameRejected
from .errors import HIDDEN, Failure, failure
from .invoke import invoke
from .permissions import FORBIDDEN, allowed, named, read_refused
from .protocol import INVALID, ProtocolError, error_frame, parse, peek
from .recent import ELSEWHERE, LOST_ANSWER, RanElsewhere, Recent
from .remote import Kind, RemoteMethod
from .sync import Sync
from .validation import ClientWriteError

if TYPE_CHECKING:
    from .session import Session

Route = Callable[["Dispatcher", str, Sync, Any], Awaitable[None]]


class Dispatcher:
    """Inbound side of one connection of a session."""

    def __init__(self, session: Session, conn: Connection) -> None:
        self.session = session
        self.conn = conn
        self.bin_meta: tuple[str, dict[str, Any]] | None = None
        self.call: dict[str, Any] = {}
        """``{"id": $id}`` of the frame being handled, if it has one."""
        self.write_id: Any = None
        """The envelope's ``$id`` of the frame being handled: a versioned write's."""
        self.base: tuple[str, int] | None = None
        """The (epoch, version) that write was made on."""
        self.memories: tuple[Recent, ...] = ()
        """Where the id of the call being handled is remembered (see `_seen`)."""

    def reply(self, frame: str) -> None:
        """To the connection the event came from (not a later one)."""
        self.conn.push(frame)

    def error(
        self, event: str, message: str, errors: list[dict[str, Any]] | None = None, **extra: Any
    ) -> None:
        self.reply(error_frame(event, message, errors, **{**self.call, **extra}))

    async def receive(self) -> Frame | None:
        """The next frame within the limits; None when the connection ended."""
        while True:
            try:
                return await self.conn.receive()
            except FrameRejected as e:
                if self.conn.closing:  # closed for it: what the socket still holds is moot
                    return None
                if self.bin_meta is not None and isinstance(e.frame, bytes):
                    self._abandon(e.message)  # the bytes it announced were refused
                else:
                    self.unreadable(e.frame, INVALID, e.message)

    def unreadable(
        self, raw: Frame, event: str, message: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        """`_ERROR` for a frame that was not parsed, with its ``$id`` and, for an
        action, its `_ACTION_RESULT`, where they can be read cheaply."""
        kind, self.call = peek(raw)
        self.error(event, message, errors)
        if self.call and kind is not None and kind.startswith("_ACTION:"):
            self._action_failed(kind.partition(":")[2], Failure(message, errors or []))
        self.call = {}

    # ------------------------------------------------------------------ #
    # frames

    async def frame(self, raw: Frame) -> None:
        if isinstance(raw, bytes):
            await self._binary(raw)
            return
        if self.bin_meta is not None:
            self._abandon("_BIN_META was not followed by a binary frame")
        try:
            event, data, envelope = parse(raw, self.conn.limits.max_depth)
        except ProtocolError as e:
            self.unreadable(raw, e.event, e.message, e.errors)
            return
        if event == wire.BIN_META:
            self._bin_meta(data)
            return
        await self.event(event, data, envelope)

    def _abandon(self, message: str) -> None:
        """The call a `_BIN_META` announced will not come: it still gets its
        `_ERROR` (with its ``$id``) and, for an action, its result."""
        event, metadata = self.bin_meta or ("", {})
        self.bin_meta = None
        self.call = {"id": metadata["$id"]} if "$id" in metadata else {}
        self.error(wire.BIN_META, message)
        kind, _, key = event.partition(":")
        if self.call and kind == "_ACTION":
            self._action_failed(key, Failure(message))
        self.call = {}

    def _bin_meta(self, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            self.error(wire.BIN_META, "_BIN_META data must be {type: str, metadata: object}")
            return
        metadata = data.get("metadata")
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, dict):
            self.error(wire.BIN_META, "_BIN_META metadata must be an object")
            return
        self.bin_meta = (data["type"], metadata)

    async def _binary(self, raw: bytes) -> None:
        meta = self.bin_meta
        self.bin_meta = None
        if meta is None:
            self.error(INVALID, "binary frame without a preceding _BIN_META")
            return
        event, metadata = meta
        await self.event(event, {**metadata, "data": raw})

    # ------------------------------------------------------------------ #
    # events

    async def event(self, event: str, data: Any, envelope: dict[str, Any] | None = None) -> None:
        """Handle one event. Its ``$id`` is the envelope's (a versioned write's)
        or, for an action, the one in its data."""
        if not _answerable(envelope) or not _answerable(data):
            self.error(event, "$id must be a JSON value: not NaN or Infinity (1e309)")
            return
        if envelope is not None and "$id" in envelope:
            self.call = {"id": envelope["$id"]}
            self.write_id = envelope["$id"]
            epoch, version = envelope.get("epoch"), envelope.get("v")
            if isinstance(epoch, str) and type(version) is int:
                self.base = (epoch, version)
        elif isinstance(data, dict) and "$id" in data:
            self.call = {"id": data["$id"]}
        try:
            await self._route(event, data)
        finally:
            self.call = {}
            self.write_id = None
            self.base = None
            self.memories = ()

    async def _route(self, event: str, data: Any) -> None:
        if event == wire.HELLO:
            self.conn.greet({})  # after the state went out: nothing to resume
            return
        if event == wire.PING:  # a client checking that the connection is alive
            self.reply(wire.encode(wire.PONG, data))
            return
        handler = self.session.event_handlers.get(event)
        if handler is not None:
            await self._custom(event, handler, data)
            return
        kind, sep, key = event.partition(":")
        route = ROUTES.get(kind) if sep else None
        if route is None:
            self._refuse(event, key if kind == "_ACTION" else None, f"unknown event {event!r}")
            return
        sync = self.session.syncs.get(key)
        if sync is None or sync.obj is None:
            message = FORBIDDEN if read_refused(self.session, key) else f"unknown key {key!r}"
            self._refuse(event, key if kind == "_ACTION" else None, message)
            return
        await route(self, event, sync, data)

    def _refuse(self, event: str, action_key: str | None, message: str) -> None:
        """`_ERROR`, and the failed result an action with ``$id`` waits for."""
        self.error(event, message)
        if action_key is not None and self.call:
            self._action_failed(action_key, Failure(message))

    def _failed(self, event: str, e: Exception, context: str) -> Failure:
        """`_ERROR` about an exception (an app's one is logged, with a ref)."""
        f = failure(e, self.session.expose_errors, context)
        self.error(event, f.message, f.errors, **f.extra)
        return f

    async def _custom(self, event: str, handler: Callable[..., Any], data: Any) -> None:
        try:
            await invoke(handler, data)
        except Exception as e:
            self.session.flush_pending()
            self._failed(event, e, f"handler of {event!r}")
            return
        self.session.flush_pending()

    async def _get(self, event: str, sync: Sync, data: Any) -> None:
        self._resend(event, sync)

    def _resend(self, event: str, sync: Sync) -> None:
        """The whole state, to put the client's copy back in step."""
        frame = self.session.state_frame(sync)
        if frame is None:
            self.error(event, f"the state of {sync.key!r} cannot be sent now ({HIDDEN})")
        else:
            self.reply(frame)

    async def _write(self, event: str, sync: Sync, data: Any) -> None:
        """`_SET` / `_PATCH`: all or nothing; on rejection the client gets the
        error, then the full state to put its copy back in step."""
        apply = sync.handle_client_set if event.startswith("_SET") else sync.handle_client_patch
        start = time.perf_counter()
        waited: list[float] = []  # for a turn across the deployment: not this client's work
        try:
            if sync.gate is None:
                apply(data, self.session, self.write_id, self.base)
            else:
                args = (data, self.session, self.write_id, self.base)
                await sync.gate.write(apply, *args, waited=waited)
        except ClientWriteError as e:
            self.error(event, e.message, e.errors)
            self._resend(event, sync)
        except Exception as e:
            self._failed(event, e, f"{sync.key}: client write")
            self._resend(event, sync)
        finally:
            self.conn.charge(time.perf_counter() - start - sum(waited))

    def _method(self, event: str, kind: Kind, sync: Sync, data: Any) -> RemoteMethod | None:
        """The exposed method named by ``data["type"]``, or an `_ERROR` and None."""
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            self.error(event, "data must be an object with a string 'type'")
            return None
        found = sync.find(kind, data["type"])
        if found is None:
            noun = "action" if kind == "action" else "task"
            message = f"unknown {noun} {data['type']!r}"
            self._refuse(event, sync.key if kind == "action" else None, message)
        return found

    async def _action(self, event: str, sync: Sync, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            self._refuse(event, sync.key, "data must be an object with a string 'type'")
            return
        method = self._method(event, "action", sync, data)
        if method is None or await self._seen(event, sync):
            return
        try:
            args, kwargs = method.params(sync.camel).bind(data, self.session.limits)
            if sync.gate is not None:  # kept by a backplane: see `_gated`
                result = await self._gated(sync, method, args, kwargs)
            elif method.allow is not None and not await self._allowed(sync, method, args, kwargs):
                raise _Refused
            else:
                result = await invoke(method.bind(sync.obj), *args, **kwargs)
        except _Refused:
            self._forbid(event, sync, method)
            return
        except RanElsewhere:
            self._answer(await self._elsewhere(event, sync))
            return
        except Exception as e:
            self.session.flush_pending()  # the state first, then the answer
            f = self._failed(event, e, f"{sync.key}: action {method.key!r}")
            if self.call:
                self._kept(sync, self._action_failed(sync.key, f))
            return
        self.session.flush_pending()
        if self.call:
            self._kept(sync, self._action_done(event, sync.key, result))

    async def _gated(
        self, sync: Sync, method: RemoteMethod, args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        """An action on an object a backplane keeps: `allow` and the handler run
        in its turn across the deployment, on the state caught up with every
        commit, and the call's id goes with its commits (exactly once on any
        worker); committed before the answer goes out."""
        bound = method.bind(sync.obj)

        async def body() -> Any:
            if method.allow is not None and not await self._allowed(sync, method, args, kwargs):
                raise _Refused
            return await invoke(bound, *args, **kwargs)

        call_id = self.call["id"] if self.call and self.conn.protocol >= wire.PROTOCOL else None
        return await sync.gate.act(call_id, body)

    def _kept(self, sync: Sync, frame: str | None) -> None:
        """The answer of a call that committed on a shared object, kept where
        a retry on another worker finds it."""
        if frame is not None and sync.gate is not None and self.conn.protocol >= wire.PROTOCOL:
            sync.gate.keep_answer(self.call["id"], frame)

    async def _elsewhere(self, event: str, sync: Sync) -> str:
        """The answer to a call another worker ran and committed: the one it
        kept, else (it stopped before keeping it) an honest failure."""
        kept = await sync.gate.answer_of(self.call["id"]) if sync.gate is not None else None
        if kept is None and event.startswith("_ACTION"):
            error = {"message": LOST_ANSWER}
            kept = wire.encode(
                wire.action_result_event(sync.key), {**self.call, "ok": False, "error": error}
            )
        return kept or ""

    async def _allowed(
        self, sync: Sync, method: RemoteMethod, args: list[Any], kwargs: dict[str, Any]
    ) -> bool:
        """What the method's `allow` says of this session and these params."""
        assert method.allow is not None
        params = named(method.params(sync.camel), args, kwargs)
        return await allowed(method.allow, self.session, params)

    def _forbid(self, event: str, sync: Sync, method: RemoteMethod) -> None:
        """A call `allow` refused: audited, answered, nothing run."""
        audit(
            f"{method.kind} refused",
            self.session.user,
            key=sync.key,
            method=method.key,
        )
        if event.startswith("_ACTION"):
            self._refuse(event, sync.key, FORBIDDEN)
        elif event.startswith("_TASK_START"):
            self._answer(error_frame(event, FORBIDDEN, **self.call))  # kept for a retry
        else:
            self.error(event, FORBIDDEN)

    def _action_done(self, event: str, key: str, result: Any) -> str | None:
        try:
            frame = wire.encode(
                wire.action_result_event(key), {**self.call, "ok": True, "result": result}
            )
        except Exception as e:  # a result that is not JSON
            f = self._failed(event, e, f"{key}: encoding an action result")
            return self._action_failed(key, f)
        self._answer(frame)
        return frame

    def _action_failed(self, key: str, f: Failure) -> str:
        frame = wire.encode(
            wire.action_result_event(key), {**self.call, "ok": False, "error": f.result_error()}
        )
        self._answer(frame)
        return frame

    async def _seen(self, event: str, sync: Sync) -> bool:
        """A protocol-2 call whose id was handled before (a retry after a lost
        connection): answered again, if it has its answer yet, never run
        twice. The id is remembered by the session and by the object: a
        session without user ids ends with its connection, while a shared
        object outlives it. Protocol-1 ids may repeat across page loads, so
        they are not remembered."""
        if not self.call or self.conn.protocol < wire.PROTOCOL:
            return False
        call_id = self.call["id"]
        self.memories = (self.session.calls, sync.calls)
        for memory in self.memories:
            answer = memory.get(call_id)
            if answer is not None:
                if answer == ELSEWHERE:
                    answer = await self._elsewhere(event, sync)
                    for m in self.memories:
                        m.put(call_id, answer)
                if answer:
                    self.reply(answer)
                return True
        for memory in self.memories:
            memory.put(call_id)
        return False

    def _answer(self, frame: str) -> None:
        """The answer to the call being handled: kept for a retry, and sent
        where the call came from or, if that connection is gone meanwhile, to
        the session's current one."""
        if self.call and self.conn.protocol >= wire.PROTOCOL:
            for memory in self.memories or (self.session.calls,):
                memory.put(self.call["id"], frame)
        if self.conn.closing:
            self.session.send_frame(frame)
        else:
            self.reply(frame)

    async def _task_start(self, event: str, sync: Sync, data: Any) -> None:
        method = self._method(event, "task", sync, data)
        if method is None or await self._seen(event, sync):
            return
        try:
            args, kwargs = method.params(sync.camel).bind(data, self.session.limits)
            params = None
            if method.allow is not None:
                params = named(method.params(sync.camel), args, kwargs)
                if not await allowed(method.allow, self.session, params):
                    self._forbid(event, sync, method)
                    return
            call_id = self.call["id"] if self.call and self.conn.protocol >= wire.PROTOCOL else None
            run = tasks.start(self.session, sync, method, args, kwargs, call_id)
            if params is not None:
                run.params = params  # its cancel is asked about them
        except Exception as e:
            f = failure(e, self.session.expose_errors, f"{sync.key}: starting task {method.key!r}")
            self._answer(error_frame(event, f.message, f.errors, **{**self.call, **f.extra}))

    async def _task_cancel(self, event: str, sync: Sync, data: Any) -> None:
        method = self._method(event, "task", sync, data)
        if method is None:
            return
        canceller = sync.find("cancel", method.key)
        try:
            allow = method.allow  # asked only while the task runs: else nothing to cancel
            run = tasks.running(sync).get(method.key) if allow is not None else None
            if allow and run and not await allowed(allow, self.session, run.params):
                self._forbid(event, sync, method)
                return
            await tasks.cancel(sync, method.key, canceller)
        except Exception as e:
            self._failed(event, e, f"{sync.key}: cancelling task {method.key!r}")


class _Refused(Exception):
    """`allow` said no (raised where the refusal must leave a backplane's turn)."""


ROUTES: dict[str, Route] = {
    "_GET": Dispatcher._get,
    "_SET": Dispatcher._write,
    "_PATCH": Dispatcher._write,
    "_ACTION": Dispatcher._action,
    "_TASK_START": Dispatcher._task_start,
    "_TASK_CANCEL": Dispatcher._task_cancel,
}


def _answerable(container: Any) -> bool:
    """Whether the ``$id`` in `container` (if any) can be sent back: a number
    too big for a double (1e309) parses as infinity, which JSON cannot carry."""
    if not isinstance(container, dict):
        return True
    call_id = container.get("$id")
    return not (isinstance(call_id, float) and not math.isfinite(call_id))
