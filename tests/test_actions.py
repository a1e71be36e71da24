"""Actions: discovery, param validation from the signature, results, errors,
ordering, threadpool offload and binary params."""

import asyncio
import dataclasses
import threading
import time
from typing import Annotated, Any, Optional

import pytest
from pydantic import Field, ValidationError
from pydantic_core import from_json
from session_helpers import (
    Color,
    Counter,
    Item,
    Notes,
    Point,
    Size,
    error,
    exchange,
    make_app,
    recv,
    send,
    state,
)
from starlette.testclient import TestClient

from ws_sync import Limits, remote_action, remote_task, session_context, sync_all, sync_only
from ws_sync.actions import Params, ParamsError
from ws_sync.remote import remote_table


class Shapes:
    """Every kind of param annotation the validator must honour."""

    @sync_only("SHAPES", log=...)
    def __init__(self) -> None:
        self.log: list[Any] = []

    @remote_action("ALL")
    async def all_kinds(
        self,
        count: Annotated[int, Field(gt=0, le=10)],
        item: Item,
        color: Color,
        point: Point,
        size: Size,
        note: Optional[str] = None,  # noqa: UP045 - Optional is what the spec names
        tags: list[str] = ["a"],  # noqa: B006 - defaults are copied per call
        anything=None,
    ) -> dict[str, Any]:
        self.log.append((count, item, color, point, size, note, tags, anything))
        return {"count": count, "item": item, "color": color, "point": point}

    @remote_action("NAMED")
    async def named(self, a: int, /, b: int, *, c: int = 0) -> list[int]:
        return [a, b, c]

    @remote_action("VARIADIC")
    async def variadic(self, first: int, *rest: int, **extra: str) -> dict[str, Any]:
        return {"first": first, "rest": list(rest), "extra": extra}

    @remote_action("ONE")
    async def one(self, item: Item) -> Item:
        return item


def params(method: str, camel: bool = False) -> Params:
    found = remote_table(Shapes).find("action", method)
    assert found is not None
    return found.params(camel)


# --------------------------------------------------------------------------- #
# validation (no socket)


def test_field_constraints_nested_models_enums_dataclasses_typeddicts():
    args, kwargs = params("ALL").bind(
        {
            "type": "ALL",
            "count": "3",
            "item": {"name": "pen", "qty": 2},
            "color": "red",
            "point": {"x": 1, "y": "2"},
            "size": {"w": 3, "h": 4},
        }
    )
    assert args == []
    assert kwargs == {
        "count": 3,
        "item": Item(name="pen", qty=2),
        "color": Color.RED,
        "point": Point(1, 2),
        "size": {"w": 3, "h": 4},
        "note": None,
        "tags": ["a"],
        "anything": None,
    }
    assert isinstance(kwargs["item"], Item)
    assert isinstance(kwargs["point"], Point)


def test_every_failure_is_reported_at_once():
    with pytest.raises(ParamsError) as e:
        params("ALL").bind(
            {
                "count": 11,
                "item": {"qty": -1},
                "color": "green",
                "point": {"x": 1},
                "size": {"w": 1, "h": "tall"},
                "note": 5,
                "bogus": 1,
            }
        )
    assert e.value.message == "invalid params for action 'ALL'"
    assert [(err["loc"], err["type"]) for err in e.value.errors] == [
        (["count"], "less_than_equal"),
        (["item", "name"], "missing"),
        (["item", "qty"], "greater_than_equal"),
        (["color"], "enum"),
        (["point", "y"], "missing"),
        (["size", "h"], "int_parsing"),
        (["note"], "string_type"),
        (["bogus"], "extra_forbidden"),
    ]


def test_unannotated_params_are_any_and_defaults_apply():
    _, kwargs = params("ALL").bind(
        {
            "count": 1,
            "item": {"name": "x"},
            "color": "blue",
            "point": {"x": 0, "y": 0},
            "size": {"w": 0, "h": 0},
            "anything": {"deep": [1, "two"]},
            "tags": ["t"],
        }
    )
    assert kwargs["anything"] == {"deep": [1, "two"]}
    assert kwargs["tags"] == ["t"]
    assert kwargs["item"].qty == 0


