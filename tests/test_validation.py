"""Client writes: only synced, writable attributes; validated and coerced;
all or nothing; echoed back only when validation changed the value."""

from __future__ import annotations

import copy
import dataclasses
import json
import time
import tracemalloc
from typing import Annotated, Any

import jsonpatch
import pytest
from fakes import FakeSession
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field
from pydantic_core import from_json

from ws_sync import ClientWriteError, Limits, Sync, sync_all


class User(BaseModel):
    name: str
    age: int
    email: str | None = None


class Profile(BaseModel):
    title: str = "t"
    age: Annotated[int, Field(gt=0)] = 1
    users: list[User] = []
    index: dict[str, User] = {}
    scores: dict[int, float] = {}
    locked: str = "fixed"

    @sync_all("P", read_only=["locked"])
    def model_post_init(self, __context: Any) -> None:
        self._hidden = "h"

    @property
    def upper(self) -> str:
        return self.title.upper()


def setup() -> tuple[Profile, FakeSession, FakeSession]:
    p = Profile(users=[User(name="a", age=1), User(name="b", age=2)])
    sender, other = FakeSession(), FakeSession()
    p.sync.attach(sender)
    p.sync.attach(other)
    return p, sender, other


def rejected(p: Profile, data: Any, kind: str = "patch") -> ClientWriteError:
    before = p.model_dump()
    with pytest.raises(ClientWriteError) as info:
        if kind == "patch":
            p.sync.handle_client_patch(data)
        else:
            p.sync.handle_client_set(data)
    assert p.model_dump() == before  # nothing changed
    return info.value


def test_set_coerces_and_goes_to_the_others() -> None:
    p, sender, other = setup()
    p.sync.handle_client_set({"title": "new", "age": "25"}, sender)
    assert p.age == 25 and p.title == "new"
    assert other.take() == [
        {
            "type": "_PATCH:P",
            "data": [
                {"op": "replace", "path": "/title", "value": "new"},
                {"op": "replace", "path": "/age", "value": 25},
                {"op": "add", "path": "/upper", "value": "NEW"},
            ],
        }
    ]
    # the sender sent "25": it gets the coerced 25 back, and the computed value
    assert sender.take() == [
        {
            "type": "_PATCH:P",
            "data": [
                {"op": "replace", "path": "/age", "value": 25},
                {"op": "add", "path": "/upper", "value": "NEW"},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"title": "ok", "age": 0}, "greater than 0"),
        ({"title": "ok", "_hidden": 1}, "not a synced attribute"),
        ({"title": "ok", "locked": "x"}, "read-only"),
        ({"title": "ok", "nope": 1}, "not a synced attribute"),
    ],
)
def test_set_all_or_nothing(data: dict[str, Any], message: str) -> None:
    p, _, _ = setup()
    error = rejected(p, data, "set")
    assert any(message in e["msg"] for e in error.errors)


def test_full_state_set_skips_what_it_cannot_write() -> None:
    """`sendState(getState())`: computed values, the running tasks and
    unchanged read-only attributes come back with the state and are skipped."""
    p, sender, _ = setup()
    state = p.sync.state()
    p.sync.handle_client_set({**state, "title": "new", "upper": "STALE"}, sender)
    assert p.title == "new"
    assert p.upper == "NEW"

    @sync_all("TASKS", expose_running_tasks=True, read_only=["fixed"])
    class Worker:
        def __init__(self) -> None:
            self.n = 1
            self.fixed = "f"

    w = Worker()
    w.sync.handle_client_set({"n": 2, "running_tasks": ["X"], "fixed": "f"})
    assert (w.n, w.sync.running_tasks) == (2, [])
    with pytest.raises(ClientWriteError, match="1 error"):
        w.sync.handle_client_set({"n": 3, "fixed": "changed"})
    assert (w.n, w.fixed) == (2, "f")


def test_set_requires_an_object() -> None:
    p, _, _ = setup()
    assert "object" in rejected(p, ["title"], "set").message


