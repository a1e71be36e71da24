"""Turning state into JSON: pydantic_core does the work, this decides the edge cases."""

from __future__ import annotations

import dataclasses
import decimal
import math
from typing import Annotated, Any, NamedTuple, get_args, get_origin

from pydantic import BaseModel, PlainSerializer, WrapSerializer
from pydantic_core import to_json, to_jsonable_python

from .pointer import escape


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


# --------------------------------------------------------------------------- #
# numbers a browser cannot take as sent

MAX_SAFE_INTEGER = 2**53 - 1
"""The largest integer a JavaScript number (a double) holds exactly."""

NOT_FINITE = "NaN and Infinity are not JSON numbers"
NOT_SAFE = f"integers beyond +-{MAX_SAFE_INTEGER} lose precision in a browser"


def unsafe_number(value: Any, safe_integers: bool = False) -> tuple[str, str] | None:
    """(pointer, reason) of the first number in `value` that would not reach a
    browser as it is: NaN or +-Infinity, which JSON cannot spell, and with
    `safe_integers` an integer a double cannot hold. Walks JSON data and what
    validation makes of it (models, dataclasses, tuples, sets); None if clean."""
    found = _unsafe(value, safe_integers)
    if found is None:
        return None
    tokens, reason = found
    return "".join("/" + escape(t) for t in reversed(tokens)), reason


def _unsafe(value: Any, safe: bool) -> tuple[list[Any], str] | None:
    t = type(value)
    if t is dict:
        children: Any = value.items()
    elif t is list or t is tuple:
        children = enumerate(value)
    else:
        children = _children(value)
        if children is None:
            reason = _unsafe_scalar(value, safe)
            return ([], reason) if reason else None
    for key, child in children:
        ct = type(child)
        if ct is str or ct is bool or child is None:
            continue  # the bulk of most data: decided without a call
        if ct is float:
            if child - child == 0.0:  # NaN and +-inf give NaN
                continue
            return [key], NOT_FINITE
        if ct is int:
            if not safe or -MAX_SAFE_INTEGER <= child <= MAX_SAFE_INTEGER:
                continue
            return [key], NOT_SAFE
        found = _unsafe(child, safe)
        if found is not None:
            found[0].append(key)
            return found
    return None


def _children(value: Any) -> Any:
    """(key, child) pairs of a container that is not a plain dict or list."""
    if isinstance(value, dict):
        return value.items()
    if isinstance(value, list | tuple | set | frozenset):
        return enumerate(value)
    if isinstance(value, BaseModel):
        extra = value.__pydantic_extra__ or {}
        return [*value.__dict__.items(), *extra.items()]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f.name, getattr(value, f.name, None)) for f in dataclasses.fields(value)]
    return None


def _unsafe_scalar(value: Any, safe: bool) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, decimal.Decimal):
        return None if value.is_finite() else NOT_FINITE
    if isinstance(value, float):
        return None if math.isfinite(value) else NOT_FINITE
    if isinstance(value, int) and safe and not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return NOT_SAFE
    return None
