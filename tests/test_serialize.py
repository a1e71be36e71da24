"""What the client sees of values pydantic does not know."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
from typing import Annotated, Any

import jsonpatch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_serializer,
    model_serializer,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic_core import to_json

from ws_sync import Sync, sync_all
from ws_sync.serialize import PLAIN, Custom, custom_of, dump, dumps


class Color(enum.Enum):
    RED = "red"


class Thing:
    def __init__(self) -> None:
        self.name = "t"
        self._hidden = 1


class Aliased(BaseModel):
    user_id: int = Field(1, serialization_alias="userId")


@dataclasses.dataclass
class Point:
    x: int = 1


def test_known_types_follow_pydantic() -> None:
    assert dump({"when": datetime.date(2026, 1, 2), "c": Color.RED, "p": Point()}) == {
        "when": "2026-01-02",
        "c": "red",
        "p": {"x": 1},
    }
    assert dump(Aliased()) == {"userId": 1}  # aliases are the wire names


def test_unknown_objects_give_their_public_attributes_and_sets_a_list() -> None:
    assert dump(Thing()) == {"name": "t"}
    assert sorted(dump({"a", "b"})) == ["a", "b"]
    assert dumps(Thing()) == b'{"name":"t"}'


def test_a_synced_object_nested_in_state_gives_its_synced_state() -> None:
    class Inner:
        def __init__(self) -> None:
            self.shown = 1
            self.secret = 2

    inner = Inner()
    Sync(inner, "INNER", include=["shown"])
    assert dump({"inner": inner}) == {"inner": {"shown": 1}}


# --------------------------------------------------------------------------- #
# models that shape their own JSON


class Stamped(BaseModel):
    n: int = 0
    tags: list[str] = []
    when: datetime.timedelta = datetime.timedelta(seconds=90)
    loud: Annotated[list[Annotated[str, PlainSerializer(str.upper)]], "meta"] = []

    @field_serializer("tags")
    def _tags(self, tags: list[str]) -> dict[str, Any]:
        return {"count": len(tags), "items": tags}


class Shaped(BaseModel):
    a: int = 1
    b: list[int] = []

    @model_serializer
    def _whole(self) -> dict[str, Any]:
        return {"sum": self.a + sum(self.b)}


class SecondsConfig(BaseModel):
    model_config = ConfigDict(ser_json_timedelta="float")
    gap: datetime.timedelta = datetime.timedelta(seconds=2)
    n: int = 0


@pydantic_dataclass
class StampedPoint:
    x: int = 1

    @field_serializer("x")
    def _x(self, x: int) -> str:
        return f"x={x}"


def test_custom_of_finds_the_fields_a_model_serializes_its_own_way() -> None:
    assert custom_of(Stamped) == Custom(False, frozenset({"tags", "loud"}))
    assert custom_of(Shaped) == Custom(True, frozenset({"a", "b"}))
    assert custom_of(SecondsConfig) == Custom(False, frozenset({"gap", "n"}))
    assert custom_of(StampedPoint) == Custom(False, frozenset({"x"}))
    assert custom_of(Aliased) is PLAIN
    assert custom_of(Point) is PLAIN  # a plain dataclass
    assert custom_of(Thing) is PLAIN


class Board(BaseModel):
    stamped: Stamped = Stamped()
    shapes: list[Shaped] = []
    config: SecondsConfig = SecondsConfig()
    tags: list[str] = ["a"]
    points: list[StampedPoint] = []

    @field_serializer("tags")
    def _tags(self, tags: list[str]) -> list[str]:
        return sorted(tags, reverse=True)

    @sync_all("BOARD")
    def model_post_init(self, context: Any, /) -> None:
        pass


def _client_view(board: Board) -> Any:
    return json.loads(board.model_dump_json(by_alias=True))


def test_state_and_patches_follow_the_models_serializers() -> None:
    board = Board()
    state = board.sync.state()
    assert state == _client_view(board)
    assert state["stamped"]["tags"] == {"count": 0, "items": []}
    assert state["config"]["gap"] == 2.0

    def step(mutate: Any) -> list[Any]:
        nonlocal state
        mutate()
        ops = json.loads(to_json(board.sync.collect()))
        state = jsonpatch.apply_patch(state, ops)
        assert state == _client_view(board)
        return ops

    ops = step(lambda: board.tags.append("b"))  # inside a top-level custom field
    assert ops == [{"op": "replace", "path": "/tags", "value": ["b", "a"]}]
    ops = step(lambda: board.stamped.tags.append("t"))  # inside a nested custom field
    assert ops == [
        {"op": "replace", "path": "/stamped/tags", "value": {"count": 1, "items": ["t"]}}
    ]
    step(lambda: setattr(board.stamped, "n", 5))
    step(lambda: board.stamped.loud.append("quiet"))
    step(lambda: board.shapes.append(Shaped(a=1, b=[2])))
    ops = step(lambda: board.shapes[0].b.append(3))  # a model serializer: replaced whole
    assert ops == [{"op": "replace", "path": "/shapes/0", "value": {"sum": 6}}]
    step(lambda: setattr(board.shapes[0], "a", 10))
    step(lambda: setattr(board.config, "gap", datetime.timedelta(seconds=5)))
    step(lambda: board.points.append(StampedPoint(3)))
    step(lambda: setattr(board.points[0], "x", 4))
    ops = step(lambda: setattr(board, "stamped", Stamped(tags=["z"])))
    assert ops[0]["value"]["tags"] == {"count": 1, "items": ["z"]}


def test_a_client_patch_applies_to_the_serialized_view() -> None:
    board = Board(tags=["a", "c"])
    # the client sees ["c", "a"]: a test op against that view passes
    board.sync.handle_client_patch(
        [
            {"op": "test", "path": "/tags", "value": ["c", "a"]},
            {"op": "add", "path": "/tags/-", "value": "b"},
        ]
    )
    assert sorted(board.tags) == ["a", "b", "c"]
