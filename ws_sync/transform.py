"""Concurrent JSON Patch ops, made to apply one after the other.

A client's write is made on version b; by the time it arrives, commits after
b may have shifted, removed, replaced or moved what it points at.
`transform` rewrites the write to apply after those commits, as ShareDB's
json0 does for its own ops:

- list indexes shift across ``add``/``remove``/``move`` in the same list; of
  two inserts at one index, the earlier commit's comes first;
- an op whose target, or any ancestor of it, was removed or replaced is
  dropped (``add`` at a removed position or key is kept: it inserts there);
- an op inside a moved value follows it; of two moves of one value, the later
  commit's wins;
- two writes of the same path: the later commit wins, so the write is kept;
- ``copy`` is an ``add`` there, ``test`` changes nothing.

Each op of a write applies after the ones before it, so the committed ops are
carried past each op in turn (also past one that is dropped: the client had
applied it). Whether a token is a list index or an object key is not in the
pointer: `is_list(tokens)` says whether the container at `tokens` is a list.
The browser client (``static/ws-sync.js``) implements the same rules; both
pass the table of cases in ``tests/transform_cases.json``. Cost: O(ops x
committed ops x path length).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from . import pointer
from .pointer import is_index as _is_index

Op = dict[str, Any]
IsList = Callable[[tuple[str, ...]], bool]

_INSERTS = ("add", "move", "copy")

_split = lru_cache(maxsize=1 << 16)(pointer.split)
"""`pointer.split`, memoized: a write's paths are split once per committed op
they meet, not once per rule that reads them. Callers never mutate the lists."""


def transform(ops: list[Op], committed: list[Op], is_list: IsList) -> tuple[list[Op], list[int]]:
    """`ops` rewritten to apply after `committed`, and the indexes of the ops
    that were dropped."""
    out, dropped, _ = transform_both(ops, committed, is_list)
    return out, dropped


def transform_both(
    ops: list[Op], committed: list[Op], is_list: IsList
) -> tuple[list[Op], list[int], list[Op]]:
    """`transform`, plus `committed` carried past all of `ops` (what a client
    rebases the edits it made after `ops` over)."""
    steps = [step for c in committed if (step := _structural(c)) is not None]
    out: list[Op] = []
    dropped: list[int] = []
    for i, op in enumerate(ops):
        current: Op | None = op
        carried: list[Op] = []
        for step in steps:
            if current is None:
                carried.append(step)
                continue
            moved = past(step, current, is_list, later=False)
            current = past(current, step, is_list, later=True)
            if moved is not None:
                carried.append(moved)
        steps = carried
        if current is None:
            dropped.append(i)
        else:
            out.append(current)
    return out, dropped, steps


def _structural(op: Op) -> Op | None:
    kind = op.get("op")
    if kind == "copy":
        return {"op": "add", "path": op["path"]}
    if kind in ("add", "remove", "replace", "move"):
        return op
    return None


def past(op: Op, first: Op, is_list: IsList, later: bool = True) -> Op | None:
    """`op` after `first` was applied; None if `first` took what `op` needs.
    `later`: `op` is the later of the two (it loses ties between inserts and
    wins between two moves of one value)."""
    kind = first.get("op")
    if kind == "copy":
        first = {"op": "add", "path": first["path"]}
    elif kind not in ("add", "remove", "replace", "move"):
        return op
    fields = ("path", "from") if "from" in op else ("path",)
    out = dict(op)
    for field in fields:
        own = field == "path" and op.get("op") in _INSERTS
        tokens = _split(op[field])
        if first["op"] == "move" and field == "path" and op.get("op") == "move":
            shifted = _target_past_move(tokens, _split(op["from"]), first, is_list, later)
        elif first["op"] == "move":
            shifted = _past_move(tokens, own, first, is_list, later, op, field)
        elif field == "path" and op.get("op") == "move":
            shifted = _target_past(tokens, _split(op["from"]), first, is_list, later)
        else:
            shifted = _shift(tokens, own, first, is_list, later)
        if shifted is None:
            return None
        if shifted is not tokens:
            out[field] = pointer.compose(shifted)
    return out


def _target_past(
    target: list[str], source: list[str], step: Op, is_list: IsList, later: bool
) -> list[str] | None:
    """A move's target after `step`. In the move's own list the target index
    counts without the moved item, so `step` is seen that way too."""
    n = len(target)
    s = _split(step["path"])
    same_list = (
        len(source) == n
        and source[:-1] == target[:-1]
        and len(s) >= n
        and s[: n - 1] == target[:-1]
        and _is_index(source[-1])
        and _is_index(s[n - 1])
        and is_list(tuple(target[:-1]))
    )
    if not same_list:
        return _shift(target, True, step, is_list, later)
    f, k = int(source[-1]), int(s[n - 1])
    if k == f and step["op"] != "add":
        return target  # the moved item itself: its source decides
    seen = k if k < f or (k == f and step["op"] == "add") else k - 1
    step = {**step, "path": pointer.compose([*s[: n - 1], str(seen), *s[n:]])}
    return _shift(target, True, step, is_list, later)


def _target_past_move(
    target: list[str], source: list[str], move: Op, is_list: IsList, later: bool
) -> list[str] | None:
    """A move's target after another move: its remove, then its add, each
    seen without the item this move takes (as `_target_past`)."""
    if source == _split(move["from"]):  # one item moved twice: its target stays
        return target
    removal = {"op": "remove", "path": move["from"]}
    after = _target_past(target, source, removal, is_list, later)
    moved_source = _shift(source, False, removal, is_list, later)
    if after is None or moved_source is None:
        return None
    return _target_past(after, moved_source, {"op": "add", "path": move["path"]}, is_list, later)


def _past_move(
    x: list[str], own: bool, move: Op, is_list: IsList, later: bool, op: Op, field: str
) -> list[str] | None:
    source, target = _split(move["from"]), _split(move["path"])
    n = len(source)
    if not own and x[:n] == source:  # the moved value, or inside it: follow it
        if field == "from" and op.get("op") == "move" and x == source and not later:
            return None  # both moved this value (in place, too): the later move wins
        return target + x[n:]
    removed = _shift(x, own, {"op": "remove", "path": move["from"]}, is_list, later)
    if removed is None:
        return None
    return _shift(removed, own, {"op": "add", "path": move["path"]}, is_list, later)


def _shift(x: list[str], own: bool, step: Op, is_list: IsList, later: bool) -> list[str] | None:
    """The tokens `x` after `step` (add, remove or replace); None if `step`
    took its target. `own`: `x` is an insert position, not a value."""
    t = _split(step["path"])
    kind = step["op"]
    n = len(t)
    if n == 0:  # the whole document replaced or removed
        return None if x else x
    if len(x) < n or x[: n - 1] != t[:-1]:
        return x  # not in the same container
    at_level = len(x) == n
    if is_list(tuple(t[:-1])):
        j, k = x[n - 1], t[n - 1]
        if j == "-" or k == "-" or not (_is_index(j) and _is_index(k)):
            return x
        ji, ki = int(j), int(k)
        if kind == "add":
            if ji > ki or (ji == ki and not (own and at_level and not later)):
                ji += 1
        elif kind == "remove":
            if ji == ki and not (own and at_level):
                return None
            if ji > ki:
                ji -= 1
        elif kind == "replace" and ji == ki and not at_level:
            return None
        return [*x[: n - 1], str(ji), *x[n:]]
    if x[n - 1] != t[n - 1]:
        return x
    if not at_level:
        return None  # an ancestor was replaced or removed
    if kind == "remove" and not own:
        return None
    return x