def test_patch_leaf_replace_is_not_echoed() -> None:
    p, sender, other = setup()
    p.sync.handle_client_patch([{"op": "replace", "path": "/users/1/age", "value": 5}], sender)
    assert p.users[1].age == 5
    assert other.take()[0]["data"] == [{"op": "replace", "path": "/users/1/age", "value": 5}]
    assert sender.take() == []


def test_patch_add_model_item_is_validated_and_normalized_back() -> None:
    p, sender, other = setup()
    p.sync.handle_client_patch(
        [{"op": "add", "path": "/users/-", "value": {"name": "c", "age": "7"}}], sender
    )
    assert isinstance(p.users[2], User) and p.users[2].age == 7
    expected = [{"op": "add", "path": "/users/2", "value": {"name": "c", "age": 7, "email": None}}]
    assert other.take()[0]["data"] == expected
    assert sender.take()[0]["data"] == expected


def test_patch_dict_with_typed_keys_and_values() -> None:
    p, sender, _ = setup()
    p.sync.handle_client_patch([{"op": "add", "path": "/scores/3", "value": "1.5"}], sender)
    assert p.scores == {3: 1.5}
    p.sync.handle_client_patch([{"op": "remove", "path": "/scores/3"}], sender)
    assert p.scores == {}


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ([{"op": "replace", "path": "/__class__", "value": 1}], "not a synced attribute"),
        ([{"op": "replace", "path": "/_hidden", "value": 1}], "not a synced attribute"),
        ([{"op": "replace", "path": "/locked", "value": "x"}], "read-only"),
        ([{"op": "replace", "path": "/upper", "value": "x"}], "computed"),
        ([{"op": "replace", "path": "/users/9/age", "value": 1}], "out of range"),
        ([{"op": "replace", "path": "/users/01/age", "value": 1}], "not an array index"),
        ([{"op": "replace", "path": "/users/0/__dict__", "value": {}}], "no writable field"),
        ([{"op": "replace", "path": "/users/0/age", "value": "old"}], "valid integer"),
        ([{"op": "remove", "path": "/title"}], "cannot be removed"),
        ([{"op": "remove", "path": "/users/0/name"}], "cannot be removed"),
        ([{"op": "add", "path": "/users/5", "value": {"name": "x", "age": 1}}], "out of range"),
        ([{"op": "replace", "path": "/index/zz", "value": {"name": "x", "age": 1}}], "no member"),
        ([{"op": "test", "path": "/title", "value": "other"}], "test failed"),
        ([{"op": "frobnicate", "path": "/title"}], "not a JSON Patch operation"),
        ([{"op": "replace", "path": "title", "value": 1}], "must start with"),
        ([{"op": "replace", "path": "/title"}], "missing 'value'"),
        ([{"op": "replace", "path": "", "value": {}}], "whole state"),
        ({"op": "replace"}, "array"),
    ],
)
def test_bad_patches_are_rejected_with_reasons(ops: Any, message: str) -> None:
    p, _, _ = setup()
    error = rejected(p, ops)
    assert message in error.message or any(message in e["msg"] for e in error.errors), error.errors


def test_partly_invalid_patch_changes_nothing_and_lists_every_failure() -> None:
    p, _, _ = setup()
    error = rejected(
        p,
        [
            {"op": "replace", "path": "/title", "value": "fine"},
            {"op": "replace", "path": "/age", "value": -1},
            {"op": "replace", "path": "/locked", "value": "x"},
        ],
    )
    assert [e.get("op") for e in error.errors] == [1, 2]
    assert p.title == "t"


def test_move_and_copy_use_the_json_copy_and_still_validate() -> None:
    p, sender, other = setup()
    p.sync.handle_client_patch(
        [
            {"op": "copy", "from": "/users/0", "path": "/users/-"},
            {"op": "move", "from": "/users/0", "path": "/users/1"},
        ],
        sender,
    )
    assert [u.name for u in p.users] == ["b", "a", "a"]
    assert all(isinstance(u, User) for u in p.users)
    assert other.take()[0]["data"][0]["path"] == "/users"
    assert sender.take() == []  # the client computed the same thing
    error = rejected(p, [{"op": "copy", "from": "/title", "path": "/users/0"}])
    assert error.errors


