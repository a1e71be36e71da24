"""Property test: for random mutation sequences, the emitted patches, applied in
order to the client's copy, give exactly the server's state.

Covers every tracked list and dict method, slices, nested models and
dataclasses, aliasing (one object in two places), containers replaced and then
mutated, and objects mutated after they left the state. The number of examples
per subject comes from ``WS_SYNC_PROPERTY_EXAMPLES`` (CI runs ≥ 5,000 in all).
"""

from __future__ import annotations

import copy
import dataclasses
import os
from typing import Any

import jsonpatch
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, field_serializer

from ws_sync import Sync
from ws_sync.serialize import dump

EXAMPLES = int(os.environ.get("WS_SYNC_PROPERTY_EXAMPLES", "300"))
OPS = {"add", "remove", "replace", "move", "copy", "test"}


class Item(BaseModel):
    name: str = "i"
    n: int = 0
    sub: list[Any] = []
    meta: dict[str, Any] = {}

    @field_serializer("meta")
    def _meta_json(self, meta: dict[str, Any]) -> dict[str, Any]:
        # JSON unlike the value: a change inside `meta` must resend it whole
        return {"size": len(meta), "entries": meta}


@dataclasses.dataclass
class Point:
    x: Any = 0
    tags: list[Any] = dataclasses.field(default_factory=list)


class PlainState:
    def __init__(self) -> None:
        self.title = "t"
        self.items: list[Any] = [1, "a", {"k": [1, 2]}, [3, 4]]
        self.index: dict[str, Any] = {"a": 1, "b": {"c": []}, "we/ird~key": [0]}


class DictState:
    def __init__(self) -> None:
        self.tree: dict[str, Any] = {"x": {"y": {"z": [1, {"w": 2}]}}, "l": [{"a": []}]}
        self.flat: dict[str, Any] = {}


class ModelState(BaseModel):
    items: list[Any] = [Item(name="a"), Item(name="b", sub=[1, 2])]
    by_name: dict[str, Any] = {}
    points: list[Any] = [Point(1, ["p"])]
    title: str = "m"


def _make(kind: str) -> Any:
    if kind == "plain":
        obj = PlainState()
    elif kind == "dict":
        obj = DictState()
    else:
        obj = ModelState()
        obj.by_name["a"] = obj.items[0]  # aliasing from the start
    Sync(obj, f"P{kind}", sync_all=True)
    return obj


def _containers(value: Any, out: dict[int, Any]) -> None:
    if id(value) in out:
        return
    if isinstance(value, list | dict | BaseModel | Point):
        out[id(value)] = value
    if isinstance(value, list):
        for v in list(value):
            _containers(v, out)
    elif isinstance(value, dict):
        for v in list(value.values()):
            _containers(v, out)
    elif isinstance(value, Item | Point):
        for v in _fields(value):
            _containers(v, out)


def _contains(value: Any, target: Any, seen: set[int] | None = None) -> bool:
    """Whether `target` is `value` or somewhere inside it (guards against cycles)."""
    seen = seen if seen is not None else set()
    if value is target:
        return True
    if id(value) in seen:
        return False
    seen.add(id(value))
    if isinstance(value, list):
        return any(_contains(v, target, seen) for v in value)
    if isinstance(value, dict):
        return any(_contains(v, target, seen) for v in value.values())
    if isinstance(value, Item | Point):
        return any(_contains(v, target, seen) for v in _fields(value))
    return False


def _fields(model: Item | Point) -> list[Any]:
    if isinstance(model, Item):
        return [model.name, model.n, model.sub, model.meta]
    return [model.x, model.tags]


