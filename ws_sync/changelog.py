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


def fresh_positions(log: list[Any]) -> set[int]:
    """Final indexes written by a list log: values there go out whole, so the
    pending changes of the children sitting there are already included."""
    fresh: set[int] = set()
    for op in log:
        kind, i = op[0], op[1]
        if kind == "add":
            fresh = {j + 1 if j >= i else j for j in fresh}
            fresh.add(i)
        elif kind == "remove":
            fresh = {j - 1 if j > i else j for j in fresh if j != i}
        else:
            fresh.add(i)
    return fresh
