"""The decorators: on __init__, on model_post_init, on the class."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ws_sync import sync, sync_all, sync_only


class Renamed:
    @sync_only("R", title=..., notes=..., total_length="size")
    def __init__(self) -> None:
        self.title = "T"
        self.notes = ["a"]
        self.private_data = "secret"

    @property
    def total_length(self) -> int:
        return len(self.notes)


def test_sync_only_with_rename() -> None:
    r = Renamed()
    assert r.sync.state() == {"title": "T", "notes": ["a"], "size": 1}
    r.private_data = "changed"
    assert r.sync.collect() == []


def test_camel_case_option() -> None:
    class C:
        @sync_all("C", toCamelCase=True)
        def __init__(self) -> None:
            self.first_name = "a"
            self.last_name = "b"

    c = C()
    assert c.sync.state() == {"firstName": "a", "lastName": "b"}
    c.first_name = "z"
    assert c.sync.collect() == [{"op": "replace", "path": "/firstName", "value": "z"}]


class SpecNotes(BaseModel):
    title: str = "My Notes"
    notes: list[str] = []

    @sync_all("NOTES")
    def model_post_init(self, __context: Any) -> None:
        pass


def test_plain_base_model_with_decorator_and_every_constructor() -> None:
    a = SpecNotes()
    b = SpecNotes.model_validate({"title": "v", "notes": ["x"]})
    c = SpecNotes.model_construct(title="c")
    d = b.model_copy(deep=True)
    e = b.model_copy()  # shallow: shares the list with b, as in pydantic
    for obj in (a, b, c, d, e):
        assert obj.sync.obj is obj
    assert d.sync is not b.sync and e.sync is not b.sync
    d.notes.append("y")
    assert d.sync.collect() == [{"op": "add", "path": "/notes/1", "value": "y"}]
    assert b.sync.collect() == [] and b.notes == ["x"]
    e.notes.append("z")
    assert b.notes == ["x", "z"]
    assert e.sync.collect() == [{"op": "add", "path": "/notes/1", "value": "z"}]
    assert b.sync.collect() == [{"op": "replace", "path": "/notes", "value": ["x", "z"]}]


def test_class_decorator_and_bare_sync_decorator() -> None:
    @sync(key="K", sync_all=True)
    class K:
        def __init__(self) -> None:
            self.x = 1

    class Bare:
        @sync
        def __init__(self) -> None:
            self.y = 2

    assert K().sync.state() == {"x": 1}
    assert Bare().sync.state() == {}  # nothing chosen: synced, with no attributes