def test_both_spellings_are_accepted_and_errors_use_the_wire_name():
    class Camel:
        @sync_all("CAMEL", toCamelCase=True)
        def __init__(self) -> None:
            self.page_title = ""

        @remote_action("SET_TITLE")
        async def set_title(self, new_title: str, max_len: int = 10) -> None: ...

    method = remote_table(Camel).find("action", "SET_TITLE")
    assert method is not None
    p = method.params(True)
    assert p.bind({"newTitle": "a", "maxLen": 3}) == ([], {"new_title": "a", "max_len": 3})
    assert p.bind({"new_title": "a", "max_len": 3}) == ([], {"new_title": "a", "max_len": 3})
    with pytest.raises(ParamsError) as e:
        p.bind({"maxLen": 3})
    assert e.value.errors[0]["loc"] == ["newTitle"]
    with pytest.raises(ParamsError) as e:
        method.params(False).bind({"max_len": 3})
    assert e.value.errors[0]["loc"] == ["new_title"]


def test_positional_args_bind_in_order():
    p = params("NAMED")
    assert p.bind({"$args": [1, "2"]}) == ([1], {"b": 2, "c": 0})
    assert p.bind({"$args": [1], "b": 2, "c": 3}) == ([1], {"b": 2, "c": 3})
    with pytest.raises(ParamsError, match="takes 2 positional params, got 3"):
        p.bind({"$args": [1, 2, 3]})
    with pytest.raises(ParamsError, match="given twice"):
        p.bind({"$args": [1, 2], "b": 2})
    with pytest.raises(ParamsError, match="must be an array"):
        p.bind({"$args": {"a": 1}})


def test_variadic_params_are_validated_too():
    p = params("VARIADIC")
    assert p.bind({"$args": [1, "2", 3], "k": "v"}) == ([1, 2, 3], {"k": "v"})
    assert p.bind({"first": 1}) == ([], {"first": 1})
    with pytest.raises(ParamsError) as e:
        p.bind({"$args": [1, "x"]})
    assert e.value.errors[0]["loc"] == [0]


def test_a_single_param_may_arrive_as_the_members_of_one_object():
    p = params("ONE")
    assert p.bind({"type": "ONE", "name": "pen", "qty": 1}) == (
        [],
        {"item": Item(name="pen", qty=1)},
    )
    assert p.bind({"item": {"name": "pen"}}) == ([], {"item": Item(name="pen")})
    assert p.bind({"$args": [{"name": "pen"}]}) == ([], {"item": Item(name="pen")})


def test_param_models_are_built_once_per_method():
    found = remote_table(Shapes).find("action", "ALL")
    assert found is not None
    assert found.params(False) is found.params(False)
    assert remote_table(Shapes) is remote_table(Shapes)


def test_unresolvable_annotation_is_an_error_not_any():
    class Broken:
        @remote_action("X")
        async def x(self, a: "Missing") -> None: ...  # type: ignore[name-defined]  # noqa: F821

    method = remote_table(Broken).find("action", "X")
    assert method is not None
    with pytest.raises(TypeError, match="cannot resolve the annotations"):
        method.params(False)


# --------------------------------------------------------------------------- #
# discovery


