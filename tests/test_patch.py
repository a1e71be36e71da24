"""Patch rules: small, collapsed, escaped, in the right order, valid RFC 6902."""

from __future__ import annotations

import json
from typing import Any

import jsonpatch
from pydantic import BaseModel

from ws_sync import Sync
from ws_sync.serialize import dump


class State:
    def __init__(self) -> None:
        self.notes: list[Any] = ["a", "b", "c"]
        self.meta: dict[str, Any] = {}
        self.count = 0


def make() -> tuple[State, Sync]:
    s = State()
    return s, Sync(s, "S", sync_all=True)


def replay(sync: Sync, before: dict[str, Any]) -> dict[str, Any]:
    after = jsonpatch.apply_patch(before, dump(sync.collect()))
    assert after == sync.state()
    return after


def test_append_is_one_add() -> None:
    s, sync = make()
    s.notes.append("d")
    assert sync.collect() == [{"op": "add", "path": "/notes/3", "value": "d"}]


def test_nothing_changed_sends_nothing() -> None:
    s, sync = make()
    assert sync.collect() == []
    s.count = s.count  # the same object
    assert sync.collect() == []


def test_repeated_writes_collapse() -> None:
    s, sync = make()
    for i in range(100):
        s.count = i
        s.meta["k"] = i
        s.notes[0] = str(i)
    ops = sorted(sync.collect(), key=lambda op: op["path"])
    assert ops == [
        {"op": "replace", "path": "/count", "value": 99},
        {"op": "add", "path": "/meta/k", "value": 99},
        {"op": "replace", "path": "/notes/0", "value": "99"},
    ]


def test_bigger_than_replacing_becomes_one_replace() -> None:
    s, sync = make()
    for i in range(10):
        s.notes.insert(0, i)
    ops = sync.collect()
    assert len(ops) == 1 and ops[0]["op"] == "replace" and ops[0]["path"] == "/notes"
    assert ops[0]["value"] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, "a", "b", "c"]


def test_paths_are_escaped() -> None:
    s, sync = make()
    s.meta["a/b~c"] = {"x": 1}
    sync.collect()
    s.meta["a/b~c"]["x"] = 2
    assert sync.collect() == [{"op": "replace", "path": "/meta/a~1b~0c/x", "value": 2}]


def test_index_shift_then_nested_mutation() -> None:
    s, sync = make()
    s.notes = [{"v": i, "text": "lorem ipsum dolor"} for i in range(40)]
    before = sync.state()
    sync.collect()
    third = s.notes[3]
    s.notes.insert(0, {"v": -1})
    del s.notes[1]
    s.notes.insert(2, {"v": 9})
    third["v"] = 33
    ops = sync.collect()
    assert [op["op"] for op in ops] == ["add", "remove", "add", "replace"]
    assert ops[-1] == {"op": "replace", "path": "/notes/4/v", "value": 33}
    assert jsonpatch.apply_patch(before, dump(ops)) == sync.state()


def test_swap_two_elements() -> None:
    s, sync = make()
    s.notes = [{"a": 1}, {"b": 2}, {"c": 3}]
    before = sync.state()
    sync.collect()
    s.notes[0], s.notes[2] = s.notes[2], s.notes[0]
    s.notes[0]["c"] = 30
    assert jsonpatch.apply_patch(before, dump(sync.collect())) == sync.state()


def test_aliasing_one_object_in_two_places() -> None:
    s, sync = make()
    shared = {"n": 1}
    s.notes = [shared]
    s.meta["x"] = s.notes[0]
    before = sync.state()
    sync.collect()
    s.meta["x"]["n"] = 2
    ops = sync.collect()
    assert sorted(op["path"] for op in ops) == ["/meta/x/n", "/notes/0/n"]
    assert jsonpatch.apply_patch(before, dump(ops)) == sync.state()


def test_assigning_an_equal_value() -> None:
    s, sync = make()
    before = sync.state()
    s.notes = ["a", "b", "c"]
    s.count = 0
    replay(sync, before)


def test_one_field_change_in_a_large_list_is_one_small_op() -> None:
    s, sync = make()
    s.notes = [{"id": i, "done": False} for i in range(20_000)]
    sync.collect()
    s.notes[12_345]["done"] = True
    ops = sync.collect()
    assert ops == [{"op": "replace", "path": "/notes/12345/done", "value": True}]
    assert len(json.dumps(dump(ops))) < 100


class Row(BaseModel):
    id: int
    done: bool = False


class Table(BaseModel):
    rows: list[Row] = []


def test_nested_model_field_in_model_list() -> None:
    t = Table(rows=[Row(id=i) for i in range(50)])
    sync = Sync(t, "T", sync_all=True)
    before = sync.state()
    t.rows[7].done = True
    t.rows.insert(0, Row(id=-1))
    t.rows[8].done = False
    ops = sync.collect()
    assert jsonpatch.apply_patch(before, dump(ops)) == sync.state()


def test_emitted_patches_are_valid_rfc6902() -> None:
    s, sync = make()
    s.notes.append({"x": [1]})
    s.meta["k"] = [1, 2]
    del s.notes[0]
    for op in dump(sync.collect()):
        assert set(op) <= {"op", "path", "value", "from"}
        assert op["op"] in {"add", "remove", "replace"}
        assert op["path"].startswith("/")
        assert ("value" in op) == (op["op"] != "remove")


def _no_scan(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the list was scanned")


def test_index_hints_move_through_shifts_instead_of_scanning(monkeypatch: Any) -> None:
    from ws_sync import patch

    s, sync = make()
    s.notes = [{"v": i} for i in range(1000)]
    sync.collect()
    s.notes.insert(0, {"v": -1})
    del s.notes[10]
    sync.collect()  # a later round: hints are moved through its shifts
    monkeypatch.setattr(patch, "enumerate", _no_scan, raising=False)
    s.notes[500]["v"] = "x"
    s.notes.insert(3, {"v": -2})  # and through this round's own
    s.notes[700]["v"] = "y"
    assert sync.collect() == [
        {"op": "add", "path": "/notes/3", "value": {"v": -2}},
        {"op": "replace", "path": "/notes/501/v", "value": "x"},
        {"op": "replace", "path": "/notes/700/v", "value": "y"},
    ]
