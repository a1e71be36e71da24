"""Regression tests for inbound frames that used to stall the loop or go
unanswered, and for changes a failing handler left unsent."""

import json
import time
from typing import Any

from session_helpers import Notes, error, exchange, make_app, recv, send
from starlette.testclient import TestClient

from ws_sync import remote_action, remote_task, sync_only
from ws_sync.connection import Connection
from ws_sync.limits import Limits, too_deep


def test_an_unterminated_run_of_escaped_quotes_costs_linear_time() -> None:
    small = '"' + '\\"' * 16_000 + "[]" * 70  # froze the loop for 3 s
    big = '"' + '\\"' * (1 << 19) + "[]" * 70  # 1 MiB: would take hours
    start = time.perf_counter()
    assert not too_deep(small, 64)
    assert not too_deep(big, 64)
    assert time.perf_counter() - start < 5.0  # generous: a quadratic scan never ends


def test_depth_is_exact_around_strings_and_escapes() -> None:
    assert too_deep("[" * 65 + "]" * 65, 64)
    assert not too_deep("[" * 64 + "]" * 64, 64)
    assert not too_deep('["' + "[" * 100 + '"]', 64)  # brackets in a string do not count
    assert too_deep('{"a\\"[": ' * 65 + "1" + "}" * 65, 64)
    assert not too_deep('{"a\\\\": ' * 64 + "1" + "}" * 64, 64)


def test_the_crafted_frame_gets_an_error_and_the_connection_lives() -> None:
    app, _ = make_app(Notes)
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        ws.send_text('"' + '\\"' * 16_000 + "[]" * 70)
        assert recv(ws)["data"]["message"] == "frame is not valid JSON"
        frames = exchange(ws, "_ACTION:NOTES", {"type": "ADD_NOTE", "note": "a", "$id": 1})
        assert frames[-1]["data"] == {"id": 1, "ok": True, "result": 1}


def test_an_oversized_action_still_gets_its_result() -> None:
    app, _ = make_app(Notes, limits=Limits(max_frame_size=1000))
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        send(ws, "_ACTION:NOTES", {"type": "RENAME", "new_title": "x" * 2000, "$id": 7})
        assert recv(ws) == error("_INVALID", "frame larger than 1000: dropped", id=7)
        assert recv(ws) == {
            "type": "_ACTION_RESULT:NOTES",
            "data": {"id": 7, "ok": False, "error": {"message": "frame larger than 1000: dropped"}},
        }


def test_a_too_deep_action_still_gets_its_result() -> None:
    app, _ = make_app(Notes)
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        deep = "[" * 100 + "]" * 100
        ws.send_text('{"type": "_ACTION:NOTES", "data": {"type": "RENAME", "x": ' + deep)
        ws.send_text(', "$id": "d"}}')  # a second frame: not part of the first
        first = recv(ws)
        assert first["data"]["message"] == "frame is not valid JSON"
        raw = '{"type":"_ACTION:NOTES","data":{"type":"RENAME","x":' + deep + ',"$id":"d"}}'
        ws.send_text(raw)
        frames = [recv(ws) for _ in range(3)]
        assert frames[1] == error("_INVALID", "JSON nested deeper than 64 levels", id="d")
        assert frames[2]["type"] == "_ACTION_RESULT:NOTES"
        assert frames[2]["data"]["id"] == "d" and frames[2]["data"]["ok"] is False


def test_every_error_about_a_frame_carries_its_id() -> None:
    app, _ = make_app(Notes)
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        for event, data in [
            ("_TASK_START:NOTES", {"type": "NOPE", "$id": 1}),
            ("_SET:NOPE", {"title": "x", "$id": 2}),
            ("_NOPE:NOTES", {"$id": 3}),
            ("_ACTION:NOTES", {"type": 5, "$id": 4}),
        ]:
            frames = exchange(ws, event, data)
            assert frames[0]["type"] == "_ERROR"
            assert frames[0]["data"]["id"] == data["$id"], event