def test_discovery_keys_bare_decorator_and_inheritance():
    class Base:
        @remote_action
        async def ping(self) -> str:
            return "base"

        @remote_action("OLD")
        async def old(self) -> None: ...

        @remote_task
        async def work(self) -> None: ...

        @work.cancel
        async def stop_work(self) -> None: ...

    class Child(Base):
        async def old(self) -> None:  # overridden without the decorator: not exposed
            ...

        @remote_action("PING2")
        async def ping(self) -> str:
            return "child"

    base, child = remote_table(Base), remote_table(Child)
    assert set(base.by_kind["action"]) == {"ping", "OLD"}
    assert set(child.by_kind["action"]) == {"PING2"}
    assert set(child.by_kind["task"]) == {"work"}
    assert child.find("cancel", "work").attr == "stop_work"  # type: ignore[union-attr]
    # the JS client sends SCREAMING_SNAKE_CASE: a bare key matches case-insensitively
    assert base.find("action", "PING").attr == "ping"  # type: ignore[union-attr]
    assert base.find("action", "nope") is None


def test_ambiguous_case_insensitive_keys_do_not_match():
    class Two:
        @remote_action("go")
        async def a(self) -> None: ...

        @remote_action("GO")
        async def b(self) -> None: ...

    table = remote_table(Two)
    assert table.find("action", "go").attr == "a"  # type: ignore[union-attr]
    assert table.find("action", "GO").attr == "b"  # type: ignore[union-attr]
    assert table.find("action", "Go") is None


# --------------------------------------------------------------------------- #
# over the wire


@pytest.fixture
def ws():
    app, sessions = make_app(Notes, Counter, Shapes, expose_errors=True)
    with TestClient(app) as tc, tc.websocket_connect("/ws") as socket:
        for key in ("NOTES", "COUNTER", "SHAPES"):
            assert recv(socket)["type"] == f"_SET:{key}"
        socket.built = sessions.last()  # type: ignore[attr-defined]
        yield socket


def test_action_result_carries_the_serialized_return_value(ws):
    frames = exchange(
        ws, "_ACTION:NOTES", {"type": "ADD_ITEM", "item": {"name": "pen", "qty": "2"}, "$id": "a1"}
    )
    assert frames == [
        {
            "type": "_PATCH:NOTES",
            "data": [{"op": "add", "path": "/items/0", "value": {"name": "pen", "qty": 2}}],
        },
        {
            "type": "_ACTION_RESULT:NOTES",
            "data": {"id": "a1", "ok": True, "result": {"name": "pen", "qty": 2}},
        },
    ]
    frames = exchange(
        ws,
        "_ACTION:SHAPES",
        {
            "type": "ALL",
            "$id": 2,
            "count": 1,
            "item": {"name": "x"},
            "color": "blue",
            "point": {"x": 1, "y": 2},
            "size": {"w": 1, "h": 1},
        },
    )
    # the action changed `log` without syncing: that patch goes out before the result
    assert frames[0]["type"] == "_PATCH:SHAPES"
    assert frames[1:] == [
        {
            "type": "_ACTION_RESULT:SHAPES",
            "data": {
                "id": 2,
                "ok": True,
                "result": {
                    "count": 1,
                    "item": {"name": "x", "qty": 0},
                    "color": "blue",
                    "point": {"x": 1, "y": 2},
                },
            },
        },
    ]


def test_action_without_id_gets_no_result(ws):
    assert exchange(ws, "_ACTION:NOTES", {"type": "RENAME", "new_title": "T"}) == [
        {"type": "_PATCH:NOTES", "data": [{"op": "replace", "path": "/title", "value": "T"}]}
    ]
    assert ws.built.objects["NOTES"].title == "T"


def test_positional_call_as_the_js_client_sends_it(ws):
    frames = exchange(ws, "_ACTION:NOTES", {"type": "ADD_NOTE", "$args": ["hello"], "$id": 1})
    assert frames[-1] == {
        "type": "_ACTION_RESULT:NOTES",
        "data": {"id": 1, "ok": True, "result": 1},
    }
    assert ws.built.objects["NOTES"].notes == ["hello"]


def test_bare_action_answers_the_js_spelling(ws):
    frames = exchange(ws, "_ACTION:COUNTER", {"type": "INCREMENT", "$args": [2], "$id": 1})
    assert frames == [
        {"type": "_PATCH:COUNTER", "data": [{"op": "replace", "path": "/count", "value": 2}]},
        {"type": "_ACTION_RESULT:COUNTER", "data": {"id": 1, "ok": True, "result": 2}},
    ]


