"""JSON Schema of synced classes, in upstream ws-sync's shapes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field
from pydantic.json_schema import models_json_schema

from ws_sync import SyncedAsCamelCase, remote_action, remote_task, sync_only
from ws_sync.schema import attach_to_openapi, describe, ws_sync_json_schema
from ws_sync.utils.json_schema import CustomGenerateJsonSchema


class Tag(BaseModel):
    label: str
    weight: int = 1


class Board(SyncedAsCamelCase, BaseModel, sync_key="BOARD"):
    board_title: str = "b"
    tags: list[Tag] = []

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tag_count(self) -> int:
        return len(self.tags)

    @remote_action("ADD_TAG")
    async def add_tag(self, new_tag: Tag, at_index: int = Field(0, ge=0)) -> int:
        return at_index

    @remote_action("CLEAR")
    async def clear(self) -> None: ...

    @remote_task("SORT")
    async def sort(self, reverse: bool = False) -> None: ...


def _defs(definitions: dict[str, Any]) -> dict[str, Any]:
    defs: dict[str, Any] = definitions["$defs"]
    return defs


def test_schemas_in_upstream_shape() -> None:
    schemas, definitions = ws_sync_json_schema(Board)
    assert set(schemas) == {
        ("ADD_TAG", "validation"),
        ("CLEAR", "validation"),
        ("SORT", "validation"),
        ("MODEL STATE", "serialization"),
        ("REMOTE ACTIONS KEYS", "validation"),
        ("REMOTE ACTIONS PARAMS", "validation"),
        ("REMOTE TASKS KEYS", "validation"),
        ("REMOTE TASKS PARAMS", "validation"),
    }
    defs = _defs(definitions)
    state = defs[schemas[("MODEL STATE", "serialization")]["$ref"].rsplit("/", 1)[-1]]
    assert list(state["properties"]) == ["boardTitle", "tags", "tagCount"]
    assert state["properties"]["tagCount"]["readOnly"] is True
    assert "readOnly" not in state["properties"]["boardTitle"]
    add = defs["BoardActionAddTag"]
    assert set(add["properties"]) == {"newTag", "atIndex"}
    assert add["required"] == ["newTag"]
    assert add["properties"]["atIndex"]["minimum"] == 0
    keys = schemas[("REMOTE ACTIONS KEYS", "validation")]
    assert keys["enum"] == ["ADD_TAG", "CLEAR"] and keys["title"] == "BoardActionsKeys"
    params = schemas[("REMOTE ACTIONS PARAMS", "validation")]["properties"]
    assert params["CLEAR"] == {"type": "null"}
    assert params["ADD_TAG"] == {"$ref": "#/$defs/BoardActionAddTag"}
    assert schemas[("REMOTE TASKS KEYS", "validation")]["enum"] == ["SORT"]


def test_attach_to_openapi_adds_components_and_keeps_the_input() -> None:
    openapi: dict[str, Any] = {"openapi": "3.1.0", "paths": {}}
    out = attach_to_openapi(Board, openapi)
    assert openapi == {"openapi": "3.1.0", "paths": {}}
    components = out["components"]["schemas"]
    assert {"Board", "Tag", "BoardActionAddTag", "BoardActionsKeys", "BoardTasksParams"} <= set(
        components
    )
    assert components["BoardActionAddTag"]["properties"]["newTag"] == {
        "$ref": "#/components/schemas/Tag"
    }


def test_definition_names() -> None:
    class Defaulted(BaseModel):
        model_config = ConfigDict(json_schema_serialization_defaults_required=True)
        name: str = "x"

    class Same(BaseModel):
        name: str

    both, _ = models_json_schema(
        [(Defaulted, "serialization"), (Defaulted, "validation"), (Same, "validation")],
        schema_generator=CustomGenerateJsonSchema,
    )
    assert both[(Defaulted, "serialization")]["$ref"] == "#/$defs/Defaulted"
    assert both[(Defaulted, "validation")]["$ref"] == "#/$defs/CreateDefaulted"
    assert both[(Same, "validation")]["$ref"] == "#/$defs/Same"
    alone, _ = models_json_schema(
        [(Defaulted, "validation")], schema_generator=CustomGenerateJsonSchema
    )
    assert alone[(Defaulted, "validation")]["$ref"] == "#/$defs/Defaulted"


def test_describe_a_plain_class_from_its_decorator_and_annotations() -> None:
    class Counter:
        value: int
        label: str | None

        @sync_only("COUNTER", value=..., label="name", _expose_running_tasks=True)
        def __init__(self) -> None:
            self.value = 0
            self.label = None

        @property
        def double(self) -> int:
            return self.value * 2

    d = describe(Counter)
    assert d.key == "COUNTER"
    assert d.attributes == {"value": "value", "label": "name"}
    assert d.types["value"] is int and d.types["double"] is int
    assert d.task_exposure == "running_tasks"
    state = d.state_model().model_json_schema(mode="serialization")
    assert list(state["properties"]) == ["value", "name", "running_tasks"]