def test_every_action_with_an_id_gets_exactly_one_result() -> None:
    app, _ = make_app(Notes)
    calls: list[tuple[str, Any]] = [
        ("_ACTION:NOTES", {"type": "ADD_NOTE", "note": "ok"}),
        ("_ACTION:NOTES", {"type": "ADD_NOTE"}),  # missing param
        ("_ACTION:NOTES", {"type": "NOPE"}),
        ("_ACTION:NOPE", {"type": "ADD_NOTE", "note": "x"}),
        ("_ACTION:NOTES", {"type": ["not", "a", "string"]}),
        ("_ACTION:NOTES", {"type": "FAIL"}),
    ]
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        for i, (event, data) in enumerate(calls):
            send(ws, event, {**data, "$id": i})
        ws.send_text(json.dumps({"type": "_GET:NOTES", "data": None}))
        frames = []
        while (frame := recv(ws))["type"] != "_SET:NOTES":
            frames.append(frame)
        results = [f["data"]["id"] for f in frames if f["type"].startswith("_ACTION_RESULT:")]
        assert results == list(range(len(calls)))


class Spender:
    @sync_only("SPENDER", count=...)
    def __init__(self) -> None:
        self.count = 0

    @remote_action("SPEND")
    async def spend(self) -> None:
        self.count += 1000
        raise RuntimeError("declined")


def test_a_handler_that_changes_state_and_raises_still_updates_clients() -> None:
    app, sessions = make_app(Spender)
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        assert recv(ws)["data"] == {"count": 0}
        frames = exchange(ws, "_ACTION:SPENDER", {"type": "SPEND", "$id": 1})
        assert [f["type"] for f in frames] == [
            "_PATCH:SPENDER",
            "_ERROR",
            "_ACTION_RESULT:SPENDER",
        ]
        assert frames[0]["data"] == [{"op": "replace", "path": "/count", "value": 1000}]
        assert sessions.last().objects["SPENDER"].count == 1000


class Gauge:
    @sync_only("GAUGE", value=...)
    def __init__(self) -> None:
        self.value = 1.0

    @remote_action("NAN")
    async def nan(self) -> float:
        return float("nan")

    @remote_task("NAN_TASK")
    async def nan_task(self) -> float:
        return float("inf")


class Broken:
    @sync_only("BROKEN", value=...)
    def __init__(self) -> None:
        self.value = float("nan")


def test_a_result_that_is_not_json_fails_the_action_instead_of_the_frame() -> None:
    app, _ = make_app(Gauge)
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        frames = exchange(ws, "_ACTION:GAUGE", {"type": "NAN", "$id": 1})
        assert frames[-1]["type"] == "_ACTION_RESULT:GAUGE"
        assert frames[-1]["data"]["ok"] is False
        assert frames[0]["data"]["event"] == "_ACTION:GAUGE"
        send(ws, "_TASK_START:GAUGE", {"type": "NAN_TASK"})
        while (frame := recv(ws))["type"] != "_TASK_DONE:GAUGE":
            pass
        assert frame["data"]["status"] == "failed"


def test_a_state_that_is_not_json_does_not_block_the_others() -> None:
    app, _ = make_app(Broken, Gauge)
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        assert recv(ws) == {"type": "_SET:GAUGE", "data": {"value": 1.0}}
        frames = exchange(ws, "_GET:BROKEN")  # nothing that is not JSON is sent
        assert frames == [
            error("_GET:BROKEN", "the state of 'BROKEN' cannot be sent now (internal error)")
        ]


class Big:
    @sync_only("BIG", items=...)
    def __init__(self) -> None:
        self.items: list[int] = list(range(20_000))


def test_expensive_writes_slow_their_sender_down(monkeypatch: Any) -> None:
    """A `move` re-validates the whole list: costly whatever the frame's size.
    The sender's writes get at most `write_share` of the server's time."""
    charged: list[float] = []
    charge = Connection.charge

    def record(self: Connection, seconds: float) -> None:
        charged.append(seconds)
        charge(self, seconds)

    monkeypatch.setattr(Connection, "charge", record)
    share, burst = 0.2, 0.01
    app, sessions = make_app(Big, limits=Limits(write_share=share, write_burst=burst))
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        move = [{"op": "move", "from": "/items/0", "path": "/items/1"}]
        start = time.perf_counter()
        for _ in range(6):
            send(ws, "_PATCH:BIG", move)
        frames = exchange(ws, "_GET:BIG")
        elapsed = time.perf_counter() - start
    assert frames[-1]["type"] == "_SET:BIG"
    assert sessions.last().objects["BIG"].items[:3] == [0, 1, 2]  # six swaps
    assert len(charged) == 6
    # the _GET was read only once the writes' work fitted in `share` of the time
    assert elapsed >= 0.9 * (sum(charged) - burst) / share