def test_invalid_params_with_id_fail_the_result_too(ws):
    errors = [{"loc": ["by"], "msg": "Input should be greater than 0", "type": "greater_than"}]
    frames = exchange(ws, "_ACTION:COUNTER", {"type": "increment", "by": -1, "$id": 7})
    assert frames == [
        error("_ACTION:COUNTER", "invalid params for action 'increment'", errors, id=7),
        {
            "type": "_ACTION_RESULT:COUNTER",
            "data": {
                "id": 7,
                "ok": False,
                "error": {"message": "invalid params for action 'increment'", "errors": errors},
            },
        },
    ]
    assert ws.built.objects["COUNTER"].count == 0


def test_exception_in_an_action_is_reported_and_the_connection_lives_on(ws, caplog):
    frames = exchange(ws, "_ACTION:NOTES", {"type": "FAIL", "$id": "f"})
    ref = frames[0]["data"]["ref"]
    assert frames == [
        error("_ACTION:NOTES", "boom", id="f", ref=ref),
        {
            "type": "_ACTION_RESULT:NOTES",
            "data": {"id": "f", "ok": False, "error": {"message": "boom", "ref": ref}},
        },
    ]
    assert f"action 'FAIL' failed [ref {ref}]" in caplog.text
    frames = exchange(ws, "_ACTION:NOTES", {"type": "FAIL"})
    assert frames == [error("_ACTION:NOTES", "boom", ref=frames[0]["data"]["ref"])]
    frames = exchange(ws, "_ACTION:NOTES", {"type": "ADD_NOTE", "note": "still here", "$id": 1})
    assert frames[-1]["data"] == {"id": 1, "ok": True, "result": 1}


class Registrar:
    @sync_only("REG", users=...)
    def __init__(self) -> None:
        self.users: list[str] = []

    @remote_action("ADD_USER")
    async def add_user(self, user_data: dict) -> None:
        item = Item(**user_data)  # may raise ValidationError: reported with its errors
        self.users.append(item.name)
        await self.sync()


def test_validation_error_raised_inside_an_action_reports_its_errors():
    app, sessions = make_app(Registrar)
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        frames = exchange(ws, "_ACTION:REG", {"type": "ADD_USER", "qty": 1})
        assert frames == [
            error(
                "_ACTION:REG",
                "validation failed: 1 error(s)",
                [{"loc": ["name"], "msg": "Field required", "type": "missing"}],
            )
        ]
        # the JS client's addUser({name, qty}) sends the members: bound to user_data
        frames = exchange(ws, "_ACTION:REG", {"type": "ADD_USER", "name": "ann", "qty": 1})
        assert frames == [
            {"type": "_PATCH:REG", "data": [{"op": "add", "path": "/users/0", "value": "ann"}]}
        ]
        assert sessions.last().objects["REG"].users == ["ann"]
        with pytest.raises(ValidationError):
            Item(qty=1)  # type: ignore[call-arg]


class Order:
    @sync_only("ORDER", log=...)
    def __init__(self) -> None:
        self.log: list[str] = []
        self.gate = threading.Event()
        self.threads: list[int] = []

    @remote_action("SLOW")
    async def slow(self) -> None:
        await asyncio.sleep(0.05)  # a concurrent FAST would overtake it here
        self.log.append("slow")

    @remote_action("FAST")
    async def fast(self) -> None:
        self.log.append("fast")

    @remote_action("BLOCKING")
    def blocking(self, wait: bool = True) -> int:
        """A plain def: runs in the threadpool, so it may block."""
        self.threads.append(threading.get_ident())
        if wait:
            assert self.gate.wait(10)
        self.log.append("blocking")
        return threading.get_ident()

    @remote_action("RELEASE")
    async def release(self) -> None:
        self.gate.set()


