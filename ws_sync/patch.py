"""From change logs to RFC 6902 operations.

`collect` walks down from a root through dirty children only, so its cost grows
with the change, not with the state. Ops on a node come before ops on its
children, and children are addressed by where they are *now*: the parent's
ops (which may shift them) are already applied by the time the client reaches
theirs. A child sitting where its parent wrote a whole value this round is
skipped, since that value already carries its changes.
"""

from __future__ import annotations

from typing import Any

from . import pointer
from .changelog import MISSING, RESET, fresh_positions
from .serialize import dumps
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
        keymap = keymap if keymap is not None else default_keymap(obj)
        for attr, wire in keymap.items():
            value = obj.__dict__.get(attr, MISSING)
            if value is not MISSING:
                for p in prefixes:
                    ops.append({"op": "add", "path": pointer.join(p, wire), "value": value})
        return
    for p in prefixes:
        ops.append({"op": "replace", "path": p, "value": node})


def _emit_list(lst: TrackedList, prefixes: list[str], ops: list[Op], root: RootNode) -> None:
    log = lst._ws_log
    if log is RESET or (log and len(log) > max(len(lst), 1)):
        _replace_whole(lst, prefixes, ops, None)
        return
    fresh: set[int] = set()
    if log:
        own = [_list_op("", op) for op in log]
        if _whole_is_smaller(lst, own):
            _replace_whole(lst, prefixes, ops, None)
            return
        for p in prefixes:
            ops.extend(_list_op(p, op) for op in log)
        fresh = fresh_positions(log)
    dirty = lst._ws_dirty
    if not dirty:
        return
    for child in dirty.values():
        positions = list_positions(lst, child)
        if fresh:
            positions = [i for i in positions if i not in fresh]
        if positions:
            emit(child, [f"{p}/{i}" for p in prefixes for i in positions], ops, root)


def _list_op(prefix: str, op: tuple[Any, ...]) -> Op:
    if op[0] == "remove":
        return {"op": "remove", "path": f"{prefix}/{op[1]}"}
    return {"op": op[0], "path": f"{prefix}/{op[1]}", "value": op[2]}


def _whole_is_smaller(container: Any, own: list[Op]) -> bool:
    """Whether one replace is smaller than these ops. A single op stays as it is
    (it is exact, and it is what a reader of the patch expects); several are
    measured only when they are a fair share of the container, so the cost
    stays with the change."""
    if len(own) < 2 or len(own) * _MEASURE_RATIO < len(container):
        return False
    return len(dumps(container)) < len(dumps(own))


_MEASURE_RATIO = 16


def list_positions(lst: list[Any], child: Any) -> list[int]:
    """Where `child` sits in `lst` now: its hints if they still hold, else a scan."""
    link = link_to(child, lst)
    if link is None:
        return []
    value = value_of(child)
    n = len(lst)
    hints = link.hints or ()
    valid = sorted({h for h in hints if h < n and lst[h] is value})
    if len(valid) == link.count:
        return valid
    found = [i for i, v in enumerate(lst) if v is value]
    link.hints = list(found)
    link.count = len(found)
    return found


def _emit_dict(d: TrackedDict, prefixes: list[str], ops: list[Op], root: RootNode) -> None:
    log = d._ws_log
    if log is RESET or (log and len(log) > max(len(d), 1)):
        _replace_whole(d, prefixes, ops, None)
        return
    fresh: set[Any] = set()
    if log:
        own: list[Op] = []
        fresh = _emit_keys(log, dict.get, d, _same, [""], own)
        if _whole_is_smaller(d, own):
            _replace_whole(d, prefixes, ops, None)
            return
        for p in prefixes:
            ops.extend({**op, "path": p + op["path"]} for op in own)
    _emit_keyed_children(d, fresh, _same, prefixes, ops, root)


def _same(key: Any) -> Any:
    return key


def _emit_obj(
    node: ObjNode, prefixes: list[str], ops: list[Op], root: RootNode, keymap: Any
) -> None:
    obj = node.owner()
    if obj is None:
        return
    wires = keymap if keymap is not None else default_keymap(obj)
    log = node._ws_log
    if log is RESET:
        _replace_whole(node, prefixes, ops, wires)
        return
    fresh = _emit_keys(log, _get_attr, obj.__dict__, wires.get, prefixes, ops) if log else set()
    _emit_keyed_children(node, fresh, wires.get, prefixes, ops, root)


def _get_attr(d: dict[str, Any], key: str, default: Any) -> Any:
    return d.get(key, default)


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
    node: Any, fresh: set[Any], wire: Any, prefixes: list[str], ops: list[Op], root: RootNode
) -> None:
    dirty = node._ws_dirty
    if not dirty:
        return
    for child in dirty.values():
        link = link_to(child, node)
        if link is None or not link.keys:
            continue
        paths = [
            pointer.join(p, name)
            for key in link.keys
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
    stack = [(start, id(root), True)]
    seen: set[int] = set()
    while stack:
        node, parent_id, parent_exclusive = stack.pop()
        nid = id(node)
        if nid in seen:
            continue
        seen.add(nid)
        dirty = node._ws_dirty
        had = node._ws_log is not None or bool(dirty)
        node._ws_log = None
        node._ws_dirty = None
        if node._ws_full:
            node._ws_full = [r for r in node._ws_full if r is not root] or None
        parents = node._ws_parents
        exclusive = parent_exclusive and (
            not parents or (len(parents) == 1 and parent_id in parents)
        )
        if had and not exclusive:
            others = [r for r in roots_of(node) if r is not root]
            if others:
                full = node._ws_full or []
                full.extend(r for r in others if all(r is not f for f in full))
                node._ws_full = full
        if dirty:
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
