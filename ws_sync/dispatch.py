"""Routing the events of one connection, strictly in arrival order.

Each event is handled to the end before the next is read: an action is
awaited, a task is only started. Whatever a client sends, a bad event gets one
`_ERROR` (plus, for a rejected `_SET`/`_PATCH`, a fresh `_SET:<key>`, and for
an action with ``$id``, a failed `_ACTION_RESULT`) and changes nothing; the
connection stays open.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from . import tasks, wire
from .actions import ParamsError
from .connection import Connection, Frame, FrameRejected
from .errors import describe, errors_of
from .invoke import invoke
from .protocol import INVALID, ProtocolError, error_frame, parse
from .remote import Kind, RemoteMethod, remote_table
from .sync import Sync
from .validation import ClientWriteError

if TYPE_CHECKING:
    from .session import Session

logger = logging.getLogger("ws_sync")

Route = Callable[["Dispatcher", str, Sync, Any], Awaitable[None]]


class Dispatcher:
    """Inbound side of one connection of a session."""

    def __init__(self, session: Session, conn: Connection) -> None:
        self.session = session
        self.conn = conn
        self.bin_meta: tuple[str, dict[str, Any]] | None = None

    def reply(self, frame: str) -> None:
        """To the connection the event came from (not a later one)."""
        self.conn.push(frame)

    def error(
        self, event: str, message: str, errors: list[dict[str, Any]] | None = None, **extra: Any
    ) -> None:
        self.reply(error_frame(event, message, errors, **extra))

    async def receive(self) -> Frame | None:
        """The next frame within the limits; None when the connection ended."""
        while True:
            try:
                return await self.conn.receive()
            except FrameRejected as e:
                self.error(INVALID, e.message)

    # ------------------------------------------------------------------ #
    # frames

    async def frame(self, raw: Frame) -> None:
        if isinstance(raw, bytes):
            await self._binary(raw)
            return
        if self.bin_meta is not None:
            self.bin_meta = None
            self.error(wire.BIN_META, "_BIN_META was not followed by a binary frame")
        try:
            event, data = parse(raw, self.conn.limits.max_depth)
        except ProtocolError as e:
            self.error(e.event, e.message, e.errors)
            return
        if event == wire.BIN_META:
            self._bin_meta(data)
            return
        await self.event(event, data)

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

    async def event(self, event: str, data: Any) -> None:
        handler = self.session.event_handlers.get(event)
        if handler is not None:
            await self._custom(event, handler, data)
            return
        kind, sep, key = event.partition(":")
        route = ROUTES.get(kind) if sep else None
        if route is None:
            self.error(event, f"unknown event {event!r}")
            return
        sync = self.session.syncs.get(key)
        if sync is None or sync.obj is None:
            self.error(event, f"unknown key {key!r}", **_id_of(kind, data))
            if kind == "_ACTION" and isinstance(data, dict) and "$id" in data:
                self._action_failed(key, data["$id"], f"unknown key {key!r}", [])
            return
        await route(self, event, sync, data)

    async def _custom(self, event: str, handler: Callable[..., Any], data: Any) -> None:
        try:
            await invoke(handler, data)
        except Exception as e:
            logger.exception("session: handler of %r failed", event)
            self.error(event, describe(e, self.session.expose_errors), errors_of(e))

    async def _get(self, event: str, sync: Sync, data: Any) -> None:
        self.reply(sync.set_frame())

    async def _write(self, event: str, sync: Sync, data: Any) -> None:
        """`_SET` / `_PATCH`: all or nothing; on rejection the client gets the
        error, then the full state to put its copy back in step."""
        apply = sync.handle_client_set if event.startswith("_SET") else sync.handle_client_patch
        try:
            apply(data, self.session)
        except ClientWriteError as e:
            self.error(event, e.message, e.errors)
            self.reply(sync.set_frame())
        except Exception as e:
            logger.exception("%s: client write failed", sync.key)
            self.error(event, describe(e, self.session.expose_errors))
            self.reply(sync.set_frame())

    def _method(self, event: str, kind: Kind, sync: Sync, data: Any) -> RemoteMethod | None:
        """The exposed method named by ``data["type"]``, or an `_ERROR` and None."""
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            self.error(event, "data must be an object with a string 'type'")
            return None
        found = remote_table(type(sync.obj)).find(kind, data["type"])
        if found is None:
            noun = "action" if kind == "action" else "task"
            message = f"unknown {noun} {data['type']!r}"
            self.error(event, message, **_id_of("_ACTION" if kind == "action" else "", data))
            if kind == "action" and "$id" in data:
                self._action_failed(sync.key, data["$id"], message, [])
        return found

    async def _action(self, event: str, sync: Sync, data: Any) -> None:
        method = self._method(event, "action", sync, data)
        if method is None:
            return
        call_id = data.get("$id")
        has_id = "$id" in data
        try:
            args, kwargs = method.params(sync.camel).bind(data)
            result = await invoke(method.bind(sync.obj), *args, **kwargs)
        except Exception as e:
            if not isinstance(e, ParamsError):
                logger.exception("%s: action %r failed", sync.key, method.key)
            message, errors = describe(e, self.session.expose_errors), errors_of(e)
            self.error(event, message, errors, **({"id": call_id} if has_id else {}))
            if has_id:
                self._action_failed(sync.key, call_id, message, errors)
            return
        if has_id:
            self.reply(
                wire.encode(
                    wire.action_result_event(sync.key),
                    {"id": call_id, "ok": True, "result": result},
                )
            )

    def _action_failed(
        self, key: str, call_id: Any, message: str, errors: list[dict[str, Any]]
    ) -> None:
        error: dict[str, Any] = {"message": message}
        if errors:
            error["errors"] = errors
        self.reply(
            wire.encode(wire.action_result_event(key), {"id": call_id, "ok": False, "error": error})
        )

    async def _task_start(self, event: str, sync: Sync, data: Any) -> None:
        method = self._method(event, "task", sync, data)
        if method is None:
            return
        try:
            args, kwargs = method.params(sync.camel).bind(data)
            tasks.start(self.session, sync, method, args, kwargs)
        except Exception as e:
            if not isinstance(e, ParamsError | tasks.TaskError):
                logger.exception("%s: task %r could not start", sync.key, method.key)
            self.error(event, describe(e, self.session.expose_errors), errors_of(e))

    async def _task_cancel(self, event: str, sync: Sync, data: Any) -> None:
        method = self._method(event, "task", sync, data)
        if method is None:
            return
        canceller = remote_table(type(sync.obj)).find("cancel", method.key)
        try:
            await tasks.cancel(sync, method.key, canceller)
        except Exception as e:
            logger.exception("%s: cancelling task %r failed", sync.key, method.key)
            self.error(event, describe(e, self.session.expose_errors), errors_of(e))


ROUTES: dict[str, Route] = {
    "_GET": Dispatcher._get,
    "_SET": Dispatcher._write,
    "_PATCH": Dispatcher._write,
    "_ACTION": Dispatcher._action,
    "_TASK_START": Dispatcher._task_start,
    "_TASK_CANCEL": Dispatcher._task_cancel,
}


def _id_of(kind: str, data: Any) -> dict[str, Any]:
    """The action's ``$id``, echoed in `_ERROR` so the client can match it."""
    if kind == "_ACTION" and isinstance(data, dict) and "$id" in data:
        return {"id": data["$id"]}
    return {}
