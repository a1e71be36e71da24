"""From change logs to RFC 6902 operations.

`collect` walks down from a root through dirty children only, so its cost grows
with the change, not with the state. Ops on a node come before ops on its
children, and children are addressed by where they are *now*: the parent's
ops (which may shift them) are already applied by the time the client reaches
theirs. A child sitting where its parent wrote a whole value this round is
skipped, since that value already carries its changes.
"""

from __future__ import annotations

import itertools
from collections.abc import Set as AbstractSet
from typing import Any

from . import native, pointer
from .changelog import MISSING, RESET, shift_forward, shifting_ops, written_this_round
from .serialize import CUSTOM, dumps, field_json
from .tracking import NODE, ObjNode, TrackedDict, TrackedList, link_to, value_of

Op = dict[str, Any]


class RootNode:
    """The top of one synced object's state; its only child is the object's node."""

    __slots__ = ("__weakref__", "_ws_dirty", "_ws_full", "_ws_log", "_ws_opaque", "_ws_parents")

    def __init__(self) -> None:
        self._ws_parents = None
        self._ws_log = None
        self._ws_dirty: dict[int, Any] | None = None
        self._ws_full = None
        self._ws_opaque = False


def collect(root: RootNode, keymap: dict[str, str]) -> list[Op]:
    """Consume the pending changes under `root` and return them as ops."""
    dirty = root._ws_dirty
    if not dirty:
        return []
    root._ws_dirty = None
    ops: list[Op] = []
    for node in dirty.values():
        parents = node._ws_parents
        if parents and id(root) in parents:
            emit(node, [""], ops, root, keymap)
        consume(node, root)
    return ops


def emit(node: Any, prefixes: list[str], ops: list[Op], root: RootNode, keymap: Any = None) -> None:
    t = type(node)
    full = node._ws_full
    if full and any(r is root for r in full):
        _replace_whole(node, prefixes, ops, keymap)
    elif t is TrackedList:
        _emit_list(node, prefixes, ops, root)
    elif t is TrackedDict:
        _emit_dict(node, prefixes, ops, root)
    elif t is ObjNode:
        _emit_obj(node, prefixes, ops, root, keymap)


def _replace_whole(node: Any, prefixes: list[str], ops: list[Op], keymap: Any) -> None:
    if type(node) is ObjNode:
        obj = node.owner()
        if obj is None:
            return
        custom = CUSTOM[type(obj)]
        if custom.whole and keymap is None:
            _replace_model(obj, prefixes, ops)
            return
        keymap = keymap if keymap is not None else default_keymap(obj)
        d = obj.__dict__
        for attr, wire in keymap.items():
            if attr in d:
                value = field_json(obj, attr) if attr in custom.fields else d[attr]
                for p in prefixes:
                    ops.append({"op": "add", "path": pointer.join(p, wire), "value": value})
        return
    for p in prefixes:
        ops.append({"op": "replace", "path": p, "value": node})


def _emit_list(lst: TrackedList, prefixes: list[str], ops: list[Op], root: RootNode) -> None:
    if lst._ws_tail is not None:
        lst._ws_flush()
    log: Any = lst._ws_log
    if log is RESET or (log and len(log) > max(len(lst), 1)):
        _replace_whole(lst, prefixes, ops, None)
        return
    written: set[int] = set()
    if log:
        if _list_whole_is_smaller(lst, log):
            _replace_whole(lst, prefixes, ops, None)
            return
        for p in prefixes:
            ops.extend(_list_op(p, op) for op in log)
        written = {id(op[2]) for op in log if op[0] != "remove"}
    dirty = lst._ws_dirty
    if not dirty:
        return
    for child in dirty.values():
        positions = list_positions(lst, child)
        if written and id(value_of(child)) in written:  # re-added: skip where it is new
            positions = [i for i in positions if not written_this_round(log, i)]
        if len(positions) == 1 and len(prefixes) == 1:  # the usual case
            emit(child, [f"{prefixes[0]}/{positions[0]}"], ops, root)
        elif positions:
            emit(child, [f"{p}/{i}" for p in prefixes for i in positions], ops, root)


