"""Client writes: only synced, writable attributes; validated and coerced;
all or nothing; echoed back only when validation changed the value."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fakes import FakeSession
from pydantic import BaseModel, Field

from ws_sync import ClientWriteError, Sync, sync_all


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
        ({"title": "ok", "upper": "X"}, "computed"),
        ({"title": "ok", "nope": 1}, "not a synced attribute"),
    ],
)
def test_set_all_or_nothing(data: dict[str, Any], message: str) -> None:
    p, _, _ = setup()
    error = rejected(p, data, "set")
    assert any(message in e["msg"] for e in error.errors)


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