def test_dependent_ops_in_one_patch() -> None:
    p, sender, _ = setup()
    p.sync.handle_client_patch(
        [
            {"op": "add", "path": "/users/-", "value": {"name": "z", "age": 9}},
            {"op": "replace", "path": "/users/2/age", "value": 10},
        ],
        sender,
    )
    assert p.users[2].age == 10


def test_plain_class_without_types_accepts_json() -> None:
    class Plain:
        def __init__(self) -> None:
            self.items: list[Any] = []
            self.n = 0

    obj = Plain()
    s = Sync(obj, "PL", sync_all=True)
    s.handle_client_patch([{"op": "add", "path": "/items/0", "value": {"a": [1]}}])
    assert obj.items == [{"a": [1]}]
    obj.items[0]["a"].append(2)  # what a client wrote is tracked like the rest
    assert s.collect() == [{"op": "add", "path": "/items/0/a/1", "value": 2}]


def test_plain_class_annotations_validate() -> None:
    class Typed:
        count: int

        def __init__(self) -> None:
            self.count = 0

    obj = Typed()
    s = Sync(obj, "TY", sync_all=True)
    s.handle_client_set({"count": "4"})
    assert obj.count == 4
    with pytest.raises(ClientWriteError):
        s.handle_client_set({"count": "four"})


def test_property_with_setter_is_writable() -> None:
    class WithSetter:
        def __init__(self) -> None:
            self._v = 1

        @property
        def v(self) -> int:
            return self._v

        @v.setter
        def v(self, value: int) -> None:
            self._v = value

    obj = WithSetter()
    s = Sync(obj, "WS", sync_all=True)
    s.handle_client_set({"v": "3"})
    assert obj.v == 3


# --------------------------------------------------------------------------- #
# numbers a browser cannot hold


class Floats(BaseModel):
    x: float = 0.0
    xs: list[float] = []
    n: int = 0
    anything: Any = None

    @sync_all("F")
    def model_post_init(self, __context: Any) -> None:
        pass


def limited(**limits: Any) -> FakeSession:
    sender = FakeSession()
    sender.limits = Limits(**limits)  # type: ignore[attr-defined]
    return sender


def refused(f: Floats, kind: str, data: Any, sender: Any = None) -> ClientWriteError:
    before = f.model_dump()
    with pytest.raises(ClientWriteError) as info:
        if kind == "set":
            f.sync.handle_client_set(data, sender)
        else:
            f.sync.handle_client_patch(data, sender)
    assert f.model_dump() == before
    return info.value


INF_LITERAL = from_json("1e309")  # how a frame's number literal too big for a double arrives


@pytest.mark.parametrize(
    ("kind", "data", "path"),
    [
        ("set", {"x": "NaN"}, "/x"),
        ("set", {"x": "inf"}, "/x"),
        ("set", {"x": "-Infinity"}, "/x"),
        ("set", {"x": INF_LITERAL}, "/x"),
        ("set", {"anything": {"a": [INF_LITERAL]}}, "/anything/a/0"),
        ("patch", [{"op": "replace", "path": "/x", "value": "nan"}], "/x"),
        ("patch", [{"op": "add", "path": "/xs/-", "value": "Infinity"}], "/xs/0"),
        ("patch", [{"op": "add", "path": "/anything", "value": [1, INF_LITERAL]}], "/anything/1"),
        ("patch", [{"op": "test", "path": "/x", "value": INF_LITERAL}], "/x"),
        (  # the JSON-copy path (a move) validates whole attributes: refused there too
            "patch",
            [
                {"op": "add", "path": "/xs/-", "value": "-inf"},
                {"op": "move", "from": "/xs/0", "path": "/xs/0"},
            ],
            "/xs/0",
        ),
    ],
)
def test_nan_and_infinity_from_a_client_are_refused(kind: str, data: Any, path: str) -> None:
    f = Floats()
    error = refused(f, kind, data)
    assert any(e["path"] == path and "NaN and Infinity" in e["msg"] for e in error.errors), error


