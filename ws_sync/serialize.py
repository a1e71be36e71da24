"""Turning state into JSON: pydantic_core does the work, this decides the edge cases."""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple, get_args, get_origin

from pydantic import BaseModel, PlainSerializer, WrapSerializer
from pydantic_core import to_json, to_jsonable_python


def fallback(value: Any) -> Any:
    """Objects pydantic does not know: synced objects give their state, others their
    public attributes, and anything else its `str()`."""
    node = getattr(value, "__dict__", {}).get("__ws_node__")
    if node is not None and node.sync is not None and node.owner_id == id(value):
        return node.sync.state()
    if isinstance(value, set | frozenset):
        return list(value)
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict):
        return {k: v for k, v in attrs.items() if not k.startswith("_")}
    return str(value)


def dump(value: Any) -> Any:
    """JSON-compatible Python data, as the client sees it."""
    return to_jsonable_python(value, by_alias=True, fallback=fallback)


def dumps(value: Any) -> bytes:
    return to_json(value, by_alias=True, fallback=fallback)


class Custom(NamedTuple):
    """How a model class's JSON departs from its values' own: `fields` whose
    JSON only the model can make (a field serializer, a serializer in the
    annotation, serialization config), or the whole model (a model serializer)."""

    whole: bool
    fields: frozenset[str]


PLAIN = Custom(False, frozenset())


class _CustomCache(dict[type, Custom]):
    """`CUSTOM[cls]`: found once per class, then a plain dict lookup (no call)."""

    def __missing__(self, cls: type) -> Custom:
        found = self[cls] = _find_custom(cls)
        return found


CUSTOM = _CustomCache()


def custom_of(cls: type) -> Custom:
    return CUSTOM[cls]


def _find_custom(cls: type) -> Custom:
    decorators = getattr(cls, "__pydantic_decorators__", None)
    fields = getattr(cls, "__pydantic_fields__", None)
    if decorators is None or not isinstance(fields, dict):
        return PLAIN
    if decorators.model_serializers:
        return Custom(True, frozenset(fields))
    config = getattr(cls, "model_config", None) or getattr(cls, "__pydantic_config__", {})
    if any(key.startswith("ser_json_") for key in config):
        return Custom(False, frozenset(fields))
    names: set[str] = set()
    for dec in decorators.field_serializers.values():
        chosen = dec.info.fields
        names.update(fields if "*" in chosen else chosen)
    for name, info in fields.items():
        if _has_serializer(info.annotation, tuple(info.metadata), 0):
            names.add(name)
    return Custom(False, frozenset(names)) if names else PLAIN


def _has_serializer(tp: Any, metadata: tuple[Any, ...], depth: int) -> bool:
    """A serializer anywhere in the annotation (`Annotated[..., PlainSerializer]`,
    also inside `list[...]` etc.), or a non-pydantic class with its own core schema."""
    if any(isinstance(m, PlainSerializer | WrapSerializer) for m in metadata):
        return True
    if depth > 8:
        return False
    if get_origin(tp) is Annotated:
        inner, *extra = get_args(tp)
        return _has_serializer(inner, tuple(extra), depth + 1)
    if isinstance(tp, type):
        if hasattr(tp, "__get_pydantic_core_schema__"):
            return not issubclass(tp, BaseModel) and tp.__module__.split(".")[0] != "pydantic"
        return False
    return any(_has_serializer(arg, (), depth + 1) for arg in get_args(tp))


def field_json(obj: Any, name: str) -> Any:
    """The JSON of one field as the model serializes it (for `Custom.fields`)."""
    out = type(obj).__pydantic_serializer__.to_python(
        obj, include={name}, by_alias=True, mode="json", fallback=fallback
    )
    return next(iter(out.values())) if out else None


def attribute_json(obj: Any, name: str, value: Any) -> Any:
    """The JSON of a synced attribute: by the model where the model shapes it."""
    if name in custom_of(type(obj)).fields:
        return field_json(obj, name)
    return dump(value)
