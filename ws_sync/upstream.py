"""Upstream ws-sync's names on `Sync`, for code written against it.

Upstream kept a JSON snapshot of every object and diffed it on each sync; its
handlers were per-object callables (``sync.actions(data)``). Here changes are
tracked as they happen and handlers are routed per class, so these are thin
views on the real machinery, used only when called: nothing here runs on an
attribute write or a sync.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import pointer, wire
from .actions import ParamsError
from .changelog import MISSING
from .invoke import invoke
from .naming import camel as to_camel
from .remote import Kind, RemoteMethod, allow_of
from .serialize import attribute_json

Handlers = Mapping[str, Callable[..., Any]]


def toast_event() -> str:
    """Upstream's name of the `_TOAST` event."""
    return wire.TOAST


def download_event() -> str:
    """Upstream's name of the `_DOWNLOAD` event."""
    return wire.DOWNLOAD


class Unknown(str):
    """Stands in `state_snapshot` for a value the pending changes overwrote:
    changes are tracked, not diffed, so the old value is not kept. Equal to
    nothing, so a diff against it always replaces it; a string for JSON."""

    def __eq__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = Unknown("<unknown>")


def extra_handlers(
    actions: Handlers | None, tasks: Handlers | None, task_cancels: Handlers | None
) -> dict[Kind, dict[str, RemoteMethod]] | None:
    """Upstream's raw handler dicts (``Sync(obj, actions={...})``) as exposed
    methods of this one object. A bound method is called as it is; a plain
    function gets the object first, as upstream did. A handler marked with
    ``remote_action(allow=...)`` or ``remote_task(allow=...)`` keeps its
    `allow` here too."""
    if not (actions or tasks or task_cancels):
        return None
    given: tuple[tuple[Kind, Handlers | None], ...] = (
        ("action", actions),
        ("task", tasks),
        ("cancel", task_cancels),
    )
    return {
        kind: {
            key: RemoteMethod(
                kind, key, getattr(func, "__name__", key), _raw(func), allow_of(func, kind)
            )
            for key, func in (handlers or {}).items()
        }
        for kind, handlers in given
    }


def _raw(func: Callable[..., Any]) -> Any:
    if getattr(func, "__self__", None) is not None or not hasattr(func, "__get__"):
        return staticmethod(func)  # bound already, or a callable object
    return func


class UpstreamSync:
    """Upstream's attributes and handler entry points, mixed into `Sync`."""

    if TYPE_CHECKING:
        attributes: dict[str, str]
        camel: bool
        sessions: list[Any]
        task_exposure: str | None
        running_tasks: Any
        _last: dict[str, Any]

        @property
        def obj(self) -> Any: ...
        def _read(self, obj: Any, attr: str) -> Any: ...
        def get_patch(self) -> list[dict[str, Any]]: ...
        def handle_client_set(self, data: Any, sender: Any = None) -> None: ...
        def handle_client_patch(self, ops: Any, sender: Any = None) -> None: ...
        def set_frame(self) -> str: ...
        def find(self, kind: Kind, key: str) -> RemoteMethod | None: ...

    # ------------------------------------------------------------------ #
    # names

    @property
    def sync_attributes(self) -> dict[str, str]:
        """Attribute -> synced name (upstream's name for `attributes`)."""
        return dict(self.attributes)

    @property
    def key_to_attr(self) -> dict[str, str]:
        return {w: a for a, w in self.attributes.items()}

    @property
    def casing_func(self) -> Callable[[str], str] | None:
        """The function naming attributes on the wire, if names change at all."""
        if self.camel:
            return to_camel
        from .utils import get_alias_function_for_class

        return get_alias_function_for_class(type(self.obj))

    def casing(self, attr: str) -> str:
        func = self.casing_func
        return func(attr) if func else attr

    @property
    def session(self) -> Any:
        """The first subscribed session (upstream had exactly one)."""
        return self.sessions[0] if self.sessions else None

    # ------------------------------------------------------------------ #
    # snapshots

    def _snapshot(self) -> dict[str, Any]:
        """The synced state as JSON data, without touching what syncs compare."""
        obj = self.obj
        out: dict[str, Any] = {}
        if obj is None:
            return out
        for attr, w in self.attributes.items():
            value = self._read(obj, attr)
            if value is not MISSING:
                out[w] = attribute_json(obj, attr, value)
        if self.task_exposure:
            out[self.task_exposure] = list(self.running_tasks)
        return out

    @property
    def state_snapshot(self) -> dict[str, Any]:
        """The state as the clients last got it. Reading it takes the pending
        changes (`get_patch`): they reach the clients as a `_SET` at the next
        sync. Values those changes overwrote read as `UNKNOWN`."""
        last = dict(self._last)
        ops = self.get_patch()
        return _before(self._snapshot(), ops, last)

    @state_snapshot.setter
    def state_snapshot(self, value: dict[str, Any]) -> None:
        """Accepted for upstream's ``get_patch`` helper; the clients' copy is
        what was sent, so there is nothing to store."""

    # ------------------------------------------------------------------ #
    # handlers, called as a client's event would be

    async def actions(self, action: dict[str, Any]) -> Any:
        """Run the action ``action["type"]`` with the other keys as params;
        raises pydantic's `ValidationError` on invalid params."""
        method, args, kwargs = self._bound("action", action)
        if method is None:
            return None
        return await invoke(method.bind(self.obj), *args, **kwargs)

    async def tasks(self, task: dict[str, Any]) -> None:
        """Start the task ``task["type"]``; ``running_tasks[key]`` is its asyncio task."""
        from . import tasks

        method, args, kwargs = self._bound("task", task)
        if method is None:
            return
        if method.key in self.running_tasks:
            return  # upstream ignored a second start
        tasks.start(_task_session(self), self, method, args, kwargs)  # type: ignore[arg-type]

    async def task_cancels(self, task: dict[str, Any]) -> None:
        """Cancel the running task ``task["type"]`` (see `tasks.cancel`)."""
        from . import tasks

        key = task.get("type")
        method = self.find("task", key) if isinstance(key, str) else None
        if method is not None:
            await tasks.cancel(self, method.key, self.find("cancel", method.key))  # type: ignore[arg-type]

    def _bound(
        self, kind: Kind, data: dict[str, Any]
    ) -> tuple[RemoteMethod | None, list[Any], dict[str, Any]]:
        data = dict(data)
        key = data.pop("type", None)
        method = self.find(kind, key) if isinstance(key, str) else None
        if method is None:
            warnings.warn(f"No handler for {kind} {key}", stacklevel=3)
            return None, [], {}
        try:
            args, kwargs = method.params(self.camel).bind(data)
        except ParamsError as e:
            if e.validation_error is not None:
                raise e.validation_error from None
            raise
        return method, args, kwargs

    async def _set_state(self, state: dict[str, Any]) -> None:
        """A client's `_SET` (validated, all or nothing)."""
        self.handle_client_set(state)

    async def _patch_state(self, patch: list[dict[str, Any]]) -> None:
        """A client's `_PATCH` (validated, all or nothing)."""
        self.handle_client_patch(patch)

    async def _send_state(self, _: Any = None) -> None:
        """The whole state to every connected subscriber."""
        frame = self.set_frame()
        for s in self.sessions:
            if s.is_connected:
                s.send_frame(frame)


