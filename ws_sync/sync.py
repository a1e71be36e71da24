"""The sync object: which attributes of one object are synced, under which names,
and how their changes reach the sessions that subscribe to it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import time
import weakref
from collections.abc import Iterator
from contextvars import ContextVar
from types import EllipsisType
from typing import Any, Literal

from pydantic import BaseModel
from pydantic_core import from_json

from . import descriptors, patch, wire
from .changelog import MISSING
from .commit import HISTORY_CHARS, HISTORY_COMMITS, CommitLog
from .context import session_context
from .naming import camel as to_camel
from .pointer import is_index as _is_index
from .recent import Recent
from .remote import Kind, RemoteMethod, remote_table
from .running import RunningTasks
from .serialize import NOT_FINITE, attribute_json, dump
from .threads import locked
from .tracking import NODE, ObjNode, attach, detach, track_model
from .transform import transform
from .upstream import Handlers, UpstreamSync, download_event, extra_handlers, toast_event  # noqa: F401
from .wire import (  # noqa: F401  (upstream imports the event names from here)
    action_event,
    get_event,
    patch_event,
    set_event,
    task_cancel_event,
    task_start_event,
)

ToastType = Literal["default", "message", "info", "success", "warning", "error"]
Include = dict[str, str | EllipsisType] | list[str] | tuple[str, ...] | None

_logger = logging.getLogger("ws_sync")

_key_scope: ContextVar[str | None] = ContextVar("ws_sync_key_scope", default=None)


@contextlib.contextmanager
def sync_key_scope(scope: str | None) -> Iterator[None]:
    """Objects created inside get keys prefixed with `scope/` (``user1/NOTES``).
    Scopes nest (``user1/tab2/NOTES``); an empty or None scope adds nothing."""
    if not scope:
        yield
        return
    outer = _key_scope.get()
    token = _key_scope.set(f"{outer}/{scope}" if outer else scope)
    try:
        yield
    finally:
        _key_scope.reset(token)


def get_current_sync_key_prefix() -> str | None:
    """The prefix `sync_key_scope` gives keys here (``"user1/tab2"``), or None."""
    return _key_scope.get()


class Sync(UpstreamSync):
    """Registers an object's attributes for syncing with the frontend."""

    @classmethod
    def all(cls, obj: Any, key: str | None = None, **options: Any) -> Sync:
        """Sync every public attribute, property and computed field."""
        return cls(obj, key, sync_all=True, **options)

    @classmethod
    def only(cls, _obj: Any, _key: str | None = None, **attributes: Any) -> Sync:
        """Sync exactly the named attributes; a string value renames it on the
        wire. Options take a leading underscore (`_toCamelCase`, `_camel`,
        `_send_on_init`, `_expose_running_tasks`, `_read_only`, `_logger`,
        `_actions`, `_tasks`, `_task_cancels`)."""
        return cls(_obj, _key, **only_options(attributes))

    @locked
    def __init__(
        self,
        obj: Any,
        key: str | None = None,
        *,
        sync_all: bool = False,
        include: Include = None,
        exclude: list[str] | tuple[str, ...] | None = None,
        camel: bool | None = None,
        toCamelCase: bool | None = None,
        send_on_init: bool = True,
        expose_running_tasks: bool = False,
        read_only: Any = (),
        logger: logging.Logger | None = None,
        session: Any = None,
        history_commits: int = HISTORY_COMMITS,
        history_chars: int = HISTORY_CHARS,
        actions: Handlers | None = None,
        tasks: Handlers | None = None,
        task_cancels: Handlers | None = None,
    ) -> None:
        scope = _key_scope.get()
        base_key = key or type(obj).__name__
        self.key: str = f"{scope}/{base_key}" if scope else base_key
        self._patch_event = wire.patch_event(self.key)
        if camel is None:
            camel = toCamelCase if toCamelCase is not None else camel_class(type(obj))
        self.camel = bool(camel)
        self.send_on_init = send_on_init
        self.logger = logger or _logger
        self._obj = weakref.ref(obj)
        self.sessions: list[Any] = []
        self.running_tasks = RunningTasks()
        self._handlers = extra_handlers(actions, tasks, task_cancels)
        self.closed = False
        self._last_sync = 0.0
        self._stale = False  # a patch was consumed but could not be sent
        self.log = CommitLog(history_commits, history_chars)
        """Version, epoch and recent commits (`ws_sync.commit`)."""
        self._writes: Recent | None = None  # ids of committed client writes, made on first use
        self._calls: Recent | None = None  # ids of actions and task starts, made on first use
        self._trailing: asyncio.TimerHandle | None = None
        self._write_policy = hasattr(type(obj), "can_write")
        self._read_policy = hasattr(type(obj), "can_read")
        self.gate: Any = None
        """For an object shared across processes: runs its handlers one at a
        time across the deployment (`ws_sync.shared`); None otherwise."""

        selection = select_attributes(obj, sync_all, include, exclude)
        self.attributes: dict[str, str] = {
            attr: wire_name(type(obj), attr, rename, self.camel)
            for attr, rename in selection.items()
        }
        self.read_only: set[str] = set(read_only or ())
        self.expose_running_tasks = expose_running_tasks
        self.task_exposure = self._casing("running_tasks") if expose_running_tasks else None

        from .validation import prepare

        prepare(type(obj))  # a write to an annotation that does not resolve is refused
        node = self._track(obj)
        # the object owns its node and the node its Sync: a weak way back keeps
        # that a chain, so dropping the object frees all three at once (no cycle)
        self._node = weakref.ref(node)
        self._computed: dict[str, str] = {
            attr: w for attr, w in self.attributes.items() if _is_computed(type(obj), attr)
        }
        self._last: dict[str, Any] = {}
        self._split_cache: tuple[int, tuple[dict[str, str], dict[str, str]]] | None = None
        self.root = patch.RootNode()
        attach(node, self.root, "", False)
        patch.consume(node, self.root)
        self.root._ws_dirty = None

        self._prime()
        if session is None:
            session = session_context.get(None)
        if session is not None:
            self.attach(session)

    # ------------------------------------------------------------------ #
    # set-up

    def _casing(self, name: str) -> str:
        return to_camel(name) if self.camel else name

    def _track(self, obj: Any) -> ObjNode:
        old = obj.__dict__.get(NODE)
        if old is not None and old.owner_id == id(obj) and old.sync is not None:
            old.sync.close()  # one Sync per object: the newest wins
        data = {a for a in self.attributes if not _is_computed(type(obj), a)}
        if _plain(obj):
            node = old if old is not None and old.owner_id == id(obj) else ObjNode(obj, frozenset())
            obj.__dict__[NODE] = node
            data -= descriptors.install(type(obj), data)
        else:
            node = track_model(obj)
        node.fields |= data
        node.adopt_all(obj, data)
        node.sync = self
        descriptors.install_accessor(type(obj))
        return node

    @property
    def obj(self) -> Any:
        return self._obj()

    @property
    def node(self) -> ObjNode:
        node = self._node()
        if node is None:  # the object is gone: an empty stand-in keeps calls harmless
            node = ObjNode(self, frozenset())
        return node

    @property
    def tracked_keymap(self) -> dict[str, str]:
        """Attributes whose changes the change log carries (volatile ones are
        re-serialized and compared instead)."""
        return self._split()[0]

    def _volatile(self) -> dict[str, str]:
        return self._split()[1]

    def _split(self) -> tuple[dict[str, str], dict[str, str]]:
        """(tracked, volatile) attributes; recomputed only when an attribute
        turned volatile (the set only grows), so `sync()` does not rebuild them."""
        stamp = len(self.node.volatile)
        if self._split_cache is not None and self._split_cache[0] == stamp:
            return self._split_cache[1]
        tracked: dict[str, str] = {}
        volatile: dict[str, str] = {}
        for a, w in self.attributes.items():
            if a in self.node.fields and a not in self.node.volatile and a not in self._computed:
                tracked[a] = w
            else:
                volatile[a] = w  # computed, holding untrackable values, or no descriptor
        self._split_cache = (stamp, (tracked, volatile))
        return tracked, volatile

    # ------------------------------------------------------------------ #
    # state and patches

    @locked
    def state(self) -> dict[str, Any]:
        """The full synced state, JSON-compatible; refreshes the comparison cache."""
        obj = self.obj
        if obj is None:
            return {}
        out: dict[str, Any] = {}
        volatile = self._volatile()
        for attr, w in self.attributes.items():
            value = self._read(obj, attr)
            if value is MISSING:
                continue
            out[w] = attribute_json(obj, attr, value)
            if attr in volatile:
                self._last[w] = out[w]
        if self.task_exposure:
            out[self.task_exposure] = list(self.running_tasks)
            self._last[self.task_exposure] = out[self.task_exposure]
        return out

    def _prime(self) -> None:
        """Remember the values we can only compare, as a client that has our
        state (from `_SET`) holds them."""
        obj = self.obj
        for attr, w in self._volatile().items():
            value = self._read(obj, attr)
            if value is not MISSING:
                self._last[w] = attribute_json(obj, attr, value)
        if self.task_exposure:
            self._last[self.task_exposure] = []

    def _read(self, obj: Any, attr: str) -> Any:
        try:
            return getattr(obj, attr)
        except AttributeError:
            return MISSING
        except Exception:
            self.logger.exception("%s: reading %r failed", self.key, attr)
            return MISSING

    @locked
    def collect(self) -> list[dict[str, Any]]:
        """Consume what changed since the last call, as RFC 6902 ops whose values
        are still Python objects (serialize before anything mutates again)."""
        return self._collect()

    def _collect(self) -> list[dict[str, Any]]:
        if self.closed:
            return []
        tracked, volatile = self._split()
        ops = patch.collect(self.root, tracked)
        obj = self.obj
        if obj is None:
            return ops
        for attr, w in volatile.items():
            value = self._read(obj, attr)
            if value is MISSING:
                continue
            current = attribute_json(obj, attr, value)
            last = self._last.get(w, MISSING)
            if last is MISSING or last != current:
                self._last[w] = current
                ops.append({"op": "add", "path": "/" + _escape(w), "value": current})
        if self.task_exposure:
            current = list(self.running_tasks)
            if self._last.get(self.task_exposure) != current:
                self._last[self.task_exposure] = current
                ops.append(
                    {"op": "add", "path": "/" + _escape(self.task_exposure), "value": current}
                )
        return ops

    @locked
    def get_patch(self) -> list[dict[str, Any]]:
        """Take the pending changes as JSON Patch ops (JSON values) without
        sending them. The subscribers then get the whole state (`_SET`) at
        the next sync, so they miss nothing."""
        ops = self._collect()
        if ops:
            self._stale = True
        return [dump(op) for op in ops]

    @locked
    def flush(self, exclude: Any = None) -> list[dict[str, Any]]:
        """Commit and send pending changes now; returns the ops. While no
        session is connected nothing is sent and nothing is lost: the commit
        waits in the history, or a `_SET` carries it."""
        ops = self._collect()
        if ops or self._stale:
            frame = self._commit(ops)
            if self.log.local:
                self.publish(frame, exclude)
            else:  # a backplane delivers it, once committed there (`ws_sync.shared`)
                self.log.route(frame, exclude)
        self._last_sync = time.monotonic()
        return ops

    def _commit(self, ops: list[dict[str, Any]], **fields: Any) -> str:
        """The next version: its `_PATCH` frame, recorded in the history. After a
        patch that could not be sent, the whole state instead: that patch's
        changes are consumed, only `_SET` has them."""
        log = self.log
        if self._stale:
            frame = self._set_frame(log.version + 1)  # still not JSON: still stale
            log.restart()
            self._stale = False
            return frame
        try:
            frame = wire.encode_with(self._patch_event, ops, v=log.version + 1, **fields)
        except wire.NonJSONValue as e:
            self._stale = True  # nobody gets this batch: the next frame is a _SET
            raise _named(self.key, e, ops) from None
        log.append(frame)
        return frame

    def publish(self, frame: str, exclude: Any = None) -> None:
        """One frame to every connected subscriber (but `exclude`)."""
        for s in self.sessions:
            if s is not exclude and s.is_connected:
                s.send_frame(frame)

    def _set_frame(self, version: int | None = None, **fields: Any) -> str:
        log = self.log
        if not log.local:  # the committed state, not changes still on their way
            return log.set_frame(self.key, **fields)
        v = log.version if version is None else version
        return wire.encode_with(
            wire.set_event(self.key), self.state(), v=v, epoch=log.epoch, **fields
        )

    @locked
    def set_frame(self) -> str:
        """`_SET` for one subscriber. Pending changes go to the others first, or
        they would reach this one twice."""
        self.flush()
        return self._set_frame()

    @locked
    def resume_frames(self, held: tuple[str, int] | None) -> list[str]:
        """What a client holding version ``held = (epoch, v)`` needs: the
        frames it missed, or a `_SET` if the history no longer has them."""
        self.flush()
        if held is not None:
            missed = self.log.since(*held)
            if missed is not None:
                return missed
        return [self._set_frame()]

    async def sync(
        self,
        if_since_last: float | None = None,
        toast: str | None = None,
        type: ToastType = "default",
    ) -> None:
        """Send what changed. With `if_since_last`, at most one patch per that many
        seconds; the last change is never dropped, a trailing flush sends it.
        NaN or Infinity in what changed raises `wire.NonJSONValue` naming its
        path: that patch is not sent, and the next good sync sends `_SET`."""
        if if_since_last:
            wait = self._last_sync + if_since_last - time.monotonic()
            if wait > 0:
                if self._trailing is None:
                    loop = asyncio.get_running_loop()
                    self._trailing = loop.call_later(wait, self._trailing_flush)
                if toast:
                    await self.toast(toast, type=type)
                return
        if self._trailing is not None:
            self._trailing.cancel()
            self._trailing = None
        self.flush()
        if toast:
            await self.toast(toast, type=type)
        await asyncio.sleep(0)  # let the writers of the sessions run

    __call__ = sync

    @property
    def throttled(self) -> bool:
        """A throttled `sync` is waiting for its trailing flush."""
        return self._trailing is not None

    def _trailing_flush(self) -> None:
        self._trailing = None
        self.flush()

    # ------------------------------------------------------------------ #
    # subscribers and other events

    def attach(self, session: Any) -> None:
        """Subscribe a session; a shared object has several. One that the
        object's ``can_read`` refuses is not (`ws_sync.permissions`)."""
        if any(s is session for s in self.sessions):
            return
        if self._read_policy:
            from .permissions import readable

            if not readable(self, session):
                return
        self.sessions.append(session)
        session.register(self)

    def detach(self, session: Any) -> None:
        self.sessions = [s for s in self.sessions if s is not session]
        with contextlib.suppress(Exception):
            session.unregister(self)

    @locked
    def close(self) -> None:
        """Stop syncing at once: leave every session and drop the tracking root."""
        for s in list(self.sessions):
            self.detach(s)
        if self._trailing is not None:
            self._trailing.cancel()
            self._trailing = None
        self.closed = True
        self.root._ws_dirty = None
        detach(self.node, self.root, "", False)

    def broadcast(self, event: str, data: Any) -> None:
        """An event for every connected subscriber, encoded once."""
        if any(s.is_connected for s in self.sessions):
            self.publish(wire.encode(event, data))

    async def toast(
        self, *messages: Any, type: ToastType = "default", logger: logging.Logger | None = None
    ) -> str:
        """Show a notification; returns the text so it can be returned or logged."""
        text = " ".join(str(m) for m in messages)
        log = logger or self.logger
        level = {"warning": logging.WARNING, "error": logging.ERROR}.get(type, logging.DEBUG)
        log.log(level, text)
        self.broadcast(wire.TOAST, {"type": type, "message": text})
        return text

    async def download(self, filename: str, data: bytes) -> None:
        self.broadcast(
            wire.DOWNLOAD, {"filename": filename, "data": base64.b64encode(data).decode()}
        )

    async def send_action(self, action: dict[str, Any]) -> None:
        """Ask the client to run its handler for ``action["type"]``."""
        self.broadcast(wire.action_event(self.key), action)

    async def send_binary(self, metadata: dict[str, Any], data: bytes) -> None:
        meta = wire.encode(
            wire.BIN_META, {"type": wire.action_event(self.key), "metadata": metadata}
        )
        for s in self.sessions:
            if s.is_connected:
                s.send_frames([meta, data])

    # ------------------------------------------------------------------ #
    # writes from a client (see `validation`)

    def handle_client_set(
        self, data: Any, sender: Any = None, write_id: Any = None, base: Base | None = None
    ) -> None:
        from .validation import apply_set

        self._client_write(apply_set, data, sender, write_id)

    def handle_client_patch(
        self, ops: Any, sender: Any = None, write_id: Any = None, base: Base | None = None
    ) -> None:
        """A client's JSON Patch. With `base`, the (epoch, version) it was made
        on, it is first transformed past the commits since (`ws_sync.transform`)."""
        from .validation import apply_patch

        self._client_write(apply_patch, ops, sender, write_id, base)

    @locked
    def _client_write(
        self, apply: Any, data: Any, sender: Any, write_id: Any = None, base: Base | None = None
    ) -> None:
        """All or nothing, then one commit that every subscriber gets. A write
        with an id (a versioned client's) is a commit even if it changed
        nothing, tagged ``"ack"`` (and ``"dropped"``: the indexes of its ops
        that the transform dropped); the sender takes it as its answer.
        Without an id, the sender gets back only what validation changed."""
        self.flush()
        if write_id is not None and self._answer_again(write_id, sender):
            return
        dropped: list[int] = []
        if base is not None:
            data, dropped = self._rebase(data, base)
        if self._write_policy:
            from .permissions import check_write

            check_write(self, sender, data)  # raises ClientWriteError: forbidden
        limits = getattr(sender, "limits", None)
        echo_free = apply(self, data, limits)  # raises ClientWriteError, changing nothing
        ops = self.collect()
        if write_id is not None:
            fields = {"ack": write_id, "dropped": dropped} if dropped else {"ack": write_id}
            frame = self._commit(ops, **fields)
            if self.log.local:
                self.publish(frame)
            else:
                self.log.route(frame)
            self.committed_write(write_id, self.log.version)
            return
        if not ops:
            return
        frame = self._commit(ops)
        back = [op for op in ops if not _is_echo(op, echo_free)]
        reply = None
        if back and sender is not None and sender.is_connected:
            reply = wire.encode_with(self._patch_event, back, v=self.log.version)
        if not self.log.local:
            self.log.route(frame, sender, reply)
            return
        self.publish(frame, exclude=sender)  # the flush above sent any _SET due
        if reply is not None:
            sender.send_frame(reply)

    @property
    def calls(self) -> Recent:
        """Ids of protocol-2 actions and task starts on this object, with their
        answers (a session remembers its own too, see `Dispatcher._seen`)."""
        if self._calls is None:
            self._calls = Recent()
        return self._calls

    def committed_write(self, write_id: Any, version: int) -> None:
        """Write `write_id` was committed as `version`: sent again, it is
        answered with that commit, not applied again (see `_answer_again`)."""
        if self._writes is None:
            self._writes = Recent()
        self._writes.put(write_id, str(version))

    def _answer_again(self, write_id: Any, sender: Any) -> bool:
        """A write resent after a lost connection, already committed: the
        sender gets that commit again (or the whole state), nothing is applied
        twice."""
        committed = self._writes.get(write_id) if self._writes is not None else None
        if committed is None:
            return False
        if sender is not None and sender.is_connected:
            log = self.log
            frames = log.since(log.epoch, int(committed) - 1)
            # the commit, or the whole state that holds it: acknowledged either way
            sender.send_frame(frames[0] if frames else self._set_frame(ack=write_id))
        return True

    def _rebase(self, ops: Any, base: Base) -> tuple[Any, list[int]]:
        """`ops` made on `base`, moved past the commits since. Ops that are not
        well formed are left for validation to refuse; a base the history no
        longer has is applied as it is (by position, as protocol 1 does)."""
        missed = self.log.since(*base)
        if not missed or not _well_formed(ops):
            return ops, []
        committed = [op for frame in missed for op in from_json(frame)["data"]]
        if len(ops) * len(committed) > TRANSFORM_BUDGET:
            from .validation import ClientWriteError

            raise ClientWriteError(
                "_PATCH rejected: made on a version too far behind", [{"msg": "resync"}]
            )
        return transform(ops, committed, self.is_list)

    def find(self, kind: Kind, key: str) -> RemoteMethod | None:
        """The exposed method `key`: the object's own handlers (given as
        ``actions=``, ``tasks=``, ``task_cancels=``) first, then its class's."""
        if self._handlers is not None:
            own = self._handlers[kind].get(key)
            if own is not None:
                return own
        return remote_table(type(self.obj)).find(kind, key)

    def is_list(self, tokens: tuple[str, ...]) -> bool:
        """Whether the container at these wire tokens is a list now (list
        items stand for each other: an index past the end looks at the last)."""
        obj = self.obj
        if obj is None or not tokens:
            return False
        attr = self._wire_attrs().get(tokens[0])
        if attr is None:
            return False
        node = getattr(obj, attr, None)
        for token in tokens[1:]:
            node = _child(node, token)
        return isinstance(node, list)

    def _wire_attrs(self) -> dict[str, str]:
        return {w: attr for attr, w in self.attributes.items()}

    def __repr__(self) -> str:
        return f"<Sync {self.key!r} {sorted(self.attributes.values())}>"


