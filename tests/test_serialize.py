"""What the client sees of values pydantic does not know."""

from __future__ import annotations

import dataclasses
import datetime
import enum

from pydantic import BaseModel, Field

from ws_sync import Sync
from ws_sync.serialize import dump, dumps


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
