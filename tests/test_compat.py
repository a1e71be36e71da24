"""Code written for upstream ws-sync runs unchanged: its import paths and
names, its decorator and subclass patterns, its handler entry points and
sockets (see docs/compatibility.md)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fakes import FakeSession
from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field
from starlette.websockets import WebSocketDisconnect, WebSocketState

from ws_sync import (
    Session,
    Sync,
    Synced,
    SyncedAsCamelCase,
    get_current_sync_key_prefix,
    remote_action,
    remote_task,
    sync_all,
    sync_key_scope,
    sync_only,
)
from ws_sync.context import session_context

# --------------------------------------------------------------------------- #
# 1. Field(...) as a param default


class Shop:
    @sync_all("SHOP")
    def __init__(self) -> None:
        self.orders: list[tuple[str, int]] = []

    @remote_action("ORDER")
    async def order(
        self,
        item: str = Field(..., min_length=2),
        qty: Annotated[int, Field(gt=0)] = 1,
        note: str = Field("none", max_length=5),
    ) -> None:
        self.orders.append((item, qty))
        assert note in ("none", "gift")

    @remote_task("RESTOCK")
    async def restock(self, amount: int = Field(gt=0)) -> None:
        self.orders.append(("restock", amount))


async def test_field_default_constraints_and_required() -> None:
    shop = Shop()
    await shop.sync.actions({"type": "ORDER", "item": "tea"})
    await shop.sync.actions({"type": "ORDER", "item": "cake", "qty": 3, "note": "gift"})
    assert shop.orders == [("tea", 1), ("cake", 3)]
    for bad in ({}, {"item": "x"}, {"item": "tea", "qty": 0}, {"item": "tea", "note": "longer"}):
        with pytest.raises(ValidationError):
            await shop.sync.actions({"type": "ORDER", **bad})
    with pytest.raises(ValidationError):
        await shop.sync.tasks({"type": "RESTOCK"})  # required, never the FieldInfo itself
    assert shop.orders == [("tea", 1), ("cake", 3)]


async def test_field_default_through_the_dispatcher() -> None:
    from ws_sync.actions import Params

    params = Params(Shop.order, camel=False, skip_first=True)
    assert params.bind({"item": "tea"}) == ([], {"item": "tea", "qty": 1, "note": "none"})
    with pytest.raises(ValueError, match="invalid params"):
        params.bind({"qty": 2})


# --------------------------------------------------------------------------- #
# 2. decorated subclasses


class Note(BaseModel):
    content: str


@sync_only("NOTES", title=..., count=...)
class BaseNotes(SyncedAsCamelCase, BaseModel):
    title: str
    entries: list[Note] = []

    @computed_field  # type: ignore[prop-decorator]
    @property
    def count(self) -> int:
        return len(self.entries)


@sync_all("DEBUG_NOTES")
class DebugNotes(BaseNotes):
    @remote_action
    async def log(self, line: str) -> None:
        self.title = line


def test_decorated_subclass_builds_one_sync_and_keeps_the_base_registered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[str] = []
    original = Sync.__init__

    def counting(self: Sync, *args: Any, **kwargs: Any) -> None:
        made.append(kwargs["key"])
        original(self, *args, **kwargs)

    monkeypatch.setattr(Sync, "__init__", counting)
    session = FakeSession()
    token = session_context.set(session)
    try:
        base = BaseNotes(title="b")
        debug = DebugNotes(title="d")
    finally:
        session_context.reset(token)
    assert made == ["NOTES", "DEBUG_NOTES"]
    assert [s.key for s in session.registered] == ["NOTES", "DEBUG_NOTES"]
    assert base.sync.key == "NOTES" and not base.sync.closed
    assert set(debug.sync.attributes) == {"title", "entries", "count"}


def test_undecorated_subclass_uses_the_base_decorator() -> None:
    class Sub(BaseNotes):
        extra: int = 0

    assert Sub(title="s").sync.key == "NOTES"


class CamelParent(SyncedAsCamelCase, BaseModel):
    nick_name: str

    def model_post_init(self, context: Any, /) -> None:
        Sync.all(self, key="PARENT")


class CamelChild(CamelParent):
    also_camel: str = ""


class PlainChild(CamelParent):
    model_config = ConfigDict(alias_generator=None, serialize_by_alias=False)
    snake_case: str = ""


def test_subclass_configs_inherit_and_override() -> None:
    assert CamelChild(nick_name="x").sync.state() == {"nickName": "x", "alsoCamel": ""}
    plain = PlainChild(nick_name="y")
    assert plain.sync.state() == {"nick_name": "y", "snake_case": ""}
    plain.nick_name = "z"
    assert plain.sync.get_patch() == [{"op": "replace", "path": "/nick_name", "value": "z"}]


def test_decorator_on_a_synced_model_class_builds_one_sync(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[str] = []
    original = Sync.__init__

    def counting(self: Sync, *args: Any, **kwargs: Any) -> None:
        made.append(kwargs["key"])
        original(self, *args, **kwargs)

    monkeypatch.setattr(Sync, "__init__", counting)

    @sync_all("ONCE")
    class Once(Synced, BaseModel):
        x: int = 1

    Once()
    assert made == ["ONCE"]


# --------------------------------------------------------------------------- #
# 3. objects with only actions, class-level defaults


async def test_object_with_only_actions() -> None:
    class Remote:
        @sync_all("REMOTE")
        def __init__(self) -> None:
            self._calls = 0

        @remote_action("PING")
        async def ping(self) -> int:
            self._calls += 1
            return self._calls

    r = Remote()
    assert r.sync.state() == {}
    assert await r.sync.actions({"type": "PING"}) == 1


def test_sync_all_takes_class_level_defaults() -> None:
    class Settings:
        theme = "light"
        size: int = 3

        def method(self) -> None: ...

    s = Settings()
    sync = Sync.all(s, "SETTINGS")
    assert sync.state() == {"theme": "light", "size": 3}
    s.theme = "dark"
    assert sync.get_patch() == [{"op": "add", "path": "/theme", "value": "dark"}]


# --------------------------------------------------------------------------- #
# 5. upstream's names


def test_upstream_import_paths() -> None:
    from ws_sync.decorators import (
        find_remote_actions,
        find_remote_task_cancellers,
        find_remote_tasks,
    )
    from ws_sync.decorators import remote_action as decorators_remote_action
    from ws_sync.id import InvalidUserSessionError, InvalidUserSessionMessageError
    from ws_sync.registry import HandshakeError
    from ws_sync.sync import (
        action_event,
        download_event,
        get_event,
        patch_event,
        set_event,
        task_cancel_event,
        task_start_event,
        toast_event,
    )

    assert decorators_remote_action is remote_action
    assert [action_event("K"), get_event("K"), patch_event("K"), set_event("K")] == [
        "_ACTION:K",
        "_GET:K",
        "_PATCH:K",
        "_SET:K",
    ]
    assert task_start_event("K") == "_TASK_START:K" and task_cancel_event("K") == "_TASK_CANCEL:K"
    assert (toast_event(), download_event()) == ("_TOAST", "_DOWNLOAD")
    assert issubclass(InvalidUserSessionError, HandshakeError)
    assert "wrong message type" in str(InvalidUserSessionMessageError({"type": "X"}))

    class Worker:
        @remote_action("GO")
        async def go(self) -> None: ...

        @remote_task("RUN")
        async def run(self) -> None: ...

        @run.cancel
        async def stop(self) -> None: ...

    assert find_remote_actions(Worker) == {"GO": Worker.go}
    assert find_remote_tasks(Worker) == {"RUN": Worker.run}
    assert find_remote_task_cancellers(Worker) == {"RUN": Worker.stop}


async def test_nonblock_call_runs_plain_functions_off_the_loop() -> None:
    import threading

    from ws_sync.utils import nonblock_call

    loop_thread = threading.get_ident()

    async def coro(x: int) -> int:
        return x + 1

    assert await nonblock_call(coro, 1) == 2
    assert await nonblock_call(threading.get_ident) != loop_thread


async def test_raw_handler_dicts() -> None:
    class Raw:
        def __init__(self) -> None:
            self.n = 0

        def add(self, by: int) -> None:
            self.n += by

    raw = Raw()
    seen: list[Any] = []

    async def unbound(obj: Any, label: str) -> None:
        seen.append((obj is raw, label))

    async def job(obj: Any, steps: int) -> None:
        seen.append(("job", steps))

    sync = Sync.only(raw, "RAW", n=..., _actions={"ADD": raw.add, "LABEL": unbound})
    await sync.actions({"type": "ADD", "by": "2"})
    await sync.actions({"type": "LABEL", "label": "x"})
    assert raw.n == 2 and seen == [(True, "x")]
    with pytest.raises(ValidationError):
        await sync.actions({"type": "ADD", "by": "many"})
    with pytest.warns(UserWarning, match="No handler"):
        await sync.actions({"type": "MISSING"})

    other = Raw()
    tasked = Sync.all(other, "TASKED", tasks={"JOB": job})
    await tasked.tasks({"type": "JOB", "steps": 3})
    assert "JOB" in tasked.running_tasks
    await tasked.running_tasks["JOB"]
    assert seen[-1] == ("job", 3) and list(tasked.running_tasks) == []


def test_synced_is_abstract_and_registered_models() -> None:
    from ws_sync.synced_model import registered_synced_models

    class Mixin(Synced, is_abstract=True):
        pass

    class Concrete(Mixin, BaseModel):
        x: int = 0

    assert registered_synced_models["Concrete"] is Concrete
    assert "Mixin" not in registered_synced_models
    assert "SyncedAsCamelCase" not in registered_synced_models


def test_upstream_sync_attributes() -> None:
    class Person:
        def __init__(self) -> None:
            self.first_name = "a"

    p = Person()
    sync = Sync.all(p, "P", toCamelCase=True, expose_running_tasks=True)
    assert sync.sync_attributes == {"first_name": "firstName"}
    assert sync.key_to_attr == {"firstName": "first_name"}
    assert sync.casing_func is not None and sync.casing("last_name") == "lastName"
    assert sync._snapshot() == {"firstName": "a", "runningTasks": []}
    assert sync.session is None


async def test_state_snapshot_helper_of_upstream_tests() -> None:
    """Upstream's tests diff `state_snapshot` against `_snapshot()`."""
    import jsonpatch

    class Doc:
        def __init__(self) -> None:
            self.items = [1, 2, 3]
            self.meta = {"a": 1}

    d = Doc()
    sync = Sync.all(d, "DOC")
    d.items.append(4)
    d.items.pop(0)
    d.meta["b"] = 2
    del d.meta["a"]
    before = sync.state_snapshot
    sync.state_snapshot = sync._snapshot()
    ops = jsonpatch.make_patch(before, sync.state_snapshot).patch
    assert jsonpatch.apply_patch({"items": [1, 2, 3], "meta": {"a": 1}}, ops) == {
        "items": [2, 3, 4],
        "meta": {"b": 2},
    }
    assert jsonpatch.make_patch(sync.state_snapshot, sync._snapshot()).patch == []


