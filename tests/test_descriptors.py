"""Synced attributes on plain classes are set-only data descriptors."""

from __future__ import annotations

from ws_sync import Sync
from ws_sync.descriptors import SyncAccessor, SyncedAttribute


class Plain:
    label = "class default"  # a plain class attribute cannot take a descriptor

    def __init__(self) -> None:
        self.items: list[int] = [1]
        self.name = "n"


def test_reads_go_to_the_instance_dict_writes_through_the_descriptor() -> None:
    p = Plain()
    s = Sync(p, "P", include=["items", "name", "label"])
    descriptor = type(p).__dict__["name"]
    assert isinstance(descriptor, SyncedAttribute)
    assert not hasattr(descriptor, "__get__")
    assert p.name is p.__dict__["name"]
    p.name = "m"
    assert s.collect() == [{"op": "replace", "path": "/name", "value": "m"}]


def test_delete_and_set_again() -> None:
    p = Plain()
    s = Sync(p, "P", include=["items", "name"])
    del p.name
    assert s.collect() == [{"op": "remove", "path": "/name"}]
    p.name = "back"
    assert s.collect() == [{"op": "add", "path": "/name", "value": "back"}]


def test_unsynced_instances_of_the_same_class_are_untouched() -> None:
    p, q = Plain(), Plain()
    Sync(p, "P", include=["name"])
    q.name = "free"
    assert q.__dict__["name"] == "free" and "__ws_node__" not in q.__dict__


def test_a_class_attribute_is_compared_instead_of_tracked() -> None:
    p = Plain()
    s = Sync(p, "P", include=["label"])
    assert s.state() == {"label": "class default"}
    Plain.label = "changed on the class"
    assert s.collect() == [{"op": "add", "path": "/label", "value": "changed on the class"}]
    Plain.label = "class default"


def test_sync_accessor_is_a_property_that_pydantic_leaves_alone() -> None:
    p = Plain()
    s = Sync(p, "P", include=["name"])
    assert isinstance(type(p).__dict__["sync"], SyncAccessor)
    assert p.sync is s
