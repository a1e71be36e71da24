"""The C hot paths (`ws_sync._speedups`) against the pure-Python reference.

This module runs in both modes: `scripts/test.sh` runs the core tests a second
time with ``WS_SYNC_PURE=1``. The differential test runs one random script of
mutations in a subprocess per mode and requires the same patches.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError
from pydantic_core import to_json

from ws_sync import Sync, native
from ws_sync.tracking import TrackedDict, TrackedList

ROOT = Path(__file__).resolve().parent.parent


class Holder:
    def __init__(self) -> None:
        self.count = 0
        self.items: list[Any] = [0, 1, 2]
        self.data: dict[str, Any] = {"a": 1}


def synced() -> tuple[Holder, Sync]:
    h = Holder()
    return h, Sync(h, "H", sync_all=True)


def state(h: Holder) -> Any:
    return json.loads(to_json({"count": h.count, "items": h.items, "data": h.data}))


def replay(h: Holder, s: Sync, before: Any) -> list[Any]:
    """Collect the patch, check it turns `before` into the current state."""
    ops = s.collect()
    assert jsonpatch.apply_patch(before, ops) == state(h)
    return ops


def test_mode_follows_the_environment() -> None:
    pure = os.environ.get("WS_SYNC_PURE", "") not in ("", "0")
    if pure:
        assert not native.ENABLED
        assert TrackedList.append.__wrapped__ is TrackedList._ws_append  # under threads.locked
    elif os.environ.get("WS_SYNC_REQUIRE_NATIVE"):
        assert native.ENABLED, "ws_sync._speedups was not built"
    if native.ENABLED:
        assert native.speedups is not None
        assert TrackedList.append is native.speedups.ListBase.append
        assert TrackedList.__mro__[1] is native.speedups.ListBase
        assert TrackedDict.__mro__[1] is native.speedups.DictBase

        class Plain:  # the benchmarks' floor for a data descriptor
            x = native.speedups.StoreOnly("x")

        p = Plain()
        p.x = 1
        assert p.__dict__ == {"x": 1} and p.x == 1
        del p.x
        assert p.__dict__ == {}


def test_a_run_of_appends_is_logged_at_the_next_op() -> None:
    h, s = synced()
    before = state(h)
    h.items.append(3)  # first op of the round: logged, marks the list dirty
    h.items.append(4)
    h.items.append(5)
    assert h.items._ws_tail == 4  # the run starts at index 4, nothing logged yet
    assert len(h.items._ws_log) == 1
    h.items[4] = 40  # another op: the run is written out first
    assert h.items._ws_tail is None
    assert h.items._ws_log == [("add", 3, 3), ("add", 4, 4), ("add", 5, 5), ("replace", 4, 40)]
    replay(h, s, before)


@pytest.mark.parametrize(
    "after",
    [
        lambda lst: lst.insert(0, "x"),
        lambda lst: lst.pop(),
        lambda lst: lst.pop(0),
        lambda lst: lst.__delitem__(slice(1, 4)),
        lambda lst: lst.__setitem__(slice(2, 3), ["a", "b"]),
        lambda lst: lst.append([1, 2]),
        lambda lst: lst.append({"k": 1}),
        lambda lst: lst.sort(key=str),
        lambda lst: lst.reverse(),
        lambda lst: lst.clear(),
        lambda lst: lst.remove(7),
        lambda lst: lst.__setitem__(-1, 70),
    ],
)
def test_a_pending_run_then_any_other_op_replays_exactly(after: Any) -> None:
    h, s = synced()
    h.items.append(5)
    before_round = state(h)
    s.collect()
    h.items.pop(0)
    h.items.append(6)
    h.items.append(7)
    after(h.items)
    h.items.append(8)
    replay(h, s, before_round)
    assert h.items._ws_tail is None and h.items._ws_log is None


def test_a_run_on_a_list_replaced_whole_is_dropped() -> None:
    h, s = synced()
    before = state(h)
    old = h.items
    old.append(1)
    old.append(2)
    h.items = ["new"]
    replay(h, s, before)
    old.append(3)  # removed from the state: emits nothing
    assert s.collect() == []


def test_appends_to_a_list_nobody_holds_log_nothing() -> None:
    lst = TrackedList([1])
    lst.append(2)
    lst[0] = 3
    assert lst == [3, 2]
    assert lst._ws_log is None and lst._ws_tail is None


def test_list_setitem_matches_the_builtin() -> None:
    h, s = synced()
    before = state(h)
    h.items[-1] = "last"
    h.items[True] = "bool index"  # an int subclass takes the Python path
    with pytest.raises(IndexError):
        h.items[3] = 1
    with pytest.raises(IndexError):
        h.items[-4] = 1
    with pytest.raises(IndexError):
        h.items[2**70] = 1
    with pytest.raises(TypeError):
        h.items["0"] = 1  # type: ignore[call-overload]
    assert h.items == [0, "bool index", "last"]
    replay(h, s, before)


def test_repeated_setitem_collapses_into_one_op() -> None:
    h, s = synced()
    before = state(h)
    for v in range(50):
        h.items[1] = v
    assert h.items._ws_log == [("replace", 1, 49)]
    assert replay(h, s, before) == [{"op": "replace", "path": "/items/1", "value": 49}]


def test_an_overlong_list_log_becomes_one_replace() -> None:
    h, s = synced()
    before = state(h)
    for v in range(40):
        h.items[v % 3] = v
        h.items[(v + 1) % 3] = -v
    assert replay(h, s, before) == [{"op": "replace", "path": "/items", "value": h.items}]


def test_dict_setitem_logs_the_first_write_of_a_key() -> None:
    h, s = synced()
    before = state(h)
    h.data["a"] = 2
    h.data["a"] = 3
    h.data["b"] = 1
    h.data["b"] = None
    assert h.data._ws_log == {"a": True, "b": False}
    with pytest.raises(TypeError):
        h.data[[1]] = 1  # type: ignore[index]
    del h.data["a"]
    with pytest.raises(KeyError):
        del h.data["a"]
    assert h.data._ws_log == {"a": True, "b": False}
    replay(h, s, before)


def test_leaf_and_container_values_through_the_c_paths() -> None:
    h, s = synced()
    before = state(h)
    h.data["nested"] = {"x": [1]}  # a container: adopted by the Python path
    h.data["nested"]["x"].append(2)
    h.items[0] = [9]
    h.items[0].append(10)
    h.items[0] = 0  # a container replaced by a leaf: released
    assert type(h.data["nested"]) is TrackedDict
    replay(h, s, before)


def test_synced_attribute_write_and_delete() -> None:
    h, s = synced()
    before = state(h)
    h.count = 1
    h.count = 2
    h.count = 2.5
    assert s.node._ws_log == {"count": True}
    h.items = [1, [2]]
    assert type(h.items[1]) is TrackedList
    replay(h, s, before)
    del h.count
    with pytest.raises(AttributeError):
        del h.count
    assert s.collect() == [{"op": "remove", "path": "/count"}]


def test_no_reference_is_leaked_by_the_c_paths() -> None:
    h, s = synced()
    value = "a value that is not interned" + str(id(h))
    base = sys.getrefcount(value)
    for _ in range(100):
        h.items[0] = value
        h.items[0] = 1
        h.data["k"] = value
        h.data["k"] = 2
        h.count = value
        h.count = 3
        h.items.append(value)
        h.items.pop()
        s.collect()
    assert sys.getrefcount(value) == base


def test_c_and_python_paths_emit_the_same_patches() -> None:
    script = ROOT / "tests" / "native_script.py"

    def run(pure: bool) -> Any:
        package_root = str(Path(native.__file__).resolve().parent.parent)  # this very ws_sync
        env = {**os.environ, "WS_SYNC_PURE": "1" if pure else "", "PYTHONPATH": package_root}
        out = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    c, pure = run(False), run(True)
    assert pure["native"] is False
    assert c["native"] is native.ENABLED or os.environ.get("WS_SYNC_PURE")
    assert len(c["patches"]) == len(pure["patches"]) > 100
    for k, (a, b) in enumerate(zip(c["patches"], pure["patches"], strict=True)):
        assert a == b, f"round {k} differs"


class Row(BaseModel):
    model_config = ConfigDict(validate_assignment=True)
    n: int = 0
    label: str = ""
    tags: list[str] = []
    _cache: int = PrivateAttr(default=0)


@dataclasses.dataclass
class Spot:
    x: Any = 0


class Table:
    def __init__(self) -> None:
        self.rows = [Row(), Row(n=1)]
        self.spots = [Spot()]


def test_model_writes_through_the_setattr_hook() -> None:
    t = Table()
    s = Sync(t, "T", sync_all=True)
    if native.speedups is not None:
        assert type(Row.__dict__["__setattr__"]) is native.speedups.SetattrHook
    before = json.loads(to_json(s.state()))
    row = t.rows[0]
    row.n = "5"  # type: ignore[assignment]  # validate_assignment coerces
    row.n = 6
    row.__setattr__("label", "x")  # the bound method works like the statement
    row.tags = ["a"]  # a container: wrapped by the Python path
    row.tags.append("b")
    row._cache = 9  # private: not synced
    t.spots[0].x = 2
    t.spots[0].x = [1]
    with pytest.raises(ValidationError):
        row.n = "not a number"  # type: ignore[assignment]
    assert row.n == 6 and type(row.tags) is TrackedList
    ops = json.loads(to_json(s.collect()))
    assert jsonpatch.apply_patch(before, ops) == json.loads(to_json(s.state()))
    assert {"op": "replace", "path": "/rows/0/n", "value": 6} in ops
    assert not any("_cache" in op["path"] for op in ops)


def test_the_setattr_hook_leaks_no_reference() -> None:
    t = Table()
    s = Sync(t, "T", sync_all=True)
    value = "not interned" + str(id(t))
    base = sys.getrefcount(value)
    for _ in range(100):
        t.rows[1].label = value
        t.rows[1].label = "y"
        t.spots[0].x = value
        t.spots[0].x = 0
        s.collect()
    assert sys.getrefcount(value) == base


def test_objects_shared_by_two_states_leak_nothing_through_the_c_walks() -> None:
    shared: list[Any] = [{"n": 0}]
    a, b = Holder(), Holder()
    sa, sb = Sync(a, "A", sync_all=True), Sync(b, "B", sync_all=True)
    a.items = shared
    b.items = a.items  # the same tracked list in both states
    before_a, before_b = state(a), state(b)
    value = "shared value" + str(id(a))
    base = sys.getrefcount(value)
    for i in range(50):
        a.items[0]["n"] = value
        a.items[0]["n"] = i
        a.items.append(i)
        replay_ops = sa.collect()  # b is now owed the list whole (`_ws_full`)
        before_a = jsonpatch.apply_patch(before_a, json.loads(to_json(replay_ops)))
        if i % 3 == 0:
            ops = json.loads(to_json(sb.collect()))
            before_b = jsonpatch.apply_patch(before_b, ops)
            assert before_b == state(b)
    assert before_a == state(a)
    assert sys.getrefcount(value) == base