def test_integers_beyond_2_53_are_refused_only_with_safe_integers() -> None:
    f = Floats()
    strict = limited(safe_integers=True)
    for kind, data in [
        ("set", {"n": 2**53}),
        ("set", {"n": str(-(2**53))}),  # made an int by validation
        ("set", {"anything": [2**60]}),
        ("set", {"x": 2**60}),  # carried by the frame, even into a float
        ("patch", [{"op": "replace", "path": "/n", "value": 2**53}]),
    ]:
        error = refused(f, kind, data, strict)
        assert "lose precision" in error.errors[0]["msg"], error.errors
    f.sync.handle_client_set({"n": 2**53 - 1}, strict)
    assert f.n == 2**53 - 1
    f.sync.handle_client_set({"n": 2**60})  # off by default
    assert f.n == 2**60


# --------------------------------------------------------------------------- #
# bounded work per frame


class Listy:
    def __init__(self) -> None:
        self.items: list[Any] = ["a", "b", "c"]
        self.other: dict[str, Any] = {"k": [1, [2, 3]]}


def test_doubling_copies_are_refused_after_bounded_work() -> None:
    obj = Listy()
    s = Sync(obj, "L", sync_all=True)
    ops = [{"op": "copy", "from": "/items", "path": "/items/-"}] * 20  # about 1 KB
    assert len(json.dumps(ops)) < 1100
    times = []
    for _ in range(3):
        start = time.perf_counter()
        with pytest.raises(ClientWriteError, match="rejected") as info:
            s.handle_client_patch(ops)
        times.append(time.perf_counter() - start)
    assert "more than 100000 JSON values" in info.value.errors[0]["msg"]
    assert obj.items == ["a", "b", "c"]
    assert min(times) < 0.01
    tracemalloc.start()
    try:
        with pytest.raises(ClientWriteError):
            s.handle_client_patch(ops)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_copy_budget_counts_every_json_value() -> None:
    obj = Listy()
    s = Sync(obj, "L", sync_all=True)
    copy = [{"op": "copy", "from": "/other/k", "path": "/items/-"}]  # [1, [2, 3]]: 5 values
    error = rejected_plain(s, obj, copy, limited(max_copy_nodes=4))
    assert "more than 4 JSON values" in error.errors[0]["msg"]
    s.handle_client_patch(copy, limited(max_copy_nodes=5))
    assert obj.items == ["a", "b", "c", [1, [2, 3]]]


def test_too_many_ops_are_refused_before_any_work() -> None:
    obj = Listy()
    s = Sync(obj, "L", sync_all=True)
    ops = [{"op": "add", "path": "/items/-", "value": i} for i in range(4)]
    error = rejected_plain(s, obj, ops, limited(max_patch_ops=3))
    assert "4 operations, at most 3" in error.message
    s.handle_client_patch(ops[:3], limited(max_patch_ops=3))
    assert obj.items == ["a", "b", "c", 0, 1, 2]


def rejected_plain(s: Sync, obj: Listy, ops: Any, sender: Any) -> ClientWriteError:
    before = (json.dumps(obj.items), json.dumps(obj.other))
    with pytest.raises(ClientWriteError) as info:
        s.handle_client_patch(ops, sender)
    assert (json.dumps(obj.items), json.dumps(obj.other)) == before
    return info.value


