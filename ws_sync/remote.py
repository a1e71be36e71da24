"""Exposing methods to the client: actions, tasks and task cancellers.

    class Notes:
        @remote_action("RENAME")        # or bare: @remote_action -> key "rename"
        async def rename(self, new_title: str): ...

        @remote_task("GROW")
        async def grow(self): ...

        @grow.cancel                    # same as @remote_task_cancel("GROW")
        async def stop_grow(self): ...

        @remote_action("CLEAR", allow=is_owner)   # is_owner(session, params) -> bool
        async def clear(self): ...

The decorators only mark the function; a class's table of exposed methods is
built on first use and cached per class. Only marked methods are callable from
a client.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, overload

from .actions import Params

F = TypeVar("F", bound=Callable[..., Any])
Kind = Literal["action", "task", "cancel"]

logger = logging.getLogger("ws_sync")

_MARK = "__ws_remote__"


Allow = Callable[..., Any]
"""``allow(session, params) -> bool`` (or an awaitable of it): may this
session make this call? `params` are the validated params, by Python name."""


def _mark(func: Any, kind: Kind, key: str, allow: Allow | None = None) -> Any:
    target = func.__func__ if isinstance(func, staticmethod | classmethod) else func
    marks = [*getattr(target, "__dict__", {}).get(_MARK, ()), (kind, key, allow)]
    setattr(target, _MARK, marks)
    return func


def allow_of(func: Any, kind: Kind) -> Allow | None:
    """The `allow` a ``remote_action``/``remote_task`` mark gave `func` (a
    function, or a method bound to its object), for `kind`."""
    target = getattr(func, "__func__", func)
    for marked, _, allow in getattr(target, "__dict__", {}).get(_MARK, ()):
        if marked == kind and allow is not None:
            return allow  # type: ignore[no-any-return]
    return None


def _name(func: Any) -> str:
    target = func.__func__ if isinstance(func, staticmethod | classmethod) else func
    return target.__name__


@overload
def remote_action(key: F, /) -> F: ...
@overload
def remote_action(key: str | None = None, /, *, allow: Allow | None = None) -> Callable[[F], F]: ...
def remote_action(key: Any = None, /, *, allow: Allow | None = None) -> Any:
    """Expose a method as an action: the client calls it, the connection waits
    for it to finish before the next event. The key defaults to the method name.
    With `allow`, a call it refuses is answered "forbidden" and nothing runs."""
    if callable(key):
        return _mark(key, "action", _name(key))
    return lambda func: _mark(func, "action", key or _name(func), allow)


@overload
def remote_task(key: F, /) -> F: ...
@overload
def remote_task(key: str | None = None, /, *, allow: Allow | None = None) -> Callable[[F], F]: ...
def remote_task(key: Any = None, /, *, allow: Allow | None = None) -> Any:
    """Expose a method as a task: it runs concurrently, is cancellable, and an
    async generator streams each value it yields as `_TASK_PROGRESS`.
    ``@my_task.cancel`` marks the method that cancels it. `allow` decides who
    may start it and who may cancel it (with the params it was started with)."""

    def decorate(func: Any, task_key: str) -> Any:
        _mark(func, "task", task_key, allow)
        target: Any = func.__func__ if isinstance(func, staticmethod | classmethod) else func
        target.cancel = remote_task_cancel(task_key)
        return func

    if callable(key):
        return decorate(key, _name(key))  # bare: no allow
    return lambda func: decorate(func, key or _name(func))


def remote_task_cancel(key: str, /) -> Callable[[F], F]:
    """Expose a method as the canceller of task `key`: it runs (bound to the
    object) when the client cancels, and should make the task return. A task
    without a canceller is cancelled with `asyncio.Task.cancel`."""
    if not isinstance(key, str):
        raise TypeError("remote_task_cancel needs the task key: @remote_task_cancel('KEY')")
    return lambda func: _mark(func, "cancel", key)


@dataclass(eq=False)
class RemoteMethod:
    """One exposed method of a class."""

    kind: Kind
    key: str
    attr: str
    raw: Any  # the class attribute: function, staticmethod or classmethod
    allow: Allow | None = None
    _params: dict[bool, Params] = field(default_factory=dict)

    def bind(self, obj: Any) -> Callable[..., Any]:
        return self.raw.__get__(obj, type(obj))

    def params(self, camel: bool) -> Params:
        """The param validator, built on first use (annotations resolve by then)."""
        params = self._params.get(camel)
        if params is None:
            func = (
                self.raw.__func__ if isinstance(self.raw, staticmethod | classmethod) else self.raw
            )
            bound_first = not isinstance(self.raw, staticmethod)
            label = f"{self.kind} {self.key!r}"
            params = Params(func, camel=camel, skip_first=bound_first, label=label)
            self._params[camel] = params
        return params


class RemoteTable:
    """The exposed methods of one class, by kind and key."""

    def __init__(self, cls: type) -> None:
        self.by_kind: dict[Kind, dict[str, RemoteMethod]] = {"action": {}, "task": {}, "cancel": {}}
        self._folded: dict[Kind, dict[str, RemoteMethod | None]] = {}
        seen: set[str] = set()
        for klass in cls.__mro__:
            for attr, raw in vars(klass).items():
                if attr in seen:
                    continue
                seen.add(attr)  # the first class in the MRO defines the name
                target = raw.__func__ if isinstance(raw, staticmethod | classmethod) else raw
                for kind, key, allow in getattr(target, "__dict__", {}).get(_MARK, ()):
                    table = self.by_kind[kind]
                    if key in table:
                        logger.warning(
                            "%s: %s %r is exposed twice (%s, %s); using %s",
                            cls.__name__, kind, key, table[key].attr, attr, table[key].attr,
                        )  # fmt: skip
                        continue
                    table[key] = RemoteMethod(kind, key, attr, raw, allow)

    def find(self, kind: Kind, key: str) -> RemoteMethod | None:
        """Exact key first; else a unique case-insensitive match, so a bare
        ``@remote_action`` on ``add_note`` answers the JS client's ``ADD_NOTE``."""
        table = self.by_kind[kind]
        found = table.get(key)
        if found is not None:
            return found
        folded = self._folded.get(kind)
        if folded is None:
            folded = {}
            for k, method in table.items():
                folded[k.upper()] = None if k.upper() in folded else method
            self._folded[kind] = folded
        return folded.get(key.upper())


_tables: weakref.WeakKeyDictionary[type, RemoteTable] = weakref.WeakKeyDictionary()


def remote_table(cls: type) -> RemoteTable:
    """The exposed methods of `cls`, discovered once per class."""
    table = _tables.get(cls)
    if table is None:
        table = _tables[cls] = RemoteTable(cls)
    return table
