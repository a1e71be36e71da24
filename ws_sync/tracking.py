"""Tracking proxies: containers and model instances that record their own mutations.

Every tracked thing is a *node* with the same four pieces of state:

- ``_ws_parents``: ``{id(parent): Link}``, where this node sits (a node may sit in
  several places at once: aliasing);
- ``_ws_log``: what changed in the node itself since the last sync (its shape
  depends on the kind of node, see `changelog`);
- ``_ws_dirty``: ``{id(child): child}``, children with pending changes;
- ``_ws_full``: roots that must resend this node whole (see `patch.consume`).

A node is *pending* when its log or dirty set is non-empty. The invariant
that makes `sync()` cheap: a pending node is in the ``_ws_dirty`` of every parent
it has, so `sync()` finds every change by walking down from the root through
dirty children only, never through the whole state.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import operator
import pathlib
import uuid
import weakref
from typing import Any

from pydantic import BaseModel

from . import changelog, native
from .threads import call_locked, locked, locked_setattr

NODE = "__ws_node__"
MISSING: Any = changelog.MISSING

_ATOMIC_TYPES = frozenset({str, int, float, bool, type(None), bytes})
_IMMUTABLE = (
    datetime.date,
    datetime.time,
    datetime.timedelta,
    decimal.Decimal,
    uuid.UUID,
    enum.Enum,
    pathlib.PurePath,
    complex,
    range,
)

_RESET = changelog.RESET
_list_append = list.append
_list_insert = list.insert
_list_pop = list.pop
_list_setitem = list.__setitem__
_list_getitem = list.__getitem__
_list_delitem = list.__delitem__
_dict_setitem = dict.__setitem__
_dict_delitem = dict.__delitem__


class Link:
    """Where a child sits in one parent: keys for mappings, a count and index
    hints for lists (hints go stale when the list shifts and are re-found)."""

    __slots__ = ("count", "epoch", "hints", "keys", "logpos", "ref")

    def __init__(self, parent: Any) -> None:
        self.ref = weakref.ref(parent)
        self.keys: set[Any] | None = None
        self.count = 0
        self.hints: list[int] | None = None
        self.epoch = -1  # the list round in which the hints were exact (-1: unknown)
        self.logpos = 0  # ... and the length of that round's log at the time


# --------------------------------------------------------------------------- #
# classification


def is_atomic(value: Any) -> bool:
    """Immutable leaves: nothing inside them can change without an assignment."""
    t = type(value)
    if t in _ATOMIC_TYPES:
        return True
    if isinstance(value, _IMMUTABLE):
        return True
    if t is tuple or t is frozenset:
        return all(is_atomic(v) for v in value)
    return False


def is_model(value: Any) -> bool:
    """Objects whose attribute writes we can hook: pydantic models, dataclasses
    and objects already carrying a node (synced plain objects)."""
    if isinstance(value, BaseModel):
        return True
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return hasattr(value, "__dict__") and not _is_frozen_dataclass(value)
    return NODE in getattr(value, "__dict__", ())


def _is_frozen_dataclass(value: Any) -> bool:
    params = getattr(type(value), "__dataclass_params__", None)
    return bool(params and params.frozen)


def node_of(value: Any) -> Any:
    """The tracking node of a stored value, or None for leaves and opaque values."""
    t = type(value)
    if t is TrackedList or t is TrackedDict:
        return value
    if t in _ATOMIC_TYPES:
        return None
    d = getattr(value, "__dict__", None)
    if d is not None:
        node = d.get(NODE)
        if node is not None and node.owner_id == id(value):
            return node
    return None


def value_of(node: Any) -> Any:
    """The object a node tracks (a container tracks itself)."""
    return node.owner() if type(node) is ObjNode else node


# --------------------------------------------------------------------------- #
# links and dirty propagation


def touch(node: Any) -> None:
    """`node` just became pending: put it in the dirty set of every ancestor
    that does not have it yet, stopping where the mark already is."""
    stack = [node]
    while stack:
        n = stack.pop()
        parents = n._ws_parents
        if not parents:
            continue
        nid = id(n)
        for link in parents.values():
            p = link.ref()
            if p is None:
                continue
            d = p._ws_dirty
            if d:
                if nid not in d:
                    d[nid] = n
            else:
                p._ws_dirty = {nid: n}
                if not p._ws_log:
                    stack.append(p)


def _is_pending(node: Any) -> bool:
    # `_ws_full` alone does not count: it is owed to other roots, whose parents
    # still hold the dirty mark, and new changes must still reach this root.
    return bool(node._ws_log or node._ws_dirty)


def key_record(node: Any, key: Any, existed: bool) -> None:
    """Note that `key` of a mapping-like node changed; the first write decides
    whether the client needs add, replace or remove."""
    log = node._ws_log
    if log is None:
        node._ws_log = {key: existed}
        if not node._ws_dirty:
            touch(node)
    elif log is not changelog.RESET and key not in log:
        log[key] = existed


def link_to(child: Any, parent: Any) -> Link | None:
    """The link of `child` to `parent`. Links are keyed by ``id(parent)``, and
    an id is reused once its object is gone, so the weak reference decides."""
    parents = child._ws_parents
    if not parents:
        return None
    link = parents.get(id(parent))
    if link is None or link.ref() is parent:
        return link
    del parents[id(parent)]  # a dead parent's link under a reused id
    return None


def attach(child: Any, parent: Any, key: Any, is_list: bool) -> None:
    parents = child._ws_parents
    if parents is None:
        parents = child._ws_parents = {}
    link = link_to(child, parent)
    if link is None:
        if len(parents) >= 4:  # drop links to parents that died
            for pid in [pid for pid, ln in parents.items() if ln.ref() is None]:
                del parents[pid]
        link = parents[id(parent)] = Link(parent)
    if is_list:
        if link.count == 0:
            # exact once the op placing it is logged (if the list logs at all)
            log = parent._ws_log
            link.epoch = parent._ws_epoch
            link.logpos = (len(log) if type(log) is list else 0) + (1 if parent._ws_parents else 0)
        else:
            link.epoch = -1  # hints taken at different moments share no frame
        link.count += 1
        if link.hints is None:
            link.hints = [key]
        else:
            link.hints.append(key)
    elif link.keys is None:
        link.keys = {key}
    else:
        link.keys.add(key)
    if _is_pending(child):
        d = parent._ws_dirty
        if d:
            d[id(child)] = child
        else:
            parent._ws_dirty = {id(child): child}
            if not parent._ws_log:
                touch(parent)
    if child._ws_opaque:
        mark_opaque(parent)


def detach(child: Any, parent: Any, key: Any, is_list: bool) -> None:
    link = link_to(child, parent)
    if link is None:
        return
    parents = child._ws_parents
    if is_list:
        link.count -= 1
        if link.hints and key in link.hints:
            link.hints.remove(key)
        if link.count > 0:
            return
    else:
        keys = link.keys
        if keys:
            keys.discard(key)
            if keys:
                return
    del parents[id(parent)]


def adopt(parent: Any, key: Any, value: Any, is_list: bool) -> Any:
    """Make `value` storable under `parent`: wrap plain lists and dicts, hook
    models, link the child, and flag opaque values. Returns what to store."""
    t = type(value)
    if t in _ATOMIC_TYPES:
        return value
    if t is list:
        value = TrackedList(value)
    elif t is dict:
        value = TrackedDict(value)
    elif t is TrackedList or t is TrackedDict:
        pass
    elif is_model(value):
        node = track_model(value)
        attach(node, parent, key, is_list)
        return value
    else:
        if not is_atomic(value):
            mark_opaque(parent, key)
        return value
    attach(value, parent, key, is_list)
    return value


def release(parent: Any, key: Any, value: Any, is_list: bool) -> None:
    """`value` left `parent` at `key`."""
    if type(value) in _ATOMIC_TYPES:
        return
    node = node_of(value)
    if node is not None:
        detach(node, parent, key, is_list)


def mark_opaque(node: Any, key: Any = MISSING) -> None:
    """Something under `node` (at `key`) cannot be tracked: every synced
    attribute above it becomes volatile (re-serialized and compared at each sync)."""
    if type(node) is ObjNode and key is not MISSING and key not in node.volatile:
        node.volatile = node.volatile | {key}
    stack = [node]
    seen: set[int] = set()
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        n._ws_opaque = True
        for link in tuple((n._ws_parents or {}).values()):
            p = link.ref()
            if p is None:
                continue
            if type(p) is ObjNode and link.keys and not link.keys <= p.volatile:
                p.volatile = p.volatile | link.keys
            stack.append(p)


# --------------------------------------------------------------------------- #
# containers


class TrackedList(native.ListBase):  # type: ignore[misc]
    """A list that logs every mutation; `isinstance(x, list)` stays true.

    `append` and item assignment run in C when `native.ENABLED`; the C code
    handles atomic values and calls the ``_ws_*`` methods here for the rest.
    """

    __slots__ = (
        "__weakref__",
        "_ws_dirty",
        "_ws_epoch",
        "_ws_full",
        "_ws_history",
        "_ws_log",
        "_ws_opaque",
        "_ws_parents",
        "_ws_tail",
    )

    def __init__(self, items: Any = ()) -> None:
        self._ws_tail: int | None = None
        self._ws_epoch = 0  # rounds of changes consumed (see `patch.archive`)
        self._ws_history: list[Any] | None = None
        self._ws_parents: dict[int, Link] | None = None
        self._ws_log: list[Any] | None = None
        self._ws_dirty: dict[int, Any] | None = None
        self._ws_full: list[Any] | None = None
        self._ws_opaque = False
        list.__init__(self, items)
        for i, v in enumerate(self):
            if type(v) not in _ATOMIC_TYPES:
                stored = adopt(self, i, v, True)
                if stored is not v:
                    _list_setitem(self, i, stored)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # copies and pickles are plain lists: a copy is not in the synced state
        return (list, (list(self),))

    def _ws_flush(self) -> None:
        """Write the pending run of appends into the log (see `_ws_append`).
        Every other op and every reader of the log calls this first."""
        tail = self._ws_tail
        if tail is None:
            return
        self._ws_tail = None
        log = self._ws_log
        if type(log) is list:
            items: list[Any] = _list_getitem(self, slice(tail, None))
            log.extend([("add", i, v) for i, v in enumerate(items, tail)])

    def _ws_record(self, op: tuple[Any, ...]) -> None:
        if self._ws_tail is not None:
            self._ws_flush()
        log = self._ws_log
        if log is None:
            self._ws_log = [op]
            if not self._ws_dirty:
                touch(self)
            return
        if log is changelog.RESET:
            return
        changelog.list_record(log, op)
        if len(log) > 2 * len(self) + 32:
            self._ws_log = changelog.RESET

    def _ws_reset(self) -> None:
        self._ws_tail = None
        if self._ws_parents:
            had = self._ws_log
            self._ws_log = changelog.RESET
            if had is None and not self._ws_dirty:
                touch(self)

    def _index(self, index: Any) -> int:
        n = len(self)
        i = operator.index(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("list index out of range")
        return i

    def _ws_append(self, value: Any) -> None:
        # Appends of leaves to a list that already logs this round are not logged
        # one by one: `_ws_tail` marks where the run starts, and `_ws_flush`
        # writes it out as add ops before any other op or any read of the log.
        if type(value) in _ATOMIC_TYPES:
            if self._ws_parents and type(self._ws_log) is list:
                if self._ws_tail is None:
                    self._ws_tail = len(self)
                _list_append(self, value)
                return
        else:
            if self._ws_tail is not None:
                self._ws_flush()
            value = adopt(self, len(self), value, True)
        _list_append(self, value)
        if self._ws_parents:
            log = self._ws_log
            if log is None:
                self._ws_record(("add", len(self) - 1, value))
            elif log is not _RESET:  # an add never collapses: skip list_record
                log.append(("add", len(self) - 1, value))

    @locked
    def extend(self, values: Any) -> None:
        for value in list(values):
            self.append(value)

    @locked
    def __iadd__(self, values: Any) -> TrackedList:  # type: ignore[override]
        self.extend(values)
        return self

    @locked
    def __imul__(self, n: Any) -> TrackedList:  # type: ignore[override]
        n = operator.index(n)
        if n <= 0:
            self.clear()
        else:
            self.extend(list(self) * (n - 1))
        return self

    @locked
    def insert(self, index: Any, value: Any) -> None:
        if self._ws_tail is not None:
            self._ws_flush()
        n = len(self)
        i = operator.index(index)
        i = max(0, i + n) if i < 0 else min(i, n)
        if type(value) not in _ATOMIC_TYPES:
            value = adopt(self, i, value, True)
        _list_insert(self, i, value)
        if self._ws_parents:
            self._ws_record(("add", i, value))

    @locked
    def pop(self, index: Any = -1) -> Any:
        if not self:
            raise IndexError("pop from empty list")
        if self._ws_tail is not None:
            self._ws_flush()
        i = self._index(index)
        value: Any = _list_pop(self, i)
        if type(value) not in _ATOMIC_TYPES:
            release(self, i, value, True)
        if self._ws_parents:
            self._ws_record(("remove", i))
        return value

    @locked
    def remove(self, value: Any) -> None:
        self.pop(self.index(value))

    @locked
    def clear(self) -> None:
        for i, v in enumerate(self):
            if type(v) not in _ATOMIC_TYPES:
                release(self, i, v, True)
        list.clear(self)
        self._ws_reset()

    @locked
    def sort(self, *args: Any, **kwargs: Any) -> None:
        list.sort(self, *args, **kwargs)
        self._ws_reset()

    @locked
    def reverse(self) -> None:
        list.reverse(self)
        self._ws_reset()

    def _ws_setitem(self, index: Any, value: Any) -> None:
        if self._ws_tail is not None:
            self._ws_flush()
        if type(index) is int and -len(self) <= index < len(self):
            i = index if index >= 0 else index + len(self)
        elif isinstance(index, slice):
            self._set_slice(index, value)
            return
        else:
            i = self._index(index)
        old: Any = _list_getitem(self, i)
        if old is value:
            return
        if type(old) not in _ATOMIC_TYPES:
            release(self, i, old, True)
        if type(value) not in _ATOMIC_TYPES:
            value = adopt(self, i, value, True)
        _list_setitem(self, i, value)
        if self._ws_parents:
            log = self._ws_log
            if log is None or log is _RESET:
                self._ws_record(("replace", i, value))
            else:
                changelog.list_record(log, ("replace", i, value))
                if len(log) > 2 * len(self) + 32:
                    self._ws_log = _RESET

    def _ws_delitem(self, index: Any) -> None:
        if isinstance(index, slice):
            indices = range(*index.indices(len(self)))
            for i in sorted(indices, reverse=True):
                self.pop(i)
            return
        self.pop(index)

    if not native.ENABLED:
        append = locked(_ws_append)
        __setitem__ = locked(_ws_setitem)  # type: ignore[assignment]
        __delitem__ = locked(_ws_delitem)  # type: ignore[assignment]

    def _set_slice(self, index: slice, values: Any) -> None:
        values = list(values)
        start, stop, step = index.indices(len(self))
        if step != 1:
            indices = range(start, stop, step)
            if len(indices) != len(values):
                raise ValueError(
                    f"attempt to assign sequence of size {len(values)} "
                    f"to extended slice of size {len(indices)}"
                )
            for i, v in zip(indices, values, strict=True):
                self[i] = v
            return
        stop = max(stop, start)
        common = min(stop - start, len(values))
        for j in range(common):
            self[start + j] = values[j]
        for _ in range(stop - start - common):
            self.pop(start + common)
        for j in range(common, len(values)):
            self.insert(start + j, values[j])


class TrackedDict(native.DictBase):  # type: ignore[misc]
    """A dict that logs every mutation; `isinstance(x, dict)` stays true.
    Item assignment runs in C when `native.ENABLED` (see `TrackedList`)."""

    __slots__ = ("__weakref__", "_ws_dirty", "_ws_full", "_ws_log", "_ws_opaque", "_ws_parents")

    def __init__(self, items: Any = (), **kwargs: Any) -> None:
        self._ws_parents: dict[int, Link] | None = None
        self._ws_log: dict[Any, bool] | None = None
        self._ws_dirty: dict[int, Any] | None = None
        self._ws_full: list[Any] | None = None
        self._ws_opaque = False
        dict.__init__(self, items, **kwargs)
        for k, v in self.items():
            if type(v) not in _ATOMIC_TYPES:
                stored = adopt(self, k, v, False)
                if stored is not v:
                    _dict_setitem(self, k, stored)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (dict, (dict(self),))

    def _ws_record(self, key: Any, existed: bool) -> None:
        key_record(self, key, existed)
        if type(self._ws_log) is dict and len(self._ws_log) > 2 * len(self) + 32:
            self._ws_log = changelog.RESET

    def _ws_setitem(self, key: Any, value: Any) -> None:
        old = dict.get(self, key, MISSING)
        if old is value:
            return
        if old is not MISSING and type(old) not in _ATOMIC_TYPES:
            release(self, key, old, False)
        if type(value) not in _ATOMIC_TYPES:
            value = adopt(self, key, value, False)
        _dict_setitem(self, key, value)
        if self._ws_parents:
            log = self._ws_log
            if log is None or log is _RESET or key not in log:
                self._ws_record(key, old is not MISSING)

    def _ws_delitem(self, key: Any) -> None:
        old: Any = dict.__getitem__(self, key)
        _dict_delitem(self, key)
        if type(old) not in _ATOMIC_TYPES:
            release(self, key, old, False)
        if self._ws_parents:
            self._ws_record(key, True)

    if not native.ENABLED:
        __setitem__ = locked(_ws_setitem)  # type: ignore[assignment]
        __delitem__ = locked(_ws_delitem)  # type: ignore[assignment]

    @locked
    def pop(self, key: Any, *default: Any) -> Any:
        if key in self:
            value: Any = dict.__getitem__(self, key)
            del self[key]
            return value
        if default:
            return default[0]
        raise KeyError(key)

    @locked
    def popitem(self) -> tuple[Any, Any]:
        if not self:
            raise KeyError("popitem(): dictionary is empty")
        key = next(reversed(self.keys()))
        return key, self.pop(key)

    @locked
    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    @locked
    def update(self, *args: Any, **kwargs: Any) -> None:
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    @locked
    def __ior__(self, other: Any) -> TrackedDict:  # type: ignore[override,misc]
        self.update(other)
        return self

    @locked
    def clear(self) -> None:
        for k, v in self.items():
            if type(v) not in _ATOMIC_TYPES:
                release(self, k, v, False)
        dict.clear(self)
        if self._ws_parents:
            had = self._ws_log
            self._ws_log = changelog.RESET
            if had is None and not self._ws_dirty:
                touch(self)


# --------------------------------------------------------------------------- #
# objects: pydantic models, dataclasses and synced plain objects


class ObjNode:
    """Tracking state of one object, kept in its ``__dict__`` under `NODE`.

    ``owner_id`` guards against copies: `copy.copy` and `model_copy` duplicate
    ``__dict__``, so a node only counts for the object it was made for.
    """

    __slots__ = (
        "__weakref__",
        "_ws_dirty",
        "_ws_full",
        "_ws_log",
        "_ws_opaque",
        "_ws_parents",
        "fields",
        "owner",
        "owner_id",
        "sync",
        "volatile",
    )

    def __init__(self, owner: Any, fields: frozenset[str]) -> None:
        self.owner = weakref.ref(owner)
        self.owner_id = id(owner)
        self.fields = fields
        self.sync: Any = None
        # both shared until they change (a model class's fields, no volatile keys):
        # millions of nested models need no sets of their own
        self.volatile: frozenset[str] = _NONE
        self._ws_parents: dict[int, Link] | None = None
        self._ws_log: dict[Any, bool] | None = None
        self._ws_dirty: dict[int, Any] | None = None
        self._ws_full: list[Any] | None = None
        self._ws_opaque = False

    def __deepcopy__(self, memo: Any) -> None:
        return None

    def __reduce__(self) -> Any:
        return (type(None), ())

    def assign(self, obj: Any, name: str, old: Any, new: Any) -> None:
        """`obj.name` went from `old` to `new` (already stored in ``__dict__``)."""
        if old is not MISSING and type(old) not in _ATOMIC_TYPES:
            release(self, name, old, False)
        if new is not MISSING and type(new) not in _ATOMIC_TYPES:
            stored = adopt(self, name, new, False)
            if stored is not new:
                obj.__dict__[name] = stored
        if self._ws_parents:
            key_record(self, name, old is not MISSING)

    def adopt_all(self, obj: Any, names: Any) -> None:
        d = obj.__dict__
        for name in names:
            value = d.get(name, MISSING)
            if value is MISSING or type(value) in _ATOMIC_TYPES:
                continue
            stored = adopt(self, name, value, False)
            if stored is not value:
                d[name] = stored


def model_fields(obj: Any) -> frozenset[str]:
    """Attributes of a model that are state (and so tracked); one set per class."""
    cls = type(obj)
    fields = _FIELDS.get(cls)
    if fields is None:
        if isinstance(obj, BaseModel):
            fields = frozenset(cls.model_fields)
        elif dataclasses.is_dataclass(obj):
            fields = frozenset(f.name for f in dataclasses.fields(obj))
        else:
            fields = _NONE
        _FIELDS[cls] = fields
    return fields


_NONE: frozenset[str] = frozenset()
_FIELDS: dict[type, frozenset[str]] = {}


def track_model(obj: Any) -> ObjNode:
    """The node of `obj`, made (and its class hooked) on first use."""
    d = obj.__dict__
    node = d.get(NODE)
    if node is not None and node.owner_id == id(obj):
        return node
    node = ObjNode(obj, model_fields(obj))
    d[NODE] = node
    hook_class(type(obj))
    node.adopt_all(obj, node.fields)
    return node


def hook_class(cls: type) -> None:
    """Wrap the class's `__setattr__` so attribute writes reach the node. Plain
    synced classes use descriptors instead (see `descriptors`)."""
    if cls.__dict__.get("__ws_hooked__"):
        return
    if any(k.__dict__.get("__ws_hooked__") for k in cls.__mro__[1:]):
        cls.__ws_hooked__ = True  # type: ignore[attr-defined]
        return
    original: Any = cls.__setattr__

    @locked_setattr
    def __setattr__(self: Any, name: str, value: Any) -> None:
        node = self.__dict__.get(NODE)
        if node is None or node.owner_id != id(self) or name not in node.fields:
            original(self, name, value)
            return
        old = self.__dict__.get(name, MISSING)
        original(self, name, value)
        new = self.__dict__.get(name, MISSING)  # __dict__ may be a new dict now
        if new is not old:
            node.assign(self, name, old, new)

    hook: Any = __setattr__
    if native.speedups is not None:  # the same hook, in C
        hook = native.speedups.SetattrHook(original, __setattr__)
    cls.__setattr__ = hook  # type: ignore[method-assign]
    cls.__ws_hooked__ = True  # type: ignore[attr-defined]


if native.speedups is not None:
    native.speedups.configure(
        TrackedList, TrackedDict, ObjNode, Link, changelog.RESET, MISSING, NODE, call_locked
    )
    # the same two functions in C: called on the first write of every round
    touch = native.speedups.touch
    key_record = native.speedups.key_record