def test_copies_are_independent_of_their_source() -> None:
    obj = Listy()
    s = Sync(obj, "L", sync_all=True)
    s.handle_client_patch(
        [
            {"op": "copy", "from": "/other/k", "path": "/other/c"},
            {"op": "add", "path": "/other/c/1/-", "value": 4},
            {"op": "copy", "from": "/other/c", "path": "/items/0"},
            {"op": "move", "from": "/other/c/1", "path": "/other/m"},
            {"op": "add", "path": "/other/m/0", "value": 0},
            {"op": "remove", "path": "/items/0/0"},
        ]
    )
    assert obj.other == {"k": [1, [2, 3]], "c": [1], "m": [0, 2, 3, 4]}
    assert obj.items == [[[2, 3, 4]], "a", "b", "c"]
    obj.items[0][0].append(5)  # what a client copied is the state's own, not shared
    assert obj.other["m"] == [0, 2, 3, 4]


def test_a_value_moved_out_of_a_copy_stays_independent() -> None:
    obj = Listy()
    s = Sync(obj, "L", sync_all=True)
    s.handle_client_patch(
        [
            {"op": "copy", "from": "/other/k", "path": "/other/c"},
            {"op": "move", "from": "/other/c/1", "path": "/items"},
            {"op": "add", "path": "/items/-", "value": 9},
        ]
    )
    assert obj.other == {"k": [1, [2, 3]], "c": [1]}
    assert obj.items == [2, 3, 9]


@pytest.mark.parametrize("path", ["/other/~2", "/other/k~"])
def test_invalid_pointer_escapes_are_refused(path: str) -> None:
    obj = Listy()
    s = Sync(obj, "L", sync_all=True)
    error = rejected_plain(s, obj, [{"op": "add", "path": path, "value": 1}], None)
    assert "invalid escape" in error.errors[0]["msg"]


# --------------------------------------------------------------------------- #
# annotations that do not resolve


class Unresolved:
    note: NotImportable  # type: ignore[name-defined]  # noqa: F821
    count: int

    def __init__(self) -> None:
        self.note = "n"
        self.count = 0


def test_an_unresolvable_annotation_refuses_writes_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    obj = Unresolved()
    s = Sync(obj, "UN", sync_all=True)
    for _ in range(2):
        with pytest.raises(ClientWriteError) as info:
            s.handle_client_set({"note": "x"})
        assert "NotImportable" in info.value.errors[0]["msg"]
        with pytest.raises(ClientWriteError):
            s.handle_client_patch([{"op": "replace", "path": "/note", "value": "x"}])
    assert obj.note == "n"
    warnings = [r for r in caplog.records if "NotImportable" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
    s.handle_client_set({"count": "4"})  # the other annotations still validate
    assert obj.count == 4
    with pytest.raises(ClientWriteError):
        s.handle_client_set({"count": "four"})


class LateRef:
    value: Later  # type: ignore[name-defined]  # noqa: F821  # as under TYPE_CHECKING

    def __init__(self) -> None:
        self.value = 0


def test_a_forward_reference_may_resolve_after_the_sync_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    obj = LateRef()
    s = Sync(obj, "LATE", sync_all=True)
    with pytest.raises(ClientWriteError, match="rejected"):
        s.handle_client_set({"value": "3"})
    monkeypatch.setitem(globals(), "Later", int)
    s.handle_client_set({"value": "3"})
    assert obj.value == 3
    with pytest.raises(ClientWriteError):
        s.handle_client_set({"value": "three"})


@dataclasses.dataclass
class Part:
    size: Missing  # type: ignore[name-defined]  # noqa: F821


class WithSetter:
    def __init__(self) -> None:
        self.parts = [Part(1)]
        self._level = 0

    @property
    def level(self) -> int:
        return self._level

    @level.setter
    def level(self, value: Unknown) -> None:  # type: ignore[name-defined]  # noqa: F821
        self._level = value


@pytest.mark.parametrize(
    ("kind", "data", "name"),
    [
        ("patch", [{"op": "replace", "path": "/parts/0/size", "value": "x"}], "Missing"),
        ("set", {"level": "x"}, "Unknown"),
    ],
)
def test_nested_and_setter_annotations_fail_closed(kind: str, data: Any, name: str) -> None:
    obj = WithSetter()
    s = Sync(obj, "WS2", sync_all=True)
    with pytest.raises(ClientWriteError) as info:
        if kind == "set":
            s.handle_client_set(data)
        else:
            s.handle_client_patch(data)
    assert name in info.value.errors[0]["msg"]
    assert obj.parts[0].size == 1 and obj.level == 0


# --------------------------------------------------------------------------- #
# the JSON-copy path against a reference RFC 6902 implementation

leaves = st.none() | st.integers(-3, 3) | st.text("ab", max_size=2)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abx"), inner),
    max_leaves=8,
)