async def test_get_patch_then_sync_sends_the_whole_state() -> None:
    class Counter:
        def __init__(self) -> None:
            self.value = 0

    c = Counter()
    session = FakeSession()
    sync = Sync.all(c, "C", session=session)
    c.value = 1
    assert sync.get_patch() == [{"op": "replace", "path": "/value", "value": 1}]
    assert sync.get_patch() == []
    await sync.sync()
    assert session.take() == [{"type": "_SET:C", "data": {"value": 1}}]


class JsonOnlySocket:
    """Upstream's socket shape: JSON in and out, nothing else."""

    def __init__(self, events: list[Any]) -> None:
        self.incoming: asyncio.Queue[Any] = asyncio.Queue()
        for e in events:
            self.incoming.put_nowait(e)
        self.sent: list[Any] = []
        self.application_state = WebSocketState.CONNECTING
        self.client = ("test", 0)

    async def accept(self) -> None:
        self.application_state = WebSocketState.CONNECTED

    async def close(self) -> None:
        self.application_state = WebSocketState.DISCONNECTED

    async def send_json(self, data: Any) -> None:
        self.sent.append(data)

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)

    async def receive_json(self) -> Any:
        item = await self.incoming.get()
        if item is None:
            self.application_state = WebSocketState.DISCONNECTED
            raise WebSocketDisconnect(1000)
        return item

    async def receive_bytes(self) -> bytes:
        return bytes(await self.incoming.get())


