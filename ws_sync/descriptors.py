"""Synced attributes as data descriptors, and the `sync` accessor.

`SyncedAttribute` defines `__set__` and `__delete__` but no `__get__`: it is a
data descriptor, so every write goes through it, yet reads fall through to the
instance ``__dict__`` like any plain attribute (no code of ours runs on a read).
"""

from __future__ import annotations

from typing import Any

from . import native
from .changelog import MISSING, RESET
from .threads import locked
from .tracking import _ATOMIC_TYPES, NODE


class SyncedAttribute(native.AttributeBase):  # type: ignore[misc]
    """Records the dirty key and wraps lists and dicts on assignment. The write
    runs in C when `native.ENABLED` (the common case there; `ObjNode.assign`
    for the rest); `_ws_set` is the same logic in Python."""

    __slots__ = () if native.ENABLED else ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def _ws_set(self, obj: Any, value: Any) -> None:
        d = obj.__dict__
        name = self.name
        node = d.get(NODE)
        old = d.get(name, MISSING)
        d[name] = value
        if node is None or old is value:
            return
        log = node._ws_log
        if (  # fast path: a leaf replacing a leaf, the key already logged
            log is not None
            and log is not RESET
            and name in log
            and type(value) in _ATOMIC_TYPES
            and type(old) in _ATOMIC_TYPES
            and node.owner_id == id(obj)
        ):
            return
        if name in node.fields and node.owner_id == id(obj):
            node.assign(obj, name, old, value)

    def _ws_delete(self, obj: Any) -> None:
        d = obj.__dict__
        if self.name not in d:
            raise AttributeError(self.name)
        old = d.pop(self.name)
        node = d.get(NODE)
        if node is not None and node.owner_id == id(obj) and self.name in node.fields:
            node.assign(obj, self.name, old, MISSING)

    if not native.ENABLED:
        __set__ = locked(_ws_set)
        __delete__ = locked(_ws_delete)


def install(cls: type, names: Any) -> set[str]:
    """Put a `SyncedAttribute` on `cls` for each name that is free to take one.
    Returns the names that could not (a property or a plain class attribute
    already holds them)."""
    refused = set()
    for name in names:
        current = _lookup(cls, name)
        if isinstance(current, SyncedAttribute):
            continue
        if current is not MISSING:
            refused.add(name)
            continue
        setattr(cls, name, SyncedAttribute(name))
    return refused


def _lookup(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return MISSING


class SyncAccessor(property):
    """`obj.sync`: the object's `Sync`. A `property` subclass so pydantic treats it
    as one. A copy of a synced object (``copy.copy``, ``model_copy``) gets a
    fresh `Sync` of its own, made from the class's recorded options."""

    def __init__(self) -> None:
        super().__init__(self._get, self._set)

    @staticmethod
    def _get(obj: Any) -> Any:
        node = obj.__dict__.get(NODE)
        if node is not None and node.owner_id == id(obj) and node.sync is not None:
            return node.sync
        options = getattr(type(obj), "__ws_sync_options__", None)
        if options is None:
            raise AttributeError(f"{type(obj).__name__} object is not synced")
        from .sync import Sync

        return Sync(obj, **options)

    @staticmethod
    def _set(obj: Any, value: Any) -> None:
        node = obj.__dict__.get(NODE)
        if node is None or node.sync is not value:
            raise AttributeError("assign a Sync made for this object: Sync(self, ...)")


def install_accessor(cls: type) -> None:
    if not isinstance(_lookup(cls, "sync"), SyncAccessor):
        type.__setattr__(cls, "sync", SyncAccessor())