class _Detached:
    """Runs a task started outside any connection (upstream's ``sync.tasks``
    with no session): failures are logged, not sent."""

    expose_errors = False

    def __init__(self, sync: Any) -> None:
        self._runs: set[Any] = set()
        self._sync = sync

    def flush_pending(self) -> None:
        self._sync.flush()


def _task_session(sync: Any) -> Any:
    for s in sync.sessions:
        if isinstance(getattr(s, "_runs", None), set):
            return s
    return _Detached(sync)


def _before(state: dict[str, Any], ops: list[dict[str, Any]], last: dict[str, Any]) -> Any:
    """`state` with `ops` undone, last first. Old values that were not kept
    become `UNKNOWN`; those of compared attributes are known from `last`."""
    prev: Any = copy.deepcopy(state)
    for op in reversed(ops):
        try:
            _undo(prev, op, last)
        except (KeyError, IndexError, ValueError, TypeError):
            top = pointer.split(op.get("path", ""))[:1] or [""]
            prev[top[0]] = UNKNOWN  # cannot place it: the whole attribute is unknown
    return prev


def _undo(doc: Any, op: dict[str, Any], last: dict[str, Any]) -> None:
    tokens = pointer.split(op["path"])
    parent = doc
    for token in tokens[:-1]:
        parent = parent[int(token)] if isinstance(parent, list) else parent[token]
    leaf = tokens[-1]
    kind = op["op"]
    if isinstance(parent, list):
        i = len(parent) - 1 if leaf == "-" else int(leaf)
        if kind in ("add", "copy"):
            del parent[i]
        elif kind == "remove":
            parent.insert(i, UNKNOWN)
        elif kind == "replace":
            parent[i] = UNKNOWN
        elif kind == "move":
            _put(doc, pointer.split(op["from"]), parent.pop(i))
        return
    if kind in ("add", "copy"):
        old = last.get(leaf, MISSING) if parent is doc else MISSING
        if old is MISSING:
            parent.pop(leaf, None)
        else:
            parent[leaf] = old  # a compared attribute: its old value is known
    elif kind in ("remove", "replace"):
        parent[leaf] = UNKNOWN
    elif kind == "move":
        _put(doc, pointer.split(op["from"]), parent.pop(leaf))


def _put(doc: Any, tokens: list[str], value: Any) -> None:
    parent = doc
    for token in tokens[:-1]:
        parent = parent[int(token)] if isinstance(parent, list) else parent[token]
    if isinstance(parent, list):
        parent.insert(int(tokens[-1]), value)
    else:
        parent[tokens[-1]] = value
