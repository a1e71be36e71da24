"""Bad and hostile input: every bad frame gets one `_ERROR` (and, for a rejected
write, a fresh `_SET`), the connection stays open, and the state does not change."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from session_helpers import (
    Counter,
    Notes,
    barrier,
    error,
    exchange,
    make_app,
    recv,
    send,
    state,
)
from starlette.testclient import TestClient, WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from ws_sync.limits import Limits

NOTES0 = {"title": "My Notes", "notes": [], "items": [], "total_length": 0}
COUNTER0 = {"count": 0, "label": "fixed"}


@pytest.fixture
def client() -> Iterator[tuple[WebSocketTestSession, Any]]:
    app, sessions = make_app(Notes, Counter, limits=Limits(rate=None))
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        assert recv(ws) == {"type": "_SET:NOTES", "data": NOTES0}
        assert recv(ws) == {"type": "_SET:COUNTER", "data": COUNTER0}
        yield ws, sessions.last()


def assert_unchanged(ws: WebSocketTestSession, built: Any) -> None:
    assert state(ws, "NOTES") == NOTES0
    assert state(ws, "COUNTER") == COUNTER0
    assert built.objects["NOTES"].sync.state() == NOTES0
    assert built.objects["COUNTER"].sync.state() == COUNTER0


def reply_to(ws: WebSocketTestSession, raw: str | bytes) -> list[dict[str, Any]]:
    if isinstance(raw, bytes):
        ws.send_bytes(raw)
    else:
        ws.send_text(raw)
    return barrier(ws)


# --------------------------------------------------------------------------- #
# envelopes


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "frame is not valid JSON"),
        ('{"type": "_GET:NOTES"', "frame is not valid JSON"),
        ("NaN", "frame is not valid JSON"),
    ],
)
def test_non_json_frame(client, raw, message):
    ws, built = client
    frames = reply_to(ws, raw)
    assert len(frames) == 1
    assert frames[0]["type"] == "_ERROR"
    assert frames[0]["data"]["event"] == "_INVALID"
    assert frames[0]["data"]["message"] == message
    assert frames[0]["data"]["errors"][0]["msg"]  # the parser's reason
    assert_unchanged(ws, built)


@pytest.mark.parametrize("raw", ["[1, 2]", '"text"', "42", "null", "true"])
def test_json_that_is_not_an_object(client, raw):
    ws, built = client
    assert reply_to(ws, raw) == [error("_INVALID", "frame must be a JSON object {type, data}")]
    assert_unchanged(ws, built)


@pytest.mark.parametrize(
    "envelope", [{}, {"data": {}}, {"type": 5}, {"type": None}, {"type": ["_GET:NOTES"]}]
)
def test_missing_or_non_string_type(client, envelope):
    ws, built = client
    assert reply_to(ws, json.dumps(envelope)) == [error("_INVALID", "frame has no string 'type'")]
    assert_unchanged(ws, built)


@pytest.mark.parametrize("event", ["HELLO", "_GETX:NOTES", "_TOAST", "_SET", "_ACTION"])
def test_unknown_event(client, event):
    ws, built = client
    assert exchange(ws, event, {}) == [error(event, f"unknown event {event!r}")]
    assert_unchanged(ws, built)


@pytest.mark.parametrize(
    "event", ["_GET:NOPE", "_SET:NOPE", "_PATCH:NOPE", "_TASK_START:NOPE", "_TASK_CANCEL:notes"]
)
def test_unknown_key(client, event):
    ws, built = client
    key = event.split(":", 1)[1]
    assert exchange(ws, event, {"type": "X"}) == [error(event, f"unknown key {key!r}")]
    assert_unchanged(ws, built)


def test_unknown_key_of_an_action_with_id_also_fails_the_result(client):
    ws, built = client
    assert exchange(ws, "_ACTION:NOPE", {"type": "RENAME", "$id": 9}) == [
        error("_ACTION:NOPE", "unknown key 'NOPE'", id=9),
        {
            "type": "_ACTION_RESULT:NOPE",
            "data": {"id": 9, "ok": False, "error": {"message": "unknown key 'NOPE'"}},
        },
    ]
    assert_unchanged(ws, built)


# --------------------------------------------------------------------------- #
# actions and tasks


def test_unknown_action(client):
    ws, built = client
    assert exchange(ws, "_ACTION:NOTES", {"type": "DROP_TABLES"}) == [
        error("_ACTION:NOTES", "unknown action 'DROP_TABLES'")
    ]
    assert_unchanged(ws, built)


def test_private_and_unexposed_methods_are_not_callable(client):
    ws, built = client
    for name in ("model_post_init", "__init__", "_private", "sync", "model_dump"):
        assert exchange(ws, "_ACTION:NOTES", {"type": name}) == [
            error("_ACTION:NOTES", f"unknown action {name!r}")
        ]
    assert_unchanged(ws, built)


@pytest.mark.parametrize("data", [None, [], "RENAME", {"type": 3}, {"new_title": "x"}])
def test_action_data_without_a_type(client, data):
    ws, built = client
    assert exchange(ws, "_ACTION:NOTES", data) == [
        error("_ACTION:NOTES", "data must be an object with a string 'type'")
    ]
    assert_unchanged(ws, built)


def test_invalid_params(client):
    ws, built = client
    assert exchange(ws, "_ACTION:NOTES", {"type": "RENAME", "new_title": ["x"]}) == [
        error(
            "_ACTION:NOTES",
            "invalid params for action 'RENAME'",
            [
                {
                    "loc": ["new_title"],
                    "msg": "Input should be a valid string",
                    "type": "string_type",
                }
            ],
        )
    ]
    assert exchange(ws, "_ACTION:NOTES", {"type": "RENAME"}) == [
        error(
            "_ACTION:NOTES",
            "invalid params for action 'RENAME'",
            [{"loc": ["new_title"], "msg": "Field required", "type": "missing"}],
        )
    ]
    assert_unchanged(ws, built)


def test_constraint_violation_in_params(client):
    ws, built = client
    assert exchange(ws, "_ACTION:COUNTER", {"type": "increment", "by": 0}) == [
        error(
            "_ACTION:COUNTER",
            "invalid params for action 'increment'",
            [{"loc": ["by"], "msg": "Input should be greater than 0", "type": "greater_than"}],
        )
    ]
    assert_unchanged(ws, built)


def test_unknown_task(client):
    ws, built = client
    for event in ("_TASK_START:NOTES", "_TASK_CANCEL:NOTES"):
        assert exchange(ws, event, {"type": "MINE_BITCOIN"}) == [
            error(event, "unknown task 'MINE_BITCOIN'")
        ]
    assert_unchanged(ws, built)


def test_invalid_task_params(client):
    ws, built = client
    assert exchange(ws, "_TASK_START:NOTES", {"type": "PROCESS_BATCH", "items": "abc"}) == [
        error(
            "_TASK_START:NOTES",
            "invalid params for task 'PROCESS_BATCH'",
            [{"loc": ["items"], "msg": "Input should be a valid list", "type": "list_type"}],
        )
    ]
    assert_unchanged(ws, built)


# --------------------------------------------------------------------------- #
# writes


def rejected(event: str, message: str, errors: list[Any], key: str, snapshot: Any) -> list:
    return [error(event, message, errors), {"type": f"_SET:{key}", "data": snapshot}]


@pytest.mark.parametrize(
    ("path", "msg"),
    [
        ("/_private", "'_private' is not a synced attribute"),
        ("/secret", "'secret' is not a synced attribute"),
        ("/label", "'label' is read-only"),
        ("/__class__", "'__class__' is not a synced attribute"),
        ("/__dict__", "'__dict__' is not a synced attribute"),
        ("/sync", "'sync' is not a synced attribute"),
    ],
)
def test_forbidden_patch_paths(client, path, msg):
    ws, built = client
    ops = [{"op": "replace", "path": path, "value": "x"}]
    assert exchange(ws, "_PATCH:COUNTER", ops) == rejected(
        "_PATCH:COUNTER",
        "_PATCH rejected: 1 error(s)",
        [{"op": 0, "path": path, "msg": msg}],
        "COUNTER",
        COUNTER0,
    )
    assert built.objects["COUNTER"]._private == 1
    assert built.objects["COUNTER"].secret == "not synced"
    assert_unchanged(ws, built)


def test_computed_attribute_is_not_writable(client):
    ws, built = client
    ops = [{"op": "replace", "path": "/total_length", "value": 3}]
    assert exchange(ws, "_PATCH:NOTES", ops) == rejected(
        "_PATCH:NOTES",
        "_PATCH rejected: 1 error(s)",
        [
            {
                "op": 0,
                "path": "/total_length",
                "msg": "'total_length' is computed and cannot be written",
            }
        ],
        "NOTES",
        NOTES0,
    )
    assert_unchanged(ws, built)


def test_out_of_range_index(client):
    ws, built = client
    ops = [{"op": "replace", "path": "/notes/5", "value": "x"}]
    assert exchange(ws, "_PATCH:NOTES", ops) == rejected(
        "_PATCH:NOTES",
        "_PATCH rejected: 1 error(s)",
        [{"op": 0, "path": "/notes/5", "msg": "index 5 out of range"}],
        "NOTES",
        NOTES0,
    )
    assert_unchanged(ws, built)


def test_partly_invalid_patch_changes_nothing(client):
    ws, built = client
    ops = [
        {"op": "replace", "path": "/title", "value": "changed"},
        {"op": "add", "path": "/notes/-", "value": "n"},
        {"op": "replace", "path": "/nope", "value": 5},
    ]
    assert exchange(ws, "_PATCH:NOTES", ops) == rejected(
        "_PATCH:NOTES",
        "_PATCH rejected: 1 error(s)",
        [{"op": 2, "path": "/nope", "msg": "'nope' is not a synced attribute"}],
        "NOTES",
        NOTES0,
    )
    assert_unchanged(ws, built)


def test_patch_with_an_invalid_value(client):
    ws, built = client
    ops = [{"op": "replace", "path": "/title", "value": 5}]
    frames = exchange(ws, "_PATCH:NOTES", ops)
    assert frames == rejected(
        "_PATCH:NOTES",
        "_PATCH rejected: 1 error(s)",
        [
            {
                "path": "/title",
                "msg": "Input should be a valid string",
                "type": "string_type",
                "loc": [],
                "op": 0,
            }
        ],
        "NOTES",
        NOTES0,
    )
    assert_unchanged(ws, built)


@pytest.mark.parametrize(
    ("data", "message", "errors"),
    [
        ({"op": "replace"}, "_PATCH data must be an array of operations", [{"msg": "not a list"}]),
        (
            [{"op": "explode", "path": "/title"}],
            "_PATCH rejected: 1 error(s)",
            [{"op": 0, "msg": "not a JSON Patch operation"}],
        ),
        (
            [{"op": "replace", "value": 1}],
            "_PATCH rejected: 1 error(s)",
            [{"op": 0, "msg": "missing or non-string 'path'"}],
        ),
    ],
)
def test_malformed_patch(client, data, message, errors):
    ws, built = client
    assert exchange(ws, "_PATCH:NOTES", data) == rejected(
        "_PATCH:NOTES", message, errors, "NOTES", NOTES0
    )
    assert_unchanged(ws, built)


def test_rejected_set_sends_the_state_back(client):
    ws, built = client
    assert exchange(ws, "_SET:NOTES", {"title": 5}) == rejected(
        "_SET:NOTES",
        "_SET rejected: 1 error(s)",
        [
            {
                "path": "/title",
                "msg": "Input should be a valid string",
                "type": "string_type",
                "loc": [],
            }
        ],
        "NOTES",
        NOTES0,
    )
    assert exchange(ws, "_SET:NOTES", [1]) == rejected(
        "_SET:NOTES", "_SET data must be an object", [{"msg": "not an object"}], "NOTES", NOTES0
    )
    assert exchange(ws, "_SET:COUNTER", {"count": 3, "secret": "x"}) == rejected(
        "_SET:COUNTER",
        "_SET rejected: 1 error(s)",
        [{"path": "/secret", "msg": "'secret' is not a synced attribute"}],
        "COUNTER",
        COUNTER0,
    )
    assert_unchanged(ws, built)


# --------------------------------------------------------------------------- #
# binary


def test_stray_binary_frame(client):
    ws, built = client
    assert reply_to(ws, b"\x00\x01") == [
        error("_INVALID", "binary frame without a preceding _BIN_META")
    ]
    assert_unchanged(ws, built)


def test_bin_meta_not_followed_by_binary(client):
    ws, built = client
    send(ws, "_BIN_META", {"type": "_ACTION:NOTES", "metadata": {"type": "RENAME"}})
    assert barrier(ws) == [error("_BIN_META", "_BIN_META was not followed by a binary frame")]
    assert_unchanged(ws, built)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "_BIN_META data must be {type: str, metadata: object}"),
        ({"metadata": {}}, "_BIN_META data must be {type: str, metadata: object}"),
        ({"type": "_ACTION:NOTES", "metadata": [1]}, "_BIN_META metadata must be an object"),
    ],
)
def test_malformed_bin_meta(client, data, message):
    ws, built = client
    assert exchange(ws, "_BIN_META", data) == [error("_BIN_META", message)]
    # and the bytes that follow are then stray
    assert reply_to(ws, b"xyz") == [error("_INVALID", "binary frame without a preceding _BIN_META")]
    assert_unchanged(ws, built)


# --------------------------------------------------------------------------- #
# limits


def limited(**limits: Any) -> tuple[TestClient, Any]:
    app, sessions = make_app(Notes, limits=Limits(**limits))
    return TestClient(app), sessions


def test_frame_too_large():
    tc, sessions = limited(max_frame_size=1000, rate=None)
    with tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        big = json.dumps(
            {"type": "_ACTION:NOTES", "data": {"type": "RENAME", "new_title": "x" * 2000}}
        )
        assert reply_to(ws, big) == [error("_INVALID", "frame larger than 1000: dropped")]
        assert reply_to(ws, b"y" * 1001) == [error("_INVALID", "frame larger than 1000: dropped")]
        assert state(ws, "NOTES") == NOTES0
        assert sessions.last().objects["NOTES"].title == "My Notes"


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
def test_deep_nesting_is_refused_before_parsing(depth):
    tc, _sessions = limited(max_frame_size=1 << 20, rate=None)
    with tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        nested = "[" * depth + "]" * depth
        raw = '{"type": "_SET:NOTES", "data": {"notes": ' + nested + "}}"
        assert reply_to(ws, raw) == [error("_INVALID", "JSON nested deeper than 64 levels")]
        assert state(ws, "NOTES") == NOTES0


def test_nesting_within_the_limit_is_parsed():
    tc, _ = limited(rate=None)
    with tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        nested = "[" * 60 + "]" * 60
        frames = exchange(ws, "_ACTION:NOTES", {"type": "RENAME", "new_title": json.loads(nested)})
        assert frames[0]["data"]["message"] == "invalid params for action 'RENAME'"


def test_rate_limit_slows_a_client_down_and_drops_nothing():
    tc, sessions = limited(rate=100.0, burst=5)
    with tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        for i in range(30):
            send(ws, "_ACTION:NOTES", {"type": "ADD_NOTE", "note": f"n{i}", "$id": i})
        frames = [recv(ws) for _ in range(60)]
        results = [f["data"] for f in frames if f["type"] == "_ACTION_RESULT:NOTES"]
        assert [r["id"] for r in results] == list(range(30))
        assert all(r["ok"] for r in results)
        assert sessions.last().objects["NOTES"].notes == [f"n{i}" for i in range(30)]


def test_rate_limit_abuse_closes_with_1008():
    tc, _ = limited(rate=0.001, burst=2)
    with tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        for i in range(3):
            send(ws, "_ACTION:NOTES", {"type": "ADD_NOTE", "note": f"n{i}"})
        assert [recv(ws)["type"] for _ in range(2)] == ["_PATCH:NOTES"] * 2
        with pytest.raises(WebSocketDisconnect) as closed:
            recv(ws)
        assert closed.value.code == 1008


# --------------------------------------------------------------------------- #
# fuzz: nothing a client sends breaks the connection or changes the state

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
keys = st.sampled_from(["NOTES", "COUNTER", "NOPE", "", "NOTES:X"])
bad_tokens = st.sampled_from(["_private", "secret", "label", "__class__", "total_length", "nope"])
forbidden_ops = st.lists(
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["add", "replace", "remove", "move", "copy", "test", "x"]),
            "path": bad_tokens.map(lambda t: "/" + t),
            "value": json_values,
            "from": bad_tokens.map(lambda t: "/" + t),
        }
    ),
    min_size=1,
    max_size=3,
)
known = {"rename", "add_note", "add_item", "fail", "process_batch", "increment"}
unknown_names = st.text(max_size=10).filter(lambda t: t.lower() not in known)
frames = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=16),
    json_values.map(json.dumps),
    st.builds(
        lambda kind, key, data: json.dumps({"type": f"{kind}:{key}", "data": data}),
        st.sampled_from(["_SET", "_PATCH"]),
        keys,
        forbidden_ops | st.dictionaries(bad_tokens, json_values, min_size=1),
    ),
    st.builds(
        lambda kind, key, name, params: json.dumps(
            {"type": f"{kind}:{key}", "data": {**params, "type": name}}
        ),
        st.sampled_from(["_ACTION", "_TASK_START", "_TASK_CANCEL"]),
        keys,
        unknown_names,
        st.dictionaries(st.text(max_size=6), json_values, max_size=3),
    ),
    st.builds(lambda t, d: json.dumps({"type": t, "data": d}), st.text(max_size=12), json_values),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames, min_size=1, max_size=12))
def test_fuzzed_frames_never_break_the_connection_or_the_state(sequence):
    app, sessions = make_app(Notes, Counter, limits=Limits(rate=None))
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        recv(ws)
        for raw in sequence:
            if isinstance(raw, bytes):
                ws.send_bytes(raw)
            else:
                ws.send_text(raw)
        replies = barrier(ws)
        assert all(r["type"] in ("_ERROR", "_SET:NOTES", "_SET:COUNTER") for r in replies)
        assert all(r["data"] in (NOTES0, COUNTER0) for r in replies if r["type"] != "_ERROR")
        assert_unchanged(ws, sessions.last())