_ONLY_OPTIONS = {
    "_toCamelCase": "toCamelCase",
    "_camel": "camel",
    "_send_on_init": "send_on_init",
    "_expose_running_tasks": "expose_running_tasks",
    "_read_only": "read_only",
    "_logger": "logger",
    "_actions": "actions",
    "_tasks": "tasks",
    "_task_cancels": "task_cancels",
}


def only_options(attributes: dict[str, Any]) -> dict[str, Any]:
    """Split `sync_only`-style keywords: underscored options, the rest attributes."""
    options = {_ONLY_OPTIONS[k]: v for k, v in attributes.items() if k in _ONLY_OPTIONS}
    options["include"] = {k: v for k, v in attributes.items() if k not in _ONLY_OPTIONS}
    return options


Base = tuple[str, int]
"""(epoch, version) a client write was made on."""

TRANSFORM_BUDGET = 100_000
"""Ops x committed ops one write may be transformed across; past it the write
is refused (the client resyncs) rather than hold the loop. A pair costs about
2-5 us (`benchmarks/versioned.py`), so the worst write holds the loop for a
few tenths of a second; 10 ops made 256 commits of 10 ops back are 25,600."""


def _well_formed(ops: Any) -> bool:
    return isinstance(ops, list) and all(
        isinstance(op, dict)
        and isinstance(op.get("path"), str)
        and isinstance(op.get("from", ""), str)
        and op.get("op") in ("add", "remove", "replace", "move", "copy", "test")
        for op in ops
    )


