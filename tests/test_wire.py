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