class World:
    """The object under test, what the client holds, and a pool of objects that
    left the state (mutating them must change nothing on the client). The
    "shared" world has two synced objects that hold the same objects; they
    sync at different times."""

    def __init__(self, kind: str) -> None:
        if kind == "shared":
            self.objs = [_make("model"), _make("model")]
            self.objs[0].sync.close()
            Sync(self.objs[0], "A", sync_all=True)
            self.objs[1].items.append(self.objs[0].items[0])
            self.objs[0].by_name["b"] = self.objs[1].items[1]
        else:
            self.objs = [_make(kind)]
        self.obj = self.objs[0]
        self.sync: Sync = self.obj.sync
        for o in self.objs:
            o.sync.collect()  # what a new subscriber's _SET already includes
        self.clients = [copy.deepcopy(o.sync.state()) for o in self.objs]
        self.pool: list[Any] = []

    def reachable(self) -> list[Any]:
        out: dict[int, Any] = {}
        for obj in self.objs:
            for attr in obj.sync.attributes:
                _containers(getattr(obj, attr), out)
        return list(out.values())

    def check(self, which: list[int] | None = None) -> None:
        for i in which if which is not None else range(len(self.objs)):
            sync = self.objs[i].sync
            wire_ops = dump(sync.collect())
            for op in wire_ops:
                assert op["op"] in OPS
                assert isinstance(op["path"], str) and op["path"].startswith("/")
                if op["op"] in ("add", "replace", "test"):
                    assert "value" in op
            self.clients[i] = jsonpatch.apply_patch(self.clients[i], wire_ops)
            assert self.clients[i] == sync.state(), wire_ops


def _value(data: st.DataObject, world: World, target: Any) -> Any:
    choice = data.draw(st.integers(0, 9), label="value kind")
    if choice <= 3:
        return data.draw(st.one_of(st.integers(-5, 50), st.text("ab/~", max_size=3)))
    if choice == 4:
        return data.draw(st.lists(st.integers(0, 9), max_size=3))
    if choice == 5:
        return {k: 1 for k in data.draw(st.lists(st.text("xy", max_size=2), max_size=2))}
    if choice == 6:
        return Item(name=data.draw(st.text("nm", max_size=2)), sub=[1])
    if choice == 7:
        return Point(data.draw(st.integers(0, 3)), ["q"])
    candidates = [c for c in world.reachable() + world.pool if not _contains(c, target)]
    if not candidates:
        return 0
    return data.draw(st.sampled_from(candidates), label="alias")


def _forget(world: World, value: Any) -> None:
    if isinstance(value, list | dict | BaseModel | Point):
        world.pool.append(value)
        del world.pool[:-8]


def _mutate_list(data: st.DataObject, world: World, lst: list[Any]) -> None:
    n = len(lst)
    op = data.draw(
        st.sampled_from(
            [
                "append",
                "extend",
                "insert",
                "pop",
                "remove",
                "clear",
                "sort",
                "reverse",
                "setitem",
                "setslice",
                "setstep",
                "delitem",
                "delslice",
                "iadd",
                "imul",
            ]
        ),
        label="list op",
    )
    idx = data.draw(st.integers(-n - 1, n + 1), label="index")
    if op == "append":
        lst.append(_value(data, world, lst))
    elif op == "extend":
        lst.extend([_value(data, world, lst) for _ in range(data.draw(st.integers(0, 3)))])
    elif op == "insert":
        lst.insert(idx, _value(data, world, lst))
    elif op == "pop" and n:
        _forget(world, lst.pop(idx % n))
    elif op == "remove" and n:
        target = lst[idx % n]
        lst.remove(target)
        _forget(world, target)
    elif op == "clear":
        for v in list(lst):
            _forget(world, v)
        lst.clear()
    elif op == "sort":
        lst.sort(key=repr, reverse=data.draw(st.booleans()))
    elif op == "reverse":
        lst.reverse()
    elif op == "setitem" and n:
        _forget(world, lst[idx % n])
        lst[idx % n] = _value(data, world, lst)
    elif op == "setslice":
        a, b = sorted(data.draw(st.tuples(st.integers(-n - 1, n + 1), st.integers(-n - 1, n + 1))))
        lst[a:b] = [_value(data, world, lst) for _ in range(data.draw(st.integers(0, 3)))]
    elif op == "setstep" and n >= 2:
        indices = range(0, n, 2)
        lst[0:n:2] = [_value(data, world, lst) for _ in indices]
    elif op == "delitem" and n:
        _forget(world, lst[idx % n])
        del lst[idx % n]
    elif op == "delslice":
        a, b = sorted(data.draw(st.tuples(st.integers(-n, n), st.integers(-n, n))))
        step = data.draw(st.sampled_from([1, 1, 2, -1]))
        del lst[a:b:step]
    elif op == "iadd":
        lst += [_value(data, world, lst)]
    elif op == "imul" and n <= 4:
        lst *= data.draw(st.integers(0, 2))