def _child(node: Any, token: str) -> Any:
    if isinstance(node, list):
        if not node:
            return None
        return node[min(int(token), len(node) - 1)] if _is_index(token) else node[-1]
    if isinstance(node, dict):
        return node.get(token)
    if isinstance(node, BaseModel):
        for name, field in type(node).model_fields.items():
            if token in (name, field.alias):
                return getattr(node, name, None)
        return None
    return getattr(node, token, None) if not token.startswith("_") else None


def _is_echo(op: dict[str, Any], echo_free: dict[str, Any]) -> bool:
    """An op the client already applied itself, with the value it sent."""
    path = op["path"]
    if path not in echo_free:
        return False
    if op["op"] == "remove":
        return echo_free[path] is MISSING
    return dump(op.get("value")) == echo_free[path]


def _named(key: str, e: wire.NonJSONValue, ops: list[dict[str, Any]]) -> wire.NonJSONValue:
    """The error of a patch frame, pointing at the synced value, not the op."""
    path = e.path
    if path is not None:
        index, _, rest = path[1:].partition("/")
        if _is_index(index) and int(index) < len(ops) and rest.partition("/")[0] == "value":
            path = ops[int(index)]["path"] + rest[len("value") :]
    where = "" if path is None else f" at {path!r}"
    message = f"{key}: a value{where} is not JSON ({NOT_FINITE}); the patch was not sent"
    return wire.NonJSONValue(message, path)


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _plain(obj: Any) -> bool:
    """A plain class instance (neither pydantic nor a dataclass)."""
    import dataclasses

    return not isinstance(obj, BaseModel) and not dataclasses.is_dataclass(obj)


