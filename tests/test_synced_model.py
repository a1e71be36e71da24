"""Synced base classes: the pydantic mixins and the plain SyncedObject."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field
from pydantic.alias_generators import to_camel

from ws_sync import Sync, sync_all
from ws_sync.synced_model import Synced, SyncedAsCamelCase, SyncedObject


class Profile(SyncedAsCamelCase, BaseModel):
    first_name: str
    last_name: str
    nick: str = Field("n", alias="nickName")

    @sync_all("PROFILE")
    def model_post_init(self, __context: Any) -> None:
        pass

    @computed_field  # type: ignore[prop-decorator]
    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


def test_synced_as_camel_case_and_computed_field() -> None:
    p = Profile(first_name="Ada", last_name="L", nickName="al")
    assert p.sync.state() == {
        "firstName": "Ada",
        "lastName": "L",
        "nickName": "al",
        "fullName": "Ada L",
    }
    p.first_name = "Grace"
    assert p.sync.collect() == [
        {"op": "replace", "path": "/firstName", "value": "Grace"},
        {"op": "add", "path": "/fullName", "value": "Grace L"},
    ]


class AliasModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    user_id: int = 1

    @sync_all("ALIAS")
    def model_post_init(self, __context: Any) -> None:
        pass


def test_pydantic_alias_generator_is_honoured() -> None:
    m = AliasModel()
    assert m.sync.state() == {"userId": 1}


class MixinNotes(Synced, BaseModel, sync_key="MIXIN"):
    items: list[int] = []


def test_synced_mixin_with_class_key() -> None:
    m = MixinNotes(items=[1])
    assert m.sync.key == "MIXIN"
    m.items.append(2)
    assert m.sync.collect() == [{"op": "add", "path": "/items/1", "value": 2}]


class ManualMixin(Synced, BaseModel):
    value: int = 0

    def model_post_init(self, context: Any, /) -> None:
        self.sync = Sync.all(self, "MANUAL")


def test_synced_mixin_with_manual_sync_in_post_init() -> None:
    m = ManualMixin()
    assert m.sync.key == "MANUAL"
    m.value = 3
    assert m.sync.collect() == [{"op": "replace", "path": "/value", "value": 3}]


class Team(SyncedObject, key="TEAM"):
    members: list[str] = []
    lead: str = "nobody"


def test_synced_object_metaclass() -> None:
    t1, t2 = Team(), Team()
    assert t1.members is not t2.members  # defaults are copied per instance
    t1.members.append("ann")
    t1.lead = "ann"
    assert t1.sync.collect() == [
        {"op": "replace", "path": "/lead", "value": "ann"},
        {"op": "add", "path": "/members/0", "value": "ann"},
    ]
    assert t2.sync.state() == {"members": [], "lead": "nobody"}


def test_synced_as_camel_case_sets_the_camel_option() -> None:
    p = Profile(first_name="a", last_name="b")
    assert p.sync.camel is True
    assert AliasModel().sync.camel is False
