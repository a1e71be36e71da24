"""Validating the params of an action or task against its signature.

A pydantic model is built once per method from its parameters: annotations
(with `Field` constraints, nested models, enums, dataclasses, TypedDicts,
Optionals), defaults, and the wire spelling of each name (camelCase when the
object syncs in camelCase; the Python spelling is accepted too). Unannotated
params are `Any`; an annotation that does not resolve is an error, never `Any`.
Params arrive by name, or in order as ``"$args": [...]`` (the convention of the
JS client), or, for a method with a single param, as the members of one object
(the JS client sends ``f({...})`` that way).

Numbers a browser could not hold are refused as in client writes: NaN and
Infinity (also where lax validation makes them from ``"NaN"``), and with
`Limits.safe_integers` (off by default) integers beyond +-(2**53 - 1).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from pydantic import AliasChoices, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic.fields import FieldInfo

from .context import session_context
from .limits import Limits
from .naming import camel as to_camel
from .protocol import capped, validation_errors
from .serialize import unsafe_number

RESERVED = ("type", "$id", "$args")
"""Keys of an `_ACTION` / `_TASK_START` payload that are not params."""


_DEFAULT_LIMITS = Limits()


class ParamsError(ValueError):
    """The params do not fit the signature; `errors` says where, and
    `validation_error` is pydantic's own error when validation failed."""

    def __init__(
        self,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        validation_error: ValidationError | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = capped(errors or [])
        self.validation_error = validation_error


@dataclass(frozen=True)
class _Slot:
    name: str  # Python name
    wire: str  # name on the wire
    field: str  # field of the params model
    positional_only: bool
    keyword_only: bool

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.wire, self.name, to_camel(self.name))


class Params:
    """Binds a client payload to a method's parameters, validated."""

    def __init__(
        self, func: Any, *, camel: bool, skip_first: bool, label: str | None = None
    ) -> None:
        self.qualname = label or getattr(func, "__qualname__", repr(func))
        parameters = list(inspect.signature(func).parameters.values())
        if skip_first and parameters:
            parameters = parameters[1:]
        hints = _hints(func)
        fields: dict[str, Any] = {}
        self.slots: list[_Slot] = []
        self.var_args: TypeAdapter[Any] | None = None
        self.var_kwargs: TypeAdapter[Any] | None = None
        for i, p in enumerate(parameters):
            annotation = hints.get(p.name, Any)
            if p.kind is p.VAR_POSITIONAL:
                self.var_args = TypeAdapter(list[annotation])  # type: ignore[valid-type]
                continue
            if p.kind is p.VAR_KEYWORD:
                self.var_kwargs = TypeAdapter(dict[str, annotation])  # type: ignore[valid-type]
                continue
            wire = to_camel(p.name) if camel else p.name
            spellings = list(dict.fromkeys([wire, p.name, to_camel(p.name)]))
            alias: str | AliasChoices = AliasChoices(*spellings) if len(spellings) > 1 else wire
            fields[f"p{i}"] = (annotation, _field(p.default, alias))
            slot = _Slot(
                p.name, wire, f"p{i}", p.kind is p.POSITIONAL_ONLY, p.kind is p.KEYWORD_ONLY
            )
            self.slots.append(slot)
        config = ConfigDict(
            extra="allow" if self.var_kwargs else "forbid", arbitrary_types_allowed=True
        )
        name = f"{getattr(func, '__name__', 'method')}_params"
        self.model = create_model(name, __config__=config, **fields)

    def bind(
        self, data: dict[str, Any], limits: Limits | None = None
    ) -> tuple[list[Any], dict[str, Any]]:
        """(args, kwargs) for the method, validated and coerced. Raises `ParamsError`.
        `limits` default to those of the current session."""
        limits = limits or getattr(session_context.get(None), "limits", None) or _DEFAULT_LIMITS
        values = {k: v for k, v in data.items() if k not in RESERVED}
        self._check_numbers(values, limits)
        rest: list[Any] = []
        if "$args" in data:
            rest = self._positional(data["$args"], values)
        elif self._is_wrapped(values):
            values = {self.slots[0].wire: values}
        try:
            model = self.model.model_validate(values)
            extra = (
                self.var_kwargs.validate_python(model.model_extra or {}) if self.var_kwargs else {}
            )
            rest = self.var_args.validate_python(rest) if self.var_args else []
        except ValidationError as e:
            raise ParamsError(
                f"invalid params for {self.qualname}", validation_errors(e), e
            ) from None
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for slot in self.slots:
            value = getattr(model, slot.field)
            if slot.positional_only or (rest and not slot.keyword_only):
                args.append(value)
            else:
                kwargs[slot.name] = value
        self._check_numbers({**kwargs, **extra, "$args": [*args, *rest]}, limits)
        return [*args, *rest], {**kwargs, **extra}

    def _check_numbers(self, values: dict[str, Any], limits: Limits) -> None:
        """Refuse NaN, Infinity and (with `safe_integers`) unsafe integers, as
        sent and as validation made them."""
        found = unsafe_number(values, limits.safe_integers)
        if found is not None:
            path, reason = found
            loc = path[1:].split("/")
            raise ParamsError(
                f"invalid params for {self.qualname}: {reason} (at {path})",
                [{"loc": loc, "msg": reason, "type": "unsafe_number"}],
            )

    def _positional(self, given: Any, values: dict[str, Any]) -> list[Any]:
        """Move ``$args`` into `values` by parameter order; returns the surplus."""
        if not isinstance(given, list):
            raise ParamsError("'$args' must be an array", [{"loc": ["$args"], "msg": "not a list"}])
        slots = [s for s in self.slots if not s.keyword_only]
        if len(given) > len(slots) and self.var_args is None:
            raise ParamsError(
                f"{self.qualname} takes {len(slots)} positional params, got {len(given)}",
                [{"loc": ["$args"], "msg": "too many positional params"}],
            )
        for slot, value in zip(slots, given, strict=False):
            if any(k in values for k in slot.spellings):
                raise ParamsError(
                    f"param {slot.wire!r} given twice",
                    [{"loc": [slot.wire], "msg": "given by position and by name"}],
                )
            values[slot.wire] = value
        return given[len(slots) :]

    def _is_wrapped(self, values: dict[str, Any]) -> bool:
        """A single-param method called with the members of one object."""
        if len(self.slots) != 1 or self.var_kwargs is not None or not values:
            return False
        return not any(k in values for k in self.slots[0].spellings)


def _field(default: Any, alias: str | AliasChoices) -> FieldInfo:
    """The model field of a param: ``param: T = Field(...)`` keeps its
    constraints and default (a missing param then fails as a missing field)."""
    own = Field(validation_alias=alias)
    if isinstance(default, FieldInfo):
        return FieldInfo.merge_field_infos(default, own)
    return FieldInfo.merge_field_infos(
        Field(... if default is inspect.Parameter.empty else default), own
    )


def _hints(func: Any) -> dict[str, Any]:
    """The resolved annotations of the params; one that does not resolve is an
    error (the return annotation is not needed and may fail)."""
    from .validation import type_hints

    hints = type_hints(func)
    failed = [why for name, why in hints.failed.items() if name != "return"]
    if failed:
        name = getattr(func, "__qualname__", func)
        raise TypeError(f"cannot resolve the annotations of {name}: {'; '.join(failed)}")
    return hints.types