async def test_session_drives_a_json_only_socket() -> None:
    class Box:
        @sync_all("BOX")
        def __init__(self) -> None:
            self.value = 0
            self.blob = b""

        @remote_action("UPLOAD")
        async def upload(self, data: bytes, name: str) -> None:
            self.blob = data
            self.value = len(name)

    session = Session()
    box = Box()
    ws = JsonOnlySocket(
        [
            {"type": "_PATCH:BOX", "data": [{"op": "replace", "path": "/value", "value": 5}]},
            {
                "type": "_BIN_META",
                "data": {"type": "_ACTION:BOX", "metadata": {"type": "UPLOAD", "name": "ab"}},
            },
            [1, 2, 3],
            None,
        ]
    )
    await session.handle_connection(ws)
    assert ws.sent[0] == {
        "type": "_SET:BOX",
        "data": {"value": 0, "blob": ""},
        "v": 0,
        "epoch": ws.sent[0]["epoch"],
    }
    assert box.blob == b"\x01\x02\x03" and box.value == 2
    assert ws.application_state == WebSocketState.DISCONNECTED


async def test_settable_ws() -> None:
    session = Session()
    with session:

        class Item:
            @sync_all("ITEM")
            def __init__(self) -> None:
                self.n = 0

        item = Item()
        ws = JsonOnlySocket([])
        session.ws = ws
        assert session.ws is ws and session.is_connected
        item.n = 1
        await item.sync()
        assert ws.sent == [
            {"type": "_PATCH:ITEM", "data": [{"op": "replace", "path": "/n", "value": 1}], "v": 1}
        ]
        session.ws = None
        assert session.ws is None and not session.is_connected
        await asyncio.sleep(0)