def test_actions_run_one_at_a_time_in_arrival_order():
    app, sessions = make_app(Order)
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        send(ws, "_ACTION:ORDER", {"type": "SLOW"})
        send(ws, "_ACTION:ORDER", {"type": "FAST"})
        exchange(ws, "_GET:ORDER")
        assert sessions.last().objects["ORDER"].log == ["slow", "fast"]


def test_sync_actions_run_in_the_threadpool_without_blocking_other_connections():
    app, sessions = make_app(Order)
    with TestClient(app) as tc, tc.websocket_connect("/ws") as a, tc.websocket_connect("/ws") as b:
        recv(a)
        recv(b)
        order_a, order_b = (built.objects["ORDER"] for built in sessions.built)
        send(a, "_ACTION:ORDER", {"type": "BLOCKING", "$id": 1})
        # a is blocked in its threadpool call; b is served meanwhile
        assert exchange(b, "_ACTION:ORDER", {"type": "BLOCKING", "wait": False, "$id": 2})[-1][
            "data"
        ]["ok"]
        assert order_a.log == []
        order_a.gate.set()
        while (result := recv(a))["type"] == "_PATCH:ORDER":
            pass  # the change to `log`, sent before the result
        assert result["type"] == "_ACTION_RESULT:ORDER"
        assert result["data"]["result"] == order_a.threads[0]
        assert order_a.log == ["blocking"]
        assert order_b.log == ["blocking"]
        assert threading.get_ident() not in order_a.threads + order_b.threads


class Files:
    @sync_only("FILES", received=...)
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    @remote_action("UPLOAD")
    async def upload(self, data: bytes, name: str, size: int) -> int:
        self.received.append({"name": name, "size": size, "data": data.decode()})
        await self.sync()
        return len(data)


def test_binary_action_receives_the_bytes_and_the_metadata():
    app, sessions = make_app(Files)
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        send(
            ws,
            "_BIN_META",
            {
                "type": "_ACTION:FILES",
                "metadata": {"type": "UPLOAD", "name": "a.txt", "size": "3", "$id": 1},
            },
        )
        ws.send_bytes(b"abc")
        frames = exchange(ws, "_GET:FILES")
        assert frames[:2] == [
            {
                "type": "_PATCH:FILES",
                "data": [
                    {
                        "op": "add",
                        "path": "/received/0",
                        "value": {"name": "a.txt", "size": 3, "data": "abc"},
                    }
                ],
            },
            {"type": "_ACTION_RESULT:FILES", "data": {"id": 1, "ok": True, "result": 3}},
        ]
        assert sessions.last().objects["FILES"].received == [
            {"name": "a.txt", "size": 3, "data": "abc"}
        ]


class Factory:
    """An action that builds a synced object: it belongs to the caller's session."""

    @sync_only("FACTORY", made=...)
    def __init__(self) -> None:
        self.made = 0
        self.children: list[Any] = []

    @remote_action("MAKE")
    async def make(self, key: str) -> None:
        @dataclasses.dataclass
        class Child:
            value: int = 1

        child = Child()
        from ws_sync import Sync

        Sync(child, key, sync_all=True)
        self.children.append(child)
        self.made += 1
        await self.sync()


def test_objects_made_in_an_action_join_the_session():
    app, sessions = make_app(Factory)
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        frames = exchange(ws, "_ACTION:FACTORY", {"type": "MAKE", "key": "CHILD"})
        assert frames == [
            {"type": "_SET:CHILD", "data": {"value": 1}},
            {"type": "_PATCH:FACTORY", "data": [{"op": "replace", "path": "/made", "value": 1}]},
        ]
        assert state(ws, "CHILD") == {"value": 1}
        assert "CHILD" in sessions.last().session.syncs


