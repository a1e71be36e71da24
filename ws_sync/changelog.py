"""The change log of one node: what happened to it since the last sync.

Lists log ``("add", i, value)``, ``("remove", i)`` and ``("replace", i, value)``
with indexes as they were at that moment, so replaying them in order is exact.
Mappings and objects log ``{key: existed_before}``: the first write to a key
decides whether the client needs ``add``, ``replace`` or ``remove``, and later
writes to the same key collapse into it. `RESET` means "resend the node whole",
which sort, clear and overlong logs turn into.
"""

from __future__ import annotations

from typing import Any


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __bool__(self) -> bool:
        return True


MISSING: Any = _Marker("MISSING")
RESET: Any = _Marker("RESET")


def list_record(log: list[Any], op: tuple[Any, ...]) -> None:
    """Append `op`; a replace of the slot the previous op just wrote collapses into it."""
    if op[0] == "replace" and log:
        last = log[-1]
        if last[0] != "remove" and last[1] == op[1]:
            log[-1] = (last[0], op[1], op[2])
            return
    log.append(op)


def written_this_round(log: list[Any], position: int) -> bool:
    """Whether the final index `position` was written by this list log (then
    the value there goes out whole, with its children's changes in it). Walks
    the log backwards, undoing the shifts: O(len(log))."""
    p = position
    for op in reversed(log):
        kind, i = op[0], op[1]
        if kind == "add":
            if p == i:
                return True
            if p > i:
                p -= 1
        elif kind == "remove":
            if p >= i:
                p += 1
        elif p == i:
            return True
    return False


def shifting_ops(log: list[Any], final_len: int) -> list[tuple[int, str, int]]:
    """The ops of a list log that moved elements already there, as (index in
    the log, kind, list index): inserts and removals before the end. Appends,
    pops from the end and replaces move nothing, so index hints survive them."""
    out: list[tuple[int, str, int]] = []
    n = final_len
    for k in range(len(log) - 1, -1, -1):
        kind, i = log[k][0], log[k][1]
        if kind == "add":
            n -= 1  # the length before the add
            if i < n:
                out.append((k, "add", i))
        elif kind == "remove":
            if i < n:  # n is the length after the removal
                out.append((k, "remove", i))
            n += 1
    out.reverse()
    return out


def shift_forward(ops: list[tuple[int, str, int]], positions: list[int]) -> list[int]:
    """Move indexes through shifting ops; an index whose element was removed is dropped."""
    out = []
    for p in positions:
        for _, kind, i in ops:
            if kind == "add":
                if p >= i:
                    p += 1
            elif p == i:
                p = -1
                break
            elif p > i:
                p -= 1
        if p >= 0:
            out.append(p)
    return out
