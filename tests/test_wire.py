from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_core import from_json

from ws_sync import wire
from ws_sync.tracking import TrackedList


class M(BaseModel):
    a: int = 1


def test_encode_is_one_envelope_with_raw_values_serialized_once() -> None:
    frame = wire.encode(wire.patch_event("K"), [{"op": "add", "path": "/x", "value": M()}])
    assert from_json(frame) == {
        "type": "_PATCH:K",
        "data": [{"op": "add", "path": "/x", "value": {"a": 1}}],
    }
    assert wire.encode(wire.set_event("K"), {"l": TrackedList([1, 2])}) == (
        '{"type":"_SET:K","data":{"l":[1,2]}}'
    )


def test_event_names() -> None:
    assert wire.action_result_event("K") == "_ACTION_RESULT:K"
    assert wire.task_progress_event("K") == "_TASK_PROGRESS:K"
    assert wire.task_done_event("K") == "_TASK_DONE:K"
    assert wire.get_event("user1/K") == "_GET:user1/K"


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"stats": [{"mean": float("nan")}]}, "/stats/0/mean"),
        ([{"op": "add", "path": "/x", "value": float("inf")}], "/0/value"),
        ({"a/b": [1, -float("inf")]}, "/a~1b/1"),
        ({"m": M(a=1), "f": float("nan")}, "/f"),
    ],
)
def test_encode_refuses_nan_and_infinity_naming_the_path(data: Any, path: str) -> None:
    with pytest.raises(wire.NonJSONValue) as info:
        wire.encode("_SET:K", data)
    assert info.value.path == path
    assert repr(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_encode_passes_strings_that_spell_nan() -> None:
    frame = wire.encode("_SET:K", {"NaN": "NaN", "x": "-Infinity", "f": 1.5})
    assert from_json(frame, allow_inf_nan=False)["data"] == {
        "NaN": "NaN",
        "x": "-Infinity",
        "f": 1.5,
    }
