"""Tracking proxies: every mutating method is logged, and the proxies still
behave like the built-ins (isinstance, equality, pydantic, copies)."""

from __future__ import annotations

import copy
import dataclasses
import gc
import pickle
import warnings
import weakref
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_core import to_json

from ws_sync import Sync
from ws_sync.tracking import TrackedDict, TrackedList, node_of


class Holder:
    def __init__(self) -> None:
        self.items: list[Any] = [0, 1, 2, 3]
        self.data: dict[str, Any] = {"a": 1, "b": 2}


def synced() -> tuple[Holder, Sync]:
    h = Holder()
    return h, Sync(h, "H", sync_all=True)


def test_assignment_wraps_lists_and_dicts() -> None:
    h, _ = synced()
    assert type(h.items) is TrackedList and isinstance(h.items, list)
    assert type(h.data) is TrackedDict and isinstance(h.data, dict)
    h.items = [[1], {"x": [2]}]
    assert type(h.items[0]) is TrackedList
    assert type(h.items[1]) is TrackedDict
    assert type(h.items[1]["x"]) is TrackedList
    assert h.items == [[1], {"x": [2]}]


def test_plain_object_reads_need_no_descriptor_get() -> None:
    h, _ = synced()
    descriptor = type(h).__dict__["items"]
    assert not hasattr(descriptor, "__get__")  # reads go straight to __dict__
    assert h.items is h.__dict__["items"]


LIST_CASES = [
    ("append", lambda lst: lst.append(9), [{"op": "add", "path": "/items/4", "value": 9}]),
    ("insert", lambda lst: lst.insert(1, 9), [{"op": "add", "path": "/items/1", "value": 9}]),
    ("pop", lambda lst: lst.pop(), [{"op": "remove", "path": "/items/3"}]),
    ("pop0", lambda lst: lst.pop(0), [{"op": "remove", "path": "/items/0"}]),
    ("remove", lambda lst: lst.remove(2), [{"op": "remove", "path": "/items/2"}]),
    (
        "setitem",
        lambda lst: lst.__setitem__(-1, 7),
        [{"op": "replace", "path": "/items/3", "value": 7}],
    ),
    ("delitem", lambda lst: lst.__delitem__(1), [{"op": "remove", "path": "/items/1"}]),
    ("clear", lambda lst: lst.clear(), [{"op": "replace", "path": "/items", "value": []}]),
    (
        "sort",
        lambda lst: lst.sort(reverse=True),
        [{"op": "replace", "path": "/items", "value": [3, 2, 1, 0]}],
    ),
    (
        "reverse",
        lambda lst: lst.reverse(),
        [{"op": "replace", "path": "/items", "value": [3, 2, 1, 0]}],
    ),
]


@pytest.mark.parametrize(("name", "mutate", "expected"), LIST_CASES, ids=[c[0] for c in LIST_CASES])
def test_list_methods_emit_minimal_ops(name: str, mutate: Any, expected: list[Any]) -> None:
    h, s = synced()
    mutate(h.items)
    assert s.collect() == expected


def test_list_extend_iadd_imul_and_slices() -> None:
    h, s = synced()
    h.items = [f"item-{i:03}" for i in range(40)]
    s.collect()
    h.items.extend(["x4", "x5"])
    assert s.collect() == [
        {"op": "add", "path": "/items/40", "value": "x4"},
        {"op": "add", "path": "/items/41", "value": "x5"},
    ]
    h.items += ["x6"]
    assert s.collect() == [{"op": "add", "path": "/items/42", "value": "x6"}]
    h.items[1:3] = ["y"]
    assert h.items[:3] == ["item-000", "y", "item-003"]
    assert s.collect() == [
        {"op": "replace", "path": "/items/1", "value": "y"},
        {"op": "remove", "path": "/items/2"},
    ]
    del h.items[30::4]
    assert len(h.items) == 39
    assert [op["op"] for op in s.collect()] == ["remove"] * 3
    h.items[0:6:2] = [1, 2, 3]
    assert h.items[:6] == [1, "y", 2, "item-004", 3, "item-006"]
    assert [op["op"] for op in s.collect()] == ["replace"] * 3
    with pytest.raises(ValueError, match="extended slice"):
        h.items[0:6:2] = [1]
    h.items *= 2
    assert len(h.items) == 78
    assert s.collect() == [{"op": "replace", "path": "/items", "value": h.items}]


def test_small_list_changes_compact_into_one_replace() -> None:
    h, s = synced()
    h.items.extend([4, 5])
    assert s.collect() == [{"op": "replace", "path": "/items", "value": [0, 1, 2, 3, 4, 5]}]


def test_list_errors_match_builtin() -> None:
    h, s = synced()
    with pytest.raises(IndexError):
        h.items.pop(10)
    with pytest.raises(IndexError):
        h.items[10] = 1
    with pytest.raises(ValueError):
        h.items.remove(42)
    h.items.clear()
    with pytest.raises(IndexError, match="empty"):
        h.items.pop()
    s.collect()
    assert s.collect() == []