def _mutate_dict(data: st.DataObject, world: World, d: dict[str, Any]) -> None:
    keys = list(d)
    op = data.draw(
        st.sampled_from(
            [
                "setitem",
                "setitem",
                "delitem",
                "update",
                "pop",
                "popitem",
                "setdefault",
                "clear",
                "ior",
            ]
        ),
        label="dict op",
    )
    new_key = data.draw(st.text("abc/~", max_size=3), label="key")
    key = data.draw(st.sampled_from(keys)) if keys and data.draw(st.booleans()) else new_key
    if op == "setitem":
        if key in d:
            _forget(world, d[key])
        d[key] = _value(data, world, d)
    elif op == "delitem" and key in d:
        _forget(world, d[key])
        del d[key]
    elif op == "update":
        d.update({key: _value(data, world, d)}, **{"k" + new_key.replace("/", ""): 1})
    elif op == "pop":
        _forget(world, d.pop(key, None))
    elif op == "popitem" and d:
        _forget(world, d.popitem()[1])
    elif op == "setdefault":
        d.setdefault(key, _value(data, world, d))
    elif op == "clear":
        d.clear()
    elif op == "ior":
        d |= {key: _value(data, world, d)}


def _mutate_model(data: st.DataObject, world: World, model: Any) -> None:
    fields = ["name", "n", "sub", "meta"] if isinstance(model, Item) else ["x", "tags"]
    field = data.draw(st.sampled_from(fields), label="field")
    _forget(world, getattr(model, field))
    if field in ("sub", "tags"):
        setattr(model, field, data.draw(st.lists(st.integers(0, 5), max_size=3)))
    elif field == "meta":
        setattr(model, field, {"m": data.draw(st.integers(0, 5))})
    else:
        setattr(model, field, _value(data, world, model))


def _mutate_root(data: st.DataObject, world: World) -> None:
    obj = data.draw(st.sampled_from(world.objs), label="object")
    attr = data.draw(st.sampled_from(sorted(obj.sync.attributes)), label="attr")
    old = getattr(obj, attr)
    if isinstance(old, list):
        new: Any = [_value(data, world, old)]
    elif isinstance(old, dict):
        new = {"r": _value(data, world, old)}
    else:
        new = data.draw(st.text("xyz", max_size=3))
    _forget(world, old)
    setattr(obj, attr, new)


def _step(data: st.DataObject, world: World) -> None:
    where = data.draw(st.integers(0, 9), label="where")
    if where == 0:
        _mutate_root(data, world)
        return
    pool = world.reachable()
    if where == 1 and world.pool:
        pool = world.pool  # detached objects: changes must not reach the client
    if not pool:
        return
    target = data.draw(st.sampled_from(pool), label="target")
    if isinstance(target, list):
        _mutate_list(data, world, target)
    elif isinstance(target, dict):
        _mutate_dict(data, world, target)
    else:
        _mutate_model(data, world, target)


def _run(data: st.DataObject, kind: str) -> None:
    world = World(kind)
    for _ in range(data.draw(st.integers(1, 6), label="rounds")):
        for _ in range(data.draw(st.integers(0, 6), label="steps")):
            _step(data, world)
        if len(world.objs) > 1:
            order = data.draw(st.permutations(range(len(world.objs))), label="order")
            world.check(list(order[: data.draw(st.integers(1, len(order)))]))
        else:
            world.check()
    world.check()


_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# the mutations store any value in any field (`Item.n = "x"`): pydantic says so
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")


@_settings
@given(st.data())
def test_plain_objects(data: st.DataObject) -> None:
    _run(data, "plain")


@_settings
@given(st.data())
def test_dict_heavy(data: st.DataObject) -> None:
    _run(data, "dict")


@_settings
@given(st.data())
def test_pydantic_models(data: st.DataObject) -> None:
    _run(data, "model")


@_settings
@given(st.data())
def test_objects_shared_between_two_synced_states(data: st.DataObject) -> None:
    _run(data, "shared")
