"""Concurrent JSON Patch ops, made to apply one after the other.

A client's write is made on version b; by the time it arrives, commits after
b may have shifted, removed or replaced what it points at. `transform`
rewrites the write to apply after those commits, as ShareDB's json0 does for
its own ops:

- list indexes shift across ``add``/``remove``/``move`` in the same list (an
  insert at the same index as a committed one goes after it);
- an op whose target, or any ancestor of it, was removed or replaced is
  dropped (``add`` at a removed position or key is kept: it inserts there);
- two writes of the same path: the later commit wins, so the write is kept;
- ``move`` is a ``remove`` then an ``add``, ``copy`` an ``add``, ``test``
  changes nothing; ops inside a moved value are dropped with it.

Whether a token is a list index or an object key is not in the pointer:
`is_list(tokens)` says whether the container at `tokens` is a list (in the
document the ops were made on). The same rules, and the table of cases in
``tests/transform_cases.json``, hold for the browser client's copy in
``static/ws-sync.js``. Cost: O(ops x committed ops x path length).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import pointer

Op = dict[str, Any]
IsList = Callable[[tuple[str, ...]], bool]


def transform(ops: list[Op], committed: list[Op], is_list: IsList) -> tuple[list[Op], list[int]]:
    """`ops` rewritten to apply after `committed`, and the indexes of the ops
    that were dropped. Each op of `ops` applies after the ones before it, so
    the committed ops are carried past each kept op in turn."""
    steps = [s for c in committed for s in _steps(c)]
    out: list[Op] = []
    dropped: list[int] = []
    for i, op in enumerate(ops):
        moved = _past_all(op, steps, is_list)
        if moved is None:
            dropped.append(i)
            continue
        out.append(moved)
        steps = [s for step in steps if (s := past(step, moved, is_list)) is not None]
    return out, dropped


def _past_all(op: Op, steps: list[Op], is_list: IsList) -> Op | None:
    moved: Op | None = op
    for step in steps:
        if moved is None:
            return None
        moved = past(moved, step, is_list)
    return moved


def past(op: Op, first: Op, is_list: IsList) -> Op | None:
    """`op` after `first` was applied before it (and wins ties); None if
    `first` removed or replaced what `op` needs."""
    for step in _steps(first):
        path = _shift(op, "path", step, is_list)
        if path is None:
            return None
        source = _shift(op, "from", step, is_list) if "from" in op else None
        if "from" in op and source is None:
            return None
        op = {**op, "path": path} if source is None else {**op, "path": path, "from": source}
    return op


def _steps(op: Op) -> list[Op]:
    """An op as the structural steps it takes: a move removes then adds."""
    kind = op.get("op")
    if kind == "move":
        return [{"op": "remove", "path": op["from"]}, {"op": "add", "path": op["path"]}]
    if kind == "copy":
        return [{"op": "add", "path": op["path"]}]
    if kind in ("add", "remove", "replace"):
        return [op]
    return []


def _shift(op: Op, field: str, step: Op, is_list: IsList) -> str | None:
    """The pointer `op[field]` after `step`; None if `step` took its target."""
    x = pointer.split(op[field])
    t = pointer.split(step["path"])
    kind = step["op"]
    own = field == "path" and op.get("op") == "add"  # inserting, not pointing at a value
    n = len(t)
    if n == 0:  # the whole document replaced or removed
        return None if x else op[field]
    parent = t[:-1]
    under = len(x) > n and x[:n] == t
    same = x == t
    if is_list(tuple(parent)):
        if len(x) < n or x[: n - 1] != parent:
            return op[field]
        j, k = x[n - 1], t[n - 1]
        if j == "-" or k == "-" or not (j.isdigit() and k.isdigit()):
            return op[field]
        ji, ki = int(j), int(k)
        if kind == "add":
            ji = ji + 1 if ji >= ki else ji
        elif kind == "remove":
            if ji == ki and not (own and len(x) == n):
                return None
            ji = ji - 1 if ji > ki else ji
        elif kind == "replace" and ji == ki and len(x) > n:
            return None
        return pointer.compose([*x[: n - 1], str(ji), *x[n:]])
    if under:
        return None  # an ancestor was replaced or removed
    if same and kind == "remove" and not own:
        return None
    return op[field]