def nodes(value: Any, at: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    out = [(at, value)]
    if isinstance(value, dict | list):
        for k, v in value.items() if isinstance(value, dict) else enumerate(value):
            out += nodes(v, (*at, str(k)))
    return out


def pointer_of(tokens: tuple[str, ...]) -> str:
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


@st.composite
def patches(draw: Any, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Ops that mostly hit the document as the earlier ops left it."""
    ops: list[dict[str, Any]] = []
    current = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 8))):
        everything = [n for head in current for n in nodes(current[head], (head,))]
        deep = [t for t, _ in everything if len(t) > 1] or [("p", "9")]
        containers = [(t, v) for t, v in everything if isinstance(v, dict | list)]
        where, container = draw(st.sampled_from(containers or [(("p",), [])]))
        if isinstance(container, list):
            last = draw(st.sampled_from([str(i) for i in range(len(container) + 2)] + ["-"]))
        else:
            last = draw(st.sampled_from(["a", "b", "x", "-", "~"]))
        target = draw(st.sampled_from([pointer_of((*where, last))] * 4 + ["/p", "/q"]))
        existing = pointer_of(draw(st.sampled_from([t for t, _ in everything])))
        kind = draw(st.sampled_from(["add", "replace", "test", "remove", "copy", "move"]))
        if kind == "add":
            op = {"op": "add", "path": target, "value": draw(values)}
        elif kind in ("replace", "test"):
            value = draw(st.sampled_from([t for t, _ in everything]))
            known = dict(everything)[value]
            op = {"op": kind, "path": existing, "value": draw(st.just(known) | values)}
        elif kind == "remove":
            op = {"op": "remove", "path": pointer_of(draw(st.sampled_from(deep)))}
        else:
            source = pointer_of(draw(st.sampled_from(deep))) if kind == "move" else existing
            op = {"op": kind, "from": source, "path": target}
        ops.append(op)
        try:
            current = jsonpatch.apply_patch(current, [op])
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException):
            break
    return ops


class Doc:
    def __init__(self, p: Any, q: Any) -> None:
        self.p = p
        self.q = q


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_patches_apply_as_rfc_6902_says(data: st.DataObject) -> None:
    doc = {"p": data.draw(values), "q": data.draw(values)}
    ops = data.draw(patches(doc))
    try:
        expected = jsonpatch.apply_patch(copy.deepcopy(doc), copy.deepcopy(ops))
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException):
        expected = None
    holder = Doc(copy.deepcopy(doc["p"]), copy.deepcopy(doc["q"]))
    s = Sync(holder, "DOC", sync_all=True)
    try:
        s.handle_client_patch(copy.deepcopy(ops))
    except ClientWriteError:
        assert expected is None
        assert s.state() == doc
    else:
        assert s.state() == expected
        shared = [v for _, v in nodes([holder.p, holder.q], ()) if isinstance(v, dict | list)]
        assert len({id(v) for v in shared}) == len(shared)  # no copy is shared with its source


def test_an_index_in_another_script_s_digits_is_refused() -> None:
    p, _, _ = setup()
    rejected(p, [{"op": "replace", "path": "/users/\u0661/age", "value": 5}])
    rejected(p, [{"op": "add", "path": "/users/\u0661", "value": {"name": "c", "age": 3}}])