# --------------------------------------------------------------------------- #
# 6. key scopes


def test_empty_and_none_scopes_add_nothing() -> None:
    assert get_current_sync_key_prefix() is None
    with sync_key_scope("abc"), sync_key_scope(""), sync_key_scope(None):
        assert get_current_sync_key_prefix() == "abc"
        with sync_key_scope("tab"):
            assert get_current_sync_key_prefix() == "abc/tab"

            class Thing:
                def __init__(self) -> None:
                    self.x = 1

            assert Sync.all(Thing(), "K").key == "abc/tab/K"
        assert get_current_sync_key_prefix() == "abc"
    assert get_current_sync_key_prefix() is None


# --------------------------------------------------------------------------- #
# 7. semantics


def in_own_context(test: Callable[..., None]) -> Callable[..., None]:
    """A test that makes sessions outside a task: the current session it
    leaves behind must not reach the tests after it."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        contextvars.copy_context().run(test, *args, **kwargs)

    return run


@in_own_context
def test_session_becomes_current_when_made() -> None:
    """Deliberate: `Session()` is the current session of its task at once
    (objects built next belong to it); `with session:` nests as upstream's."""
    a = Session()
    assert session_context.get() is a
    b = Session()
    with a:
        assert session_context.get() is a
        with b, a:
            assert session_context.get() is a
        assert session_context.get() is a
    assert session_context.get() is b


@in_own_context
def test_session_logger_none_is_silent(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        quiet = Session(logger=None)
        quiet.logger.error("not shown")
        loud = Session()
        loud.logger.error("shown")
    assert [r.getMessage() for r in caplog.records] == ["shown"]


async def test_canceller_runs_instead_of_task_cancel() -> None:
    """Deliberate: a task with a canceller is asked to stop (the canceller
    runs, the task returns by itself); one without is `Task.cancel()`ed."""
    events: list[str] = []

    class Job:
        @sync_all("JOB")
        def __init__(self) -> None:
            self.running = False

        @remote_task("SOFT")
        async def soft(self) -> None:
            self.running = True
            while self.running:
                await asyncio.sleep(0.01)
            events.append("soft returned")

        @soft.cancel
        async def stop_soft(self) -> None:
            events.append("canceller")
            self.running = False

        @remote_task("HARD")
        async def hard(self) -> None:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                events.append("hard cancelled")
                raise

    job = Job()
    await job.sync.tasks({"type": "SOFT"})
    await job.sync.tasks({"type": "HARD"})
    soft, hard = job.sync.running_tasks["SOFT"], job.sync.running_tasks["HARD"]
    await asyncio.sleep(0.02)
    await job.sync.task_cancels({"type": "SOFT"})
    await job.sync.task_cancels({"type": "HARD"})
    await soft
    with contextlib.suppress(asyncio.CancelledError):
        await hard
    assert sorted(events) == ["canceller", "hard cancelled", "soft returned"]
    assert events.index("canceller") < events.index("soft returned")


async def test_raw_handlers_keep_the_allow_of_their_marks() -> None:
    from fakes import FakeConn

    from ws_sync import Session, remote_action, remote_task
    from ws_sync.dispatch import Dispatcher
    from ws_sync.permissions import FORBIDDEN

    def nobody(session: Session, params: dict[str, Any]) -> bool:
        return params.get("by") == 0  # only the harmless call

    @remote_action(allow=nobody)
    def add(obj: Any, by: int) -> None:
        obj.n += by

    @remote_task(allow=nobody)
    async def job(obj: Any, by: int) -> None:
        obj.n += 100

    class Raw:
        def __init__(self) -> None:
            self.n = 0

    with Session() as session:
        raw = Raw()
        Sync.only(raw, "RAW", n=..., _actions={"ADD": add}, _tasks={"JOB": job})
    conn = FakeConn()
    sent = conn.sent
    dispatcher = Dispatcher(session, conn)  # type: ignore[arg-type]
    await dispatcher.event("_ACTION:RAW", {"type": "ADD", "by": 5, "$id": 1})
    await dispatcher.event("_TASK_START:RAW", {"type": "JOB", "by": 5})
    assert raw.n == 0
    assert [(f["type"], f["data"].get("error", f["data"])["message"]) for f in sent] == [
        ("_ERROR", FORBIDDEN),
        ("_ACTION_RESULT:RAW", FORBIDDEN),
        ("_ERROR", FORBIDDEN),
    ]
    await dispatcher.event("_ACTION:RAW", {"type": "ADD", "by": 0, "$id": 2})
    assert raw.n == 0 and sent[-1]["data"] == {"id": 2, "ok": True, "result": None}
