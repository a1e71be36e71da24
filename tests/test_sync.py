"""The Sync object: attribute selection, names, options, lifetime, sending."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest
from fakes import FakeSession

from ws_sync import Sync, sync_all, sync_key_scope
from ws_sync.context import session_context
from ws_sync.wire import NonJSONValue


class Notes:
    @sync_all("NOTES")
    def __init__(self) -> None:
        self.title = "My Notes"
        self.notes: list[str] = []
        self._secret = "x"

    @property
    def total_length(self) -> int:
        return sum(len(n) for n in self.notes)


def test_sync_all_picks_public_attributes_and_properties() -> None:
    n = Notes()
    assert n.sync.key == "NOTES"
    assert n.sync.state() == {"title": "My Notes", "notes": [], "total_length": 0}


def test_property_is_recomputed_and_sent_when_it_changes() -> None:
    n = Notes()
    n.notes.append("abc")
    assert n.sync.collect() == [
        {"op": "add", "path": "/notes/0", "value": "abc"},
        {"op": "add", "path": "/total_length", "value": 3},
    ]
    n.title = "t"
    assert n.sync.collect() == [{"op": "replace", "path": "/title", "value": "t"}]


def test_include_exclude_and_default_key() -> None:
    class Thing:
        def __init__(self) -> None:
            self.a = 1
            self.b = 2
            self._c = 3

    t = Thing()
    s = Sync(t, sync_all=True, exclude=["b"], include={"_c": "c"})
    assert s.key == "Thing"
    assert s.state() == {"a": 1, "c": 3}
    with pytest.raises(ValueError, match="both included and excluded"):
        Sync(Thing(), sync_all=True, include=["a"], exclude=["a"])
    with pytest.raises(AttributeError, match="no attribute"):
        Sync(Thing(), include=["missing"])


def test_key_scope() -> None:
    with sync_key_scope("user1"):
        n = Notes()
        with sync_key_scope("tab"):
            m = Notes()
    assert n.sync.key == "user1/NOTES"
    assert m.sync.key == "user1/tab/NOTES"
    assert Notes().sync.key == "NOTES"


def test_expose_running_tasks() -> None:
    class T:
        @sync_all("T", expose_running_tasks=True, toCamelCase=True)
        def __init__(self) -> None:
            self.x = 0

    t = T()
    assert t.sync.state() == {"x": 0, "runningTasks": []}
    t.sync.running_tasks.append("GROW")
    assert t.sync.collect() == [{"op": "add", "path": "/runningTasks", "value": ["GROW"]}]


async def test_sync_sends_patch_to_connected_subscribers(fake_session: FakeSession) -> None:
    offline = FakeSession(connected=False)
    n = Notes()
    n.sync.attach(fake_session)
    n.sync.attach(offline)
    n.title = "new"
    await n.sync()
    await n.sync()  # nothing changed: nothing sent
    assert fake_session.take() == [
        {"type": "_PATCH:NOTES", "data": [{"op": "replace", "path": "/title", "value": "new"}]}
    ]
    assert offline.frames == []


async def test_sync_with_toast(fake_session: FakeSession) -> None:
    n = Notes()
    n.sync.attach(fake_session)
    n.title = "x"
    await n.sync(toast="Saved", type="success")
    events = fake_session.take()
    assert [e["type"] for e in events] == ["_PATCH:NOTES", "_TOAST"]
    assert events[1]["data"] == {"type": "success", "message": "Saved"}


async def test_if_since_last_throttles_but_never_drops_the_last_change(
    fake_session: FakeSession,
) -> None:
    n = Notes()
    n.sync.attach(fake_session)
    for i in range(20):
        n.title = f"t{i}"
        await n.sync(if_since_last=0.05)
    first = fake_session.take()
    assert len(first) == 1
    await asyncio.sleep(0.1)
    last = fake_session.take()
    assert last == [
        {"type": "_PATCH:NOTES", "data": [{"op": "replace", "path": "/title", "value": "t19"}]}
    ]


async def test_sync_while_disconnected_sends_nothing_and_loses_nothing() -> None:
    session = FakeSession(connected=False)
    n = Notes()
    n.sync.attach(session)
    n.notes.append("offline")
    await n.sync()
    assert session.frames == []
    session.is_connected = True
    epoch = n.sync.log.epoch
    assert n.sync.set_frame() == (
        '{"type":"_SET:NOTES","data":{"title":"My Notes","notes":["offline"],"total_length":7},'
        f'"v":1,"epoch":"{epoch}"}}'
    )  # the change while away was committed (version 1): the _SET has it


def test_set_frame_flushes_pending_changes_to_existing_subscribers() -> None:
    first = FakeSession()
    n = Notes()
    n.sync.attach(first)
    n.notes.append("a")
    n.sync.set_frame()  # for a second subscriber
    assert first.take()[0]["type"] == "_PATCH:NOTES"


def test_objects_made_in_a_session_context_attach_to_it() -> None:
    session = FakeSession()
    token = session_context.set(session)
    try:
        n = Notes()
    finally:
        session_context.reset(token)
    assert n.sync.sessions == [session]
    assert session.registered == [n.sync]


def test_garbage_collected_when_unreferenced_and_close_deregisters() -> None:
    session = FakeSession()
    n = Notes()
    n.sync.attach(session)
    s_ref = weakref.ref(n.sync)
    n_ref = weakref.ref(n)
    session.registered.clear()  # the fake session holds syncs strongly; a real one weakly
    del n
    gc.collect()
    assert n_ref() is None and s_ref() is None

    m = Notes()
    m.sync.attach(session)
    m.sync.close()
    assert session.registered == []
    closed = m.sync
    m.notes.append("x")
    assert closed.collect() == []


async def test_send_action_download_and_binary(fake_session: FakeSession) -> None:
    n = Notes()
    n.sync.attach(fake_session)
    await n.sync.send_action({"type": "FOCUS", "id": 3})
    await n.sync.download("a.txt", b"hi")
    await n.sync.send_binary({"type": "IMG"}, b"\x00\x01")
    assert fake_session.frames[-1] == b"\x00\x01"
    events = fake_session.events()
    assert events[0] == {"type": "_ACTION:NOTES", "data": {"type": "FOCUS", "id": 3}}
    assert events[1] == {"type": "_DOWNLOAD", "data": {"filename": "a.txt", "data": "aGk="}}
    assert events[2] == {
        "type": "_BIN_META",
        "data": {"type": "_ACTION:NOTES", "metadata": {"type": "IMG"}},
    }


class Opaque:
    def __init__(self) -> None:
        self.v = 1


def test_untrackable_values_are_compared_at_each_sync() -> None:
    class H:
        @sync_all("H")
        def __init__(self) -> None:
            self.thing = Opaque()
            self.items: list[Any] = []
            self.tags = {"a"}

    h = H()
    assert h.sync.state() == {"thing": {"v": 1}, "items": [], "tags": ["a"]}
    h.thing.v = 2
    h.tags.add("b")
    ops = {op["path"]: op["value"] for op in h.sync.collect()}
    assert ops["/thing"] == {"v": 2} and sorted(ops["/tags"]) == ["a", "b"]
    h.items.append(Opaque())
    h.sync.collect()
    h.items[0].v = 5
    assert h.sync.collect() == [{"op": "add", "path": "/items", "value": [{"v": 5}]}]
    assert h.sync.collect() == []


def test_dropping_the_object_frees_its_sync_without_the_cycle_collector() -> None:
    gc.disable()
    try:
        n = Notes()
        s_ref = weakref.ref(n.sync)
        del n
        assert s_ref() is None
    finally:
        gc.enable()


class Stats:
    @sync_all("STATS")
    def __init__(self) -> None:
        self.title = "t"
        self.stats: list[dict[str, float]] = [{"mean": 1.0}]

    @property
    def ratio(self) -> float:
        return self.stats[0]["mean"] / 2


async def test_a_nan_set_by_the_server_is_an_error_at_sync_naming_its_path(
    fake_session: FakeSession,
) -> None:
    s = Stats()
    s.sync.attach(fake_session)
    fake_session.take()
    s.title = "batch"
    s.stats[0]["mean"] = float("nan")
    with pytest.raises(NonJSONValue) as info:
        await s.sync()
    assert info.value.path == "/stats/0/mean"
    assert "'/stats/0/mean'" in str(info.value) and "STATS" in str(info.value)
    assert fake_session.frames == []  # the bad frame is not sent
    with pytest.raises(NonJSONValue):  # still NaN: still refused, still nothing sent
        await s.sync()
    assert fake_session.frames == []
    s.stats[0]["mean"] = 4.0
    await s.sync()  # the batch is consumed: the whole state goes out, title included
    assert fake_session.take() == [
        {"type": "_SET:STATS", "data": {"title": "batch", "stats": [{"mean": 4.0}], "ratio": 2.0}}
    ]
    s.title = "next"
    await s.sync()
    assert fake_session.take() == [
        {"type": "_PATCH:STATS", "data": [{"op": "replace", "path": "/title", "value": "next"}]}
    ]


async def test_infinity_in_a_compared_value_is_named_too(fake_session: FakeSession) -> None:
    s = Stats()
    s.sync.attach(fake_session)
    fake_session.take()
    s.stats[0]["mean"] = float("inf")
    with pytest.raises(NonJSONValue) as info:
        await s.sync()
    assert info.value.path in ("/stats/0/mean", "/ratio")
    assert fake_session.frames == []
    with pytest.raises(NonJSONValue, match="/stats/0/mean"):
        s.sync.set_frame()