def camel_class(cls: type) -> bool:
    """A `SyncedAsCamelCase` model speaks camelCase everywhere (params too),
    unless a subclass's config drops the alias generator."""
    from .synced_model import SyncedAsCamelCase

    return (
        issubclass(cls, SyncedAsCamelCase) and cls.model_config.get("alias_generator") is not None  # type: ignore[attr-defined]
    )


def wire_name(cls: type, attr: str, rename: str | EllipsisType, camel: bool) -> str:
    """The synced name of `attr`: a rename, else the model's alias, else the
    attribute's name (camelCased with `camel`)."""
    if isinstance(rename, str):
        return rename
    casing = to_camel if camel else str
    if issubclass(cls, BaseModel):
        if cls.model_config.get("serialize_by_alias") is False:
            return casing(attr)  # the class says: field names, not aliases
        info = cls.model_fields.get(attr) or cls.model_computed_fields.get(attr)
        alias = getattr(info, "serialization_alias", None) or getattr(info, "alias", None)
        if alias:
            return alias
        generator = cls.model_config.get("alias_generator")
        if generator is not None and not camel:
            made = _apply_alias_generator(generator, attr)
            if made:
                return made
    return casing(attr)


def _apply_alias_generator(generator: Any, name: str) -> str | None:
    ser = getattr(generator, "serialization_alias", None) or getattr(generator, "alias", None)
    if ser is not None:
        return ser(name)
    if callable(generator):
        return generator(name)
    return None


