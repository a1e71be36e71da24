"""JSON Schema of a synced class, for typed frontends.

`describe` reads what a class will sync without making an instance: the
options of its decorator (or `Synced` key), its fields, annotations,
properties and computed fields, and its exposed methods. `ws_sync_json_schema`
and `attach_to_openapi` give that in upstream ws-sync's shapes; the
`typescript` module turns it into TypeScript.

A plain class declares its synced attributes as class annotations
(``title: str``) to be typed; attributes first set in ``__init__`` have no
type that can be read before an instance exists, and are left out.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import typing
from typing import Any, ClassVar, get_origin

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model
from pydantic.alias_generators import to_pascal
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema

from .remote import RemoteMethod, remote_table
from .sync import camel_class, select_names, wire_name
from .utils.json_schema import CustomGenerateJsonSchema
from .validation import type_hints

SchemaKey = tuple[str, str]
"""(name, mode), as upstream keys its schemas."""

STATE = "MODEL STATE"
CREATE = "MODEL CREATE"


@dataclasses.dataclass
class Exposed:
    """One action or task, as the client calls it."""

    key: str
    params: type[BaseModel]
    result: Any
    progress: Any = None  # what a task's async generator yields
    doc: str | None = None


@dataclasses.dataclass
class Described:
    """What a synced class syncs and exposes, read from the class alone."""

    cls: type
    key: str | None
    camel: bool
    attributes: dict[str, str]
    """Attribute -> synced name."""
    types: dict[str, Any]
    read_only: set[str]
    task_exposure: str | None
    actions: list[Exposed]
    tasks: list[Exposed]
    docs: dict[str, str] = dataclasses.field(default_factory=dict)
    """Attribute -> its description (a pydantic field's)."""

    @property
    def name(self) -> str:
        return self.cls.__name__

    def state_model(self) -> type[BaseModel]:
        """A model of the synced state, by synced names; what the server
        computes or owns is read-only."""
        fields: dict[str, Any] = {}
        for i, (attr, wire) in enumerate(self.attributes.items()):
            extra: dict[str, Any] | None = {"readOnly": True} if attr in self.read_only else None
            info = Field(
                serialization_alias=wire, json_schema_extra=extra, description=self.docs.get(attr)
            )
            fields[f"f{i}"] = (self.types.get(attr, Any), info)
        if self.task_exposure:
            info = Field(
                serialization_alias=self.task_exposure, json_schema_extra={"readOnly": True}
            )
            fields["running_tasks"] = (list[str], info)
        config = ConfigDict(arbitrary_types_allowed=True, title=self.name)
        return create_model(self.name, __config__=config, **fields)


def sync_options(cls: type) -> dict[str, Any] | None:
    """The options a class's decorator or `Synced` key gave, if any."""
    options = getattr(cls, "__ws_sync_options__", None)
    if options is not None:
        return dict(options)
    for method in ("__init__", "model_post_init"):
        options = getattr(getattr(cls, method, None), "__ws_sync_options__", None)
        if options is not None:
            return dict(options)
    return None


def describe(cls: type, key: str | None = None) -> Described:
    """What `cls` syncs. Without decorator options, every public field (as
    ``Sync.all``); `key` overrides the class's."""
    options = sync_options(cls) or {"sync_all": True}
    camel = options.get("camel")
    if camel is None:
        camel = options.get("toCamelCase")
    if camel is None:
        camel = camel_class(cls)
    types = _attribute_types(cls)
    chosen = select_names(
        _static_candidates(cls, types),
        options.get("sync_all", False),
        options.get("include"),
        options.get("exclude"),
    )
    attributes = {a: wire_name(cls, a, r, bool(camel)) for a, r in chosen.items()}
    read_only = set(options.get("read_only") or ()) | {a for a in chosen if _computed(cls, a)}
    exposure = None
    if options.get("expose_running_tasks"):
        exposure = wire_name(cls, "running_tasks", ..., bool(camel))
    scope_key = key or options.get("key") or cls.__name__
    table = remote_table(cls)
    return Described(
        cls=cls,
        key=scope_key,
        camel=bool(camel),
        attributes=attributes,
        types=types,
        read_only=read_only,
        task_exposure=exposure,
        actions=[_exposed(cls, m, bool(camel)) for m in table.by_kind["action"].values()],
        tasks=[_exposed(cls, m, bool(camel)) for m in table.by_kind["task"].values()],
        docs=_docs(cls),
    )


def _docs(cls: type) -> dict[str, str]:
    if not issubclass(cls, BaseModel):
        return {}
    docs = {n: f.description for n, f in cls.model_fields.items() if f.description}
    docs.update({n: c.description for n, c in cls.model_computed_fields.items() if c.description})
    return docs


def _attribute_types(cls: type) -> dict[str, Any]:
    types: dict[str, Any] = {}
    if issubclass(cls, BaseModel):
        for name, info in cls.model_fields.items():
            types[name] = (
                typing.Annotated[info.annotation, *info.metadata]
                if info.metadata
                else info.annotation
            )
        for name, computed in cls.model_computed_fields.items():
            types[name] = computed.return_type
    else:
        for name, tp in type_hints(cls).types.items():
            if not name.startswith("_") and get_origin(tp) is not ClassVar and tp is not ClassVar:
                types[name] = tp
    for klass in reversed(cls.__mro__):
        if klass in (object, BaseModel) or klass.__module__.startswith("pydantic"):
            continue
        for name, value in vars(klass).items():
            getter = value.fget if isinstance(value, property) else getattr(value, "func", None)
            if isinstance(value, property | functools.cached_property) and name not in types:
                ret = type_hints(getter).types.get("return", Any) if getter else Any
                types[name] = ret
    types.pop("sync", None)
    return types


def _static_candidates(cls: type, types: dict[str, Any]) -> list[str]:
    if issubclass(cls, BaseModel):
        names = [n for n, f in cls.model_fields.items() if not f.exclude]
        names += list(cls.model_computed_fields)
    else:
        names = []
    names += [n for n in types if n not in names and not n.startswith("_")]
    return names


def _computed(cls: type, attr: str) -> bool:
    from .sync import _is_computed

    if not _is_computed(cls, attr):
        return False
    prop = inspect.getattr_static(cls, attr, None)
    return not (isinstance(prop, property) and prop.fset is not None)


def _exposed(cls: type, method: RemoteMethod, camel: bool) -> Exposed:
    label = "Action" if method.kind == "action" else "Task"
    title = f"{cls.__name__}{label}{to_pascal(method.key)}"
    params = method.params(camel)
    fields: dict[str, Any] = {}
    for slot in params.slots:
        info = params.model.model_fields[slot.field]
        merged = FieldInfo.merge_field_infos(info, validation_alias=slot.wire)
        fields[slot.field] = (info.annotation, merged)
    config = ConfigDict(arbitrary_types_allowed=True, title=title)
    model = create_model(title, __config__=config, __module__=cls.__module__, **fields)
    func = method.raw.__func__ if isinstance(method.raw, staticmethod | classmethod) else method.raw
    returned = type_hints(func).types.get("return", Any)
    result, progress = returned, None
    if inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func):
        args = typing.get_args(returned)
        result, progress = None, (args[0] if args else Any)
    return Exposed(method.key, model, result, progress, inspect.getdoc(func))