DICT_CASES = [
    ("set-new", lambda d: d.__setitem__("c", 3), [{"op": "add", "path": "/data/c", "value": 3}]),
    (
        "set-old",
        lambda d: d.__setitem__("a", 5),
        [{"op": "replace", "path": "/data/a", "value": 5}],
    ),
    ("del", lambda d: d.__delitem__("a"), [{"op": "remove", "path": "/data/a"}]),
    ("pop", lambda d: d.pop("b"), [{"op": "remove", "path": "/data/b"}]),
    ("pop-missing", lambda d: d.pop("zz", None), []),
    ("popitem", lambda d: d.popitem(), [{"op": "remove", "path": "/data/b"}]),
    ("setdefault", lambda d: d.setdefault("c", 4), [{"op": "add", "path": "/data/c", "value": 4}]),
    ("setdefault-old", lambda d: d.setdefault("a", 4), []),
    ("update", lambda d: d.update(a=7), [{"op": "replace", "path": "/data/a", "value": 7}]),
    ("ior", lambda d: d.__ior__({"z": 1}), [{"op": "add", "path": "/data/z", "value": 1}]),
    ("clear", lambda d: d.clear(), [{"op": "replace", "path": "/data", "value": {}}]),
]


@pytest.mark.parametrize(("name", "mutate", "expected"), DICT_CASES, ids=[c[0] for c in DICT_CASES])
def test_dict_methods_emit_minimal_ops(name: str, mutate: Any, expected: list[Any]) -> None:
    h, s = synced()
    mutate(h.data)
    assert s.collect() == expected


def test_dict_add_then_remove_in_one_round_sends_nothing() -> None:
    h, s = synced()
    h.data["tmp"] = 1
    del h.data["tmp"]
    assert s.collect() == []


class Inner(BaseModel):
    name: str = "x"
    tags: list[str] = []


@dataclasses.dataclass
class Pt:
    x: int = 0
    ys: list[int] = dataclasses.field(default_factory=list)


def test_nested_models_and_dataclasses_are_tracked_in_place() -> None:
    h, s = synced()
    m, p = Inner(), Pt()
    h.items.append(m)
    h.data["p"] = p
    s.collect()
    m.name = "y"
    m.tags.append("t")
    p.x = 4
    p.ys.append(1)
    assert s.collect() == [
        {"op": "replace", "path": "/items/4/name", "value": "y"},
        {"op": "add", "path": "/items/4/tags/0", "value": "t"},
        {"op": "replace", "path": "/data/p/x", "value": 4},
        {"op": "add", "path": "/data/p/ys/0", "value": 1},
    ]
    assert h.items[4] is m  # models are not copied


def test_pydantic_accepts_proxies_without_warnings() -> None:
    h, _ = synced()
    h.items = [Inner(tags=["a"])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert to_json(h.items[0]) == b'{"name":"x","tags":["a"]}'
        assert Inner.model_validate({"name": "n", "tags": h.items[0].tags}).tags == ["a"]
        assert h.items[0].model_dump() == {"name": "x", "tags": ["a"]}
        assert h.items[0] == Inner(tags=["a"])


def test_copies_are_plain_and_detached() -> None:
    h, s = synced()
    c = copy.copy(h.items)
    d = copy.deepcopy(h.data)
    assert type(c) is list and c == h.items
    assert type(d) is dict and d == h.data
    assert type(pickle.loads(pickle.dumps(h.items))) is list
    assert type(h.items.copy()) is list
    c.append(1)
    d["x"] = 1
    assert s.collect() == []


def test_mutating_a_removed_object_emits_nothing() -> None:
    h, s = synced()
    h.items.append({"k": []})
    s.collect()
    gone = h.items.pop()
    s.collect()
    gone["k"].append(1)
    gone["z"] = 2
    assert s.collect() == []
    assert node_of(gone)._ws_log is None  # detached nodes keep no log


def test_replaced_container_then_mutated() -> None:
    h, s = synced()
    old = h.items
    h.items = [1]
    h.items.append(2)
    old.append(3)
    assert s.collect() == [{"op": "replace", "path": "/items", "value": [1, 2]}]


def test_container_is_collected_after_removal() -> None:
    h, s = synced()
    h.items.append({"big": list(range(10))})
    ref = weakref.ref(h.items[-1])
    h.items.pop()
    s.collect()
    gc.collect()
    assert ref() is None


def test_a_dead_parents_link_under_a_reused_id_is_not_trusted() -> None:
    from ws_sync.tracking import Link

    h, s = synced()
    child = TrackedDict({"v": 1})
    gone = TrackedList()
    stale = Link(gone)
    del gone
    gc.collect()
    assert stale.ref() is None
    h.items.append(child)
    s.collect()
    list.remove(h.items, child)  # untracked removal: the link stays
    child._ws_parents[id(h.items)] = stale  # as if a freed parent had had this address
    h.items.append(child)
    s.collect()
    child["v"] = 2
    assert s.collect() == [{"op": "replace", "path": "/items/4/v", "value": 2}]