def _list_whole_is_smaller(lst: TrackedList, log: list[Any]) -> bool:
    return _whole_is_smaller(lst, len(log), lambda: [_list_op("", op) for op in log])


def _list_op(prefix: str, op: tuple[Any, ...]) -> Op:
    if op[0] == "remove":
        return {"op": "remove", "path": f"{prefix}/{op[1]}"}
    return {"op": op[0], "path": f"{prefix}/{op[1]}", "value": op[2]}


def _whole_is_smaller(container: Any, n_ops: int, make_ops: Any) -> bool:
    # `make_ops`: the ops, or a function making them (only when they are weighed)
    """Whether one replace is smaller than these ops. A single op stays as it is
    (it is exact, and it is what a reader of the patch expects); several are
    weighed only when they are a fair share of the container. The ops are
    measured (their cost is the change's); the container is estimated from a
    sample, so the decision never costs a pass over the whole state."""
    if n_ops < 2 or n_ops * _MEASURE_RATIO < len(container):
        return False
    made = make_ops() if callable(make_ops) else make_ops
    return _estimated_size(container) < len(dumps(made))


def _estimated_size(container: Any) -> int:
    n = len(container)
    if n <= _SAMPLE:
        return len(dumps(container))
    if isinstance(container, dict):
        items = list(itertools.islice(container.items(), _SAMPLE))
        sample = sum(len(dumps(k)) + len(dumps(v)) + 2 for k, v in items)
    else:
        sample = sum(len(dumps(container[i * n // _SAMPLE])) + 1 for i in range(_SAMPLE))
    return sample * n // _SAMPLE


_SAMPLE = 32
_MEASURE_RATIO = 16


def list_positions(lst: TrackedList, child: Any) -> list[int]:
    """Where `child` sits in `lst` now. Its index hints are checked; hints from
    an earlier round are first moved through the shifts since (the list keeps
    a short history of them); only when that fails is the list scanned."""
    link = link_to(child, lst)
    if link is None:
        return []
    if lst._ws_tail is not None:
        lst._ws_flush()
    value = child.owner() if type(child) is ObjNode else child
    hints = link.hints or []
    if link.count == 1 and len(hints) == 1 and hints[0] < len(lst) and lst[hints[0]] is value:
        pass  # the usual case: one place, and it still holds
    elif len(hints := _checked(lst, value, hints)) != link.count:
        moved = _moved_hints(lst, link)
        hints = _checked(lst, value, moved) if moved is not None else []
        if len(hints) != link.count:
            hints = [i for i, v in enumerate(lst) if v is value]
            link.count = len(hints)
    link.hints = hints
    log = lst._ws_log
    link.epoch = lst._ws_epoch if log is not RESET else -1
    link.logpos = len(log) if log else 0
    return hints


def _checked(lst: list[Any], value: Any, hints: Any) -> list[int]:
    n = len(lst)
    return sorted({h for h in hints if 0 <= h < n and lst[h] is value})


def _moved_hints(lst: TrackedList, link: Any) -> list[int] | None:
    """The hints of `link` moved to now, or None when they are older than the
    list's history (or were never placed in it)."""
    if link.epoch < 0 or not link.hints:
        return None
    log = lst._ws_log
    if log is RESET:
        return None
    shifts: list[tuple[int, str, int]] = []
    start = link.logpos
    if link.epoch != lst._ws_epoch:
        history = lst._ws_history
        if not history or history[0][0] > link.epoch:
            return None
        for epoch, ops in history:
            if epoch >= link.epoch:
                shifts.extend(op for op in ops if epoch != link.epoch or op[0] >= start)
        start = 0
    if log:
        shifts.extend(op for op in shifting_ops(log, len(lst)) if op[0] >= start)
    return shift_forward(shifts, link.hints)


def archive(lst: TrackedList, log: Any) -> None:
    """Keep the shifts of a consumed list log, so index hints taken before it
    can be moved instead of found by a scan. Bounded: old rounds are dropped."""
    lst._ws_epoch += 1
    if log is RESET:
        lst._ws_history = None
        return
    history = lst._ws_history
    if history is None:
        history = lst._ws_history = []
    history.append((lst._ws_epoch - 1, shifting_ops(log, len(lst))))
    total = sum(len(ops) for _, ops in history)
    while history and (len(history) > _HISTORY_ROUNDS or total > _HISTORY_OPS):
        total -= len(history.pop(0)[1])


_HISTORY_ROUNDS = 32
_HISTORY_OPS = 512


def _emit_dict(d: TrackedDict, prefixes: list[str], ops: list[Op], root: RootNode) -> None:
    log = d._ws_log
    if log is RESET or (log and len(log) > max(len(d), 1)):
        _replace_whole(d, prefixes, ops, None)
        return
    fresh: set[Any] = set()
    if log:
        if len(log) >= 2 and len(log) * _MEASURE_RATIO >= len(d):
            own: list[Op] = []
            fresh = _emit_keys(log, dict.get, d, _same, [""], own)
            if _whole_is_smaller(d, len(own), own):
                _replace_whole(d, prefixes, ops, None)
                return
            for p in prefixes:
                ops.extend({**op, "path": p + op["path"]} for op in own)
        else:
            fresh = _emit_keys(log, dict.get, d, _same, prefixes, ops)
    if d._ws_dirty:
        _emit_keyed_children(d, fresh, _same, prefixes, ops, root)


def _same(key: Any) -> Any:
    return key


def _emit_obj(
    node: ObjNode, prefixes: list[str], ops: list[Op], root: RootNode, keymap: Any
) -> None:
    obj = node.owner()
    if obj is None:
        return
    custom = CUSTOM[type(obj)]
    if custom.whole and keymap is None:  # a model serializer shapes it: no way inside
        _replace_model(obj, prefixes, ops)
        return
    if keymap is not None:
        wires = keymap
    elif node.sync is not None:  # a synced object nested in another's state
        wires = node.sync.tracked_keymap
    else:
        wires = _keymaps.get(type(obj)) or model_keymap(type(obj))
    log = node._ws_log
    if log is RESET:
        _replace_whole(node, prefixes, ops, wires)
        return
    get = _field_getter(obj, custom.fields) if custom.fields else dict.get
    fresh = _emit_keys(log, get, obj.__dict__, wires.get, prefixes, ops) if log else _NONE
    if node._ws_dirty:
        if custom.fields:
            fresh = _emit_custom_fields(node, obj, custom.fields, fresh, wires, prefixes, ops)
        _emit_keyed_children(node, fresh, wires.get, prefixes, ops, root)


def _replace_model(obj: Any, prefixes: list[str], ops: list[Op]) -> None:
    for p in prefixes:
        ops.append({"op": "replace", "path": p, "value": obj})


def _field_getter(obj: Any, fields: AbstractSet[str]) -> Any:
    """`dict.get` on the object's ``__dict__``, but fields whose JSON the model
    shapes come serialized by the model."""

    def get(store: dict[str, Any], key: str, default: Any) -> Any:
        if key not in store:
            return default
        return field_json(obj, key) if key in fields else store[key]

    return get


def _emit_custom_fields(
    node: ObjNode,
    obj: Any,
    fields: AbstractSet[str],
    fresh: AbstractSet[Any],
    wires: dict[str, str],
    prefixes: list[str],
    ops: list[Op],
) -> set[Any]:
    """A change inside a field the model serializes its own way: the field goes
    out whole (its JSON need not mirror its value, so no op inside it would do)."""
    out = set(fresh)
    for child in node._ws_dirty.values():  # type: ignore[union-attr]
        link = link_to(child, node)
        if link is None or not link.keys:
            continue
        for key in link.keys & fields:
            name = wires.get(key)
            if key in out or name is None:
                continue
            out.add(key)
            value = field_json(obj, key)
            for p in prefixes:
                ops.append({"op": "replace", "path": pointer.join(p, name), "value": value})
    return out


_NONE: frozenset[Any] = frozenset()


def _emit_keys(
    log: dict[Any, bool], get: Any, store: Any, wire: Any, prefixes: list[str], ops: list[Op]
) -> set[Any]:
    fresh: set[Any] = set()
    for key, existed in log.items():
        name = wire(key)
        if name is None:
            continue
        value = get(store, key, MISSING)
        if value is MISSING:
            if existed:
                for p in prefixes:
                    ops.append({"op": "remove", "path": pointer.join(p, name)})
            continue
        fresh.add(key)
        kind = "replace" if existed else "add"
        for p in prefixes:
            ops.append({"op": kind, "path": pointer.join(p, name), "value": value})
    return fresh


def _emit_keyed_children(
    node: Any,
    fresh: AbstractSet[Any],
    wire: Any,
    prefixes: list[str],
    ops: list[Op],
    root: RootNode,
) -> None:
    dirty = node._ws_dirty
    if not dirty:
        return
    for child in dirty.values():
        link = link_to(child, node)
        if link is None or not link.keys:
            continue
        keys = link.keys
        if len(keys) == 1 and len(prefixes) == 1:  # the usual case: one place
            for key in keys:
                if key not in fresh and (name := wire(key)) is not None:
                    emit(child, [pointer.join(prefixes[0], name)], ops, root)
            continue
        paths = [
            pointer.join(p, name)
            for key in keys
            if key not in fresh and (name := wire(key)) is not None
            for p in prefixes
        ]
        if paths:
            emit(child, paths, ops, root)


def default_keymap(obj: Any) -> dict[str, str]:
    """How a tracked object nested in state names its attributes on the wire."""
    node = obj.__dict__.get(NODE)
    sync = node.sync if node is not None else None
    if sync is not None:
        return sync.tracked_keymap
    return model_keymap(type(obj))


_keymaps: dict[type, dict[str, str]] = {}


def model_keymap(cls: type) -> dict[str, str]:
    """Field name -> serialized name, as pydantic's `by_alias=True` writes it."""
    cached = _keymaps.get(cls)
    if cached is not None:
        return cached
    import dataclasses

    from pydantic import BaseModel

    if issubclass(cls, BaseModel):
        keymap = {
            name: (info.serialization_alias or info.alias or name)
            for name, info in cls.model_fields.items()
            if not info.exclude
        }
    elif dataclasses.is_dataclass(cls):
        keymap = {f.name: f.name for f in dataclasses.fields(cls)}
    else:
        keymap = {}
    _keymaps[cls] = keymap
    return keymap


def consume(start: Any, root: RootNode) -> None:
    """Mark everything pending under `start` as sent to `root`. Other roots that
    can reach a consumed node (one object in two synced states) get it whole.
    A node whose only parent is exclusive to `root` is exclusive too, so the
    walk up to find other roots is only taken below shared nodes."""
    # no `seen` set: a node reached twice (aliasing) is already cleared the
    # second time, so it pushes nothing and the walk still ends
    stack = [(start, id(root), True)]
    while stack:
        node, parent_id, parent_exclusive = stack.pop()
        dirty = node._ws_dirty
        log = node._ws_log
        if log is None and not dirty and not node._ws_full:
            continue
        if log is not None and type(node) is TrackedList:
            node._ws_tail = None  # appends move nothing: the history needs none of them
            archive(node, log)
        node._ws_log = None
        node._ws_dirty = None
        if node._ws_full:
            node._ws_full = [r for r in node._ws_full if r is not root] or None
        parents = node._ws_parents
        exclusive = parent_exclusive and (
            not parents or (len(parents) == 1 and parent_id in parents)
        )
        if not exclusive and (log is not None or dirty):
            others = [r for r in roots_of(node) if r is not root]
            if others:
                full = node._ws_full or []
                full.extend(r for r in others if all(r is not f for f in full))
                node._ws_full = full
        if dirty:
            nid = id(node)
            for child in dirty.values():
                stack.append((child, nid, exclusive))


def roots_of(node: Any) -> list[RootNode]:
    roots: list[RootNode] = []
    stack = [node]
    seen = {id(node)}
    while stack:
        n = stack.pop()
        if type(n) is RootNode:
            roots.append(n)
            continue
        for link in tuple((n._ws_parents or {}).values()):
            p = link.ref()
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                stack.append(p)
    return roots


if native.speedups is not None:  # the same walk in C; archive and roots_of stay here
    native.speedups.configure_patch(archive, roots_of)
    consume = native.speedups.consume