def test_the_session_is_current_inside_actions_and_tasks():
    seen: list[Any] = []

    class Probe:
        @sync_only("PROBE", n=...)
        def __init__(self) -> None:
            self.n = 0

        @remote_action("WHO")
        def who(self) -> None:  # threadpool: the context goes along
            seen.append(session_context.get(None))

        @remote_task("WHO_TASK")
        async def who_task(self) -> None:
            seen.append(session_context.get(None))

    app, sessions = make_app(Probe)
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        recv(ws)
        exchange(ws, "_ACTION:PROBE", {"type": "WHO"})
        send(ws, "_TASK_START:PROBE", {"type": "WHO_TASK"})
        assert recv(ws)["type"] == "_TASK_DONE:PROBE"
        assert seen == [sessions.last().session] * 2


def test_a_sleeping_handler_does_not_hold_other_connections():
    class Sleeper:
        @sync_only("SLEEPER", n=...)
        def __init__(self) -> None:
            self.n = 0

        @remote_action("NAP")
        def nap(self) -> float:
            start = time.monotonic()
            time.sleep(0.3)
            return start

        @remote_action("NOW")
        async def now(self) -> float:
            return time.monotonic()

    app, _ = make_app(Sleeper)
    with TestClient(app) as tc, tc.websocket_connect("/ws") as a, tc.websocket_connect("/ws") as b:
        recv(a)
        recv(b)
        send(a, "_ACTION:SLEEPER", {"type": "NAP", "$id": 1})
        send(b, "_ACTION:SLEEPER", {"type": "NOW", "$id": 2})
        answered_b = recv(b)["data"]["result"]
        started_a = recv(a)["data"]["result"]
        assert answered_b - started_a < 0.3  # b did not wait for a's sleep


# --------------------------------------------------------------------------- #
# numbers a browser cannot hold, and annotations


class Numbers:
    @sync_only("NUMBERS", log=...)
    def __init__(self) -> None:
        self.log: list[Any] = []

    @remote_action("F")
    async def f(self, x: float, anything: Any = None, n: int = 0) -> None: ...


def numbers() -> Params:
    found = remote_table(Numbers).find("action", "F")
    assert found is not None
    return found.params(False)


@pytest.mark.parametrize(
    "data",
    [
        {"x": "NaN"},
        {"x": "inf"},
        {"x": "-Infinity"},
        {"x": from_json("1e309")},
        {"x": 1.0, "anything": {"a": [from_json("-1e309")]}},
        {"$args": ["nan"]},
    ],
)
def test_nan_and_infinity_params_are_refused(data: dict[str, Any]) -> None:
    with pytest.raises(ParamsError, match="NaN and Infinity") as info:
        numbers().bind(data)
    assert info.value.errors and "NaN and Infinity" in info.value.errors[0]["msg"]


def test_unsafe_integer_params_are_refused_with_safe_integers():
    strict = Limits(safe_integers=True)
    for data in [{"x": 1, "n": 2**53}, {"x": 1, "n": str(2**60)}, {"x": 2**60}]:
        with pytest.raises(ParamsError, match="lose precision"):
            numbers().bind(data, strict)
    assert numbers().bind({"x": 1, "n": 2**53 - 1}, strict) == (
        [],
        {"x": 1.0, "anything": None, "n": 2**53 - 1},
    )
    assert numbers().bind({"x": 1, "n": 2**53})[1]["n"] == 2**53  # off by default


def test_the_session_limits_apply_when_none_are_given():
    class Holder:
        limits = Limits(safe_integers=True)

    token = session_context.set(Holder())
    try:
        with pytest.raises(ParamsError, match="lose precision"):
            numbers().bind({"x": 1, "n": -(2**53)})
    finally:
        session_context.reset(token)


def test_a_return_annotation_that_does_not_resolve_is_not_needed():
    class Returns:
        @remote_action("R")
        async def r(self, a: int) -> "Missing": ...  # type: ignore[name-defined]  # noqa: F821

    method = remote_table(Returns).find("action", "R")
    assert method is not None
    assert method.params(False).bind({"a": "3"}) == ([], {"a": 3})