# --------------------------------------------------------------------------- #
# upstream's shapes


def ws_sync_json_schema(
    cls: type,
    *,
    always_include_validation_schema: bool = False,
    schema_generator: type[GenerateJsonSchema] = GenerateJsonSchema,
    ref_template: str = "#/$defs/{model}",
) -> tuple[dict[SchemaKey, Any], dict[str, Any]]:
    """``(schemas, definitions)``: the state (serialization) under ``"MODEL
    STATE"``, each action's and task's params (validation) under its key, and
    the helper schemas ``"REMOTE ACTIONS KEYS"`` / ``"REMOTE ACTIONS
    PARAMS"`` / ``"REMOTE TASKS KEYS"`` / ``"REMOTE TASKS PARAMS"``, as
    upstream ws-sync returns them."""
    d = describe(cls)
    inputs: list[tuple[str, Any, TypeAdapter[Any]]] = [
        (e.key, "validation", TypeAdapter(e.params)) for e in [*d.actions, *d.tasks]
    ]
    if always_include_validation_schema:
        inputs.append((CREATE, "validation", TypeAdapter(cls)))
    inputs.append((STATE, "serialization", TypeAdapter(d.state_model())))
    generated, definitions = TypeAdapter.json_schemas(
        inputs, schema_generator=schema_generator, ref_template=ref_template
    )
    schemas: dict[SchemaKey, Any] = {(k[0], k[1]): v for k, v in generated.items()}
    for label, exposed in (("ACTIONS", d.actions), ("TASKS", d.tasks)):
        keys = [e.key for e in exposed]
        noun = "action" if label == "ACTIONS" else "task"
        schemas[(f"REMOTE {label} KEYS", "validation")] = {
            "description": f"Lists all {noun} keys as enum values",
            "type": "string",
            "enum": keys,
            "title": f"{d.name}{label.capitalize()}Keys",
        }
        schemas[(f"REMOTE {label} PARAMS", "validation")] = {
            "description": f"Maps each {noun} key to its parameters",
            "properties": {
                k: _null_if_empty(schemas[(k, "validation")], definitions) for k in keys
            },
            "required": keys,
            "title": f"{d.name}{label.capitalize()}Params",
            "type": "object",
        }
    return schemas, dict(definitions)


def _null_if_empty(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """A method without params takes ``null`` (upstream's convention)."""
    target = schema
    if "$ref" in schema:
        target = definitions.get("$defs", {}).get(schema["$ref"].rsplit("/", 1)[-1], {})
    if not target.get("properties"):
        return {"type": "null"}
    return schema


def attach_to_openapi(
    cls: type,
    openapi: dict[str, Any],
    *,
    always_include_validation_schema: bool = False,
    schema_generator: type[GenerateJsonSchema] = CustomGenerateJsonSchema,
) -> dict[str, Any]:
    """A copy of `openapi` with the class's schemas under
    ``components.schemas`` (by title), so OpenAPI client generators emit them."""
    out = copy.deepcopy(openapi)
    components = out.setdefault("components", {}).setdefault("schemas", {})
    schemas, definitions = ws_sync_json_schema(
        cls,
        always_include_validation_schema=always_include_validation_schema,
        schema_generator=schema_generator,
        ref_template="#/components/schemas/{model}",
    )
    for schema in schemas.values():
        if "title" in schema:
            components[schema["title"]] = schema
    components.update(definitions.get("$defs", {}))
    return out