def _is_computed(cls: type, attr: str) -> bool:
    """Values with no storage of their own: properties and computed fields."""
    if issubclass(cls, BaseModel) and attr in cls.model_computed_fields:
        return True
    current = descriptors._lookup(cls, attr)
    return isinstance(current, property | functools.cached_property) and not isinstance(
        current, descriptors.SyncAccessor
    )


_SKIP_BASES = (object, BaseModel)


def select_attributes(
    obj: Any, sync_all: bool, include: Include, exclude: Any
) -> dict[str, str | EllipsisType]:
    """Attribute -> rename (or ...). Private names only when named explicitly."""
    chosen = select_names(_candidates(obj) if sync_all else [], sync_all, include, exclude)
    missing = [n for n in chosen if not _has(obj, n)]
    if missing:
        raise AttributeError(f"{type(obj).__name__} has no attribute(s) {missing} to sync")
    return chosen


def select_names(
    candidates: list[str], sync_all: bool, include: Include, exclude: Any
) -> dict[str, str | EllipsisType]:
    """The chosen names among `candidates` (all public ones with `sync_all`)
    plus `include`, less `exclude`."""
    exclude = set(exclude or ())
    if isinstance(include, list | tuple):
        include = dict.fromkeys(include, ...)
    include = dict(include or {})
    if include.keys() & exclude:
        raise ValueError(f"attributes both included and excluded: {include.keys() & exclude}")
    chosen: dict[str, str | EllipsisType] = {}
    if sync_all:
        for name in candidates:
            if name not in exclude and not name.startswith("_"):
                chosen[name] = ...
    chosen.update(include)
    return chosen


def _has(obj: Any, name: str) -> bool:
    if name in obj.__dict__:
        return True
    return descriptors._lookup(type(obj), name) is not MISSING


def _candidates(obj: Any) -> list[str]:
    cls = type(obj)
    names: list[str] = []
    if isinstance(obj, BaseModel):
        names += [n for n, f in cls.model_fields.items() if not f.exclude]
        names += list(cls.model_computed_fields)
    else:
        names += [
            n
            for n, v in obj.__dict__.items()
            if n != NODE and not callable(v) and not isinstance(v, Sync)
        ]
    for klass in cls.__mro__:
        if klass in _SKIP_BASES or klass.__module__.startswith("pydantic"):
            continue
        for n, v in klass.__dict__.items():
            if n in names:
                continue
            if isinstance(v, property | functools.cached_property):
                if not isinstance(v, descriptors.SyncAccessor):
                    names.append(n)
            elif not isinstance(obj, BaseModel) and _class_default(n, v):
                names.append(n)  # a class-level default the instance reads
    return names


def _class_default(name: str, value: Any) -> bool:
    return not (
        name.startswith("_")
        or callable(value)
        or hasattr(value, "__get__")  # methods, descriptors (synced attributes too)
        or isinstance(value, Sync)
    )
