"""Writes from a client (`_SET`, `_PATCH`): checked, validated, all or nothing.

Only synced, writable attributes can be written. Values are validated against
the type at their path (a pydantic field with its constraints, an annotation of
a plain class, the item type of a ``list[User]``) and coerced (``"25"`` -> 25).
Independent ops are validated in place and applied as tracked mutations, so the
other clients get the same small patch; anything else (``move``, ``copy``, ops
that build on each other) is applied to a JSON copy of the touched attributes,
validated whole, and assigned.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import typing
from typing import Annotated, Any, Union, get_args, get_origin

import jsonpatch
from pydantic import BaseModel, TypeAdapter, ValidationError

from . import pointer
from .changelog import MISSING
from .patch import model_keymap
from .serialize import attribute_json, dump
from .sync import Sync, _is_computed

_OPS = {"add", "remove", "replace", "move", "copy", "test"}


class ClientWriteError(Exception):
    """A rejected client write; `errors` lists every failure."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


# --------------------------------------------------------------------------- #
# types


@functools.lru_cache(maxsize=1024)
def _adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


def adapter(tp: Any) -> TypeAdapter[Any]:
    try:
        return _adapter(tp)
    except TypeError:  # unhashable type expression
        return TypeAdapter(tp)


def attribute_type(obj: Any, attr: str) -> Any:
    """The declared type of a synced attribute, constraints included; Any if none."""
    cls = type(obj)
    if isinstance(obj, BaseModel):
        info = cls.model_fields.get(attr)
        if info is not None:
            return _annotated(info.annotation, info.metadata)
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            if f.name == attr:
                return _hints(cls).get(attr, Any)
    prop = _class_attr(cls, attr)
    if isinstance(prop, property) and prop.fset is not None:
        hints = typing.get_type_hints(prop.fset)
        params = [p for p in hints if p != "return"]
        if params:
            return hints[params[0]]
    return _hints(cls).get(attr, Any)


def _annotated(tp: Any, metadata: list[Any]) -> Any:
    return Annotated[tuple([tp, *metadata])] if metadata else tp


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except Exception:
        return {}


def _class_attr(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return None


def _strip(tp: Any) -> Any:
    """Look through Annotated and Optional to the type that has children."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, getattr(__import__("types"), "UnionType", Union)):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def child_type(tp: Any, token: str) -> Any:
    tp = _strip(tp)
    origin = get_origin(tp)
    args = get_args(tp)
    if origin in (list, set, frozenset) or (
        origin is not None and _is_sub(origin, typing.Sequence) and origin not in (str, tuple)
    ):
        return args[0] if args else Any
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
        if token.isdigit() and int(token) < len(args):
            return args[int(token)]
        return Any
    if origin is dict or (origin is not None and _is_sub(origin, typing.Mapping)):
        return args[1] if len(args) == 2 else Any
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        attr = _wire_to_attr(tp, token)
        info = tp.model_fields.get(attr) if attr else None
        return _annotated(info.annotation, info.metadata) if info else Any
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _hints(tp).get(token, Any)
    return Any


def key_type(tp: Any) -> Any:
    tp = _strip(tp)
    origin = get_origin(tp)
    if origin is dict or (origin is not None and _is_sub(origin, typing.Mapping)):
        args = get_args(tp)
        return args[0] if args else Any
    return Any


def _is_sub(origin: Any, abc: Any) -> bool:
    try:
        return issubclass(origin, abc)
    except TypeError:
        return False


def _wire_to_attr(cls: type, token: str) -> str | None:
    keymap = model_keymap(cls)
    for attr, wire in keymap.items():
        if wire == token:
            return attr
    return token if token in keymap else None


# --------------------------------------------------------------------------- #
# permissions


def writable_attribute(sync: Sync, token: str) -> tuple[str | None, str | None]:
    """(attribute, None) if a client may write the synced name `token`, else
    (None, reason)."""
    obj = sync.obj
    by_wire = {w: a for a, w in sync.attributes.items()}
    attr = by_wire.get(token)
    if attr is None and token in sync.attributes:
        attr = token  # the Python spelling is accepted too
    if attr is None:
        if token == sync.task_exposure:
            return None, f"{token!r} is read-only"
        return None, f"{token!r} is not a synced attribute"
    if attr in sync.read_only:
        return None, f"{token!r} is read-only"
    cls = type(obj)
    if _is_computed(cls, attr):
        prop = _class_attr(cls, attr)
        if not (isinstance(prop, property) and prop.fset is not None):
            return None, f"{token!r} is computed and cannot be written"
    return attr, None


# --------------------------------------------------------------------------- #
# _SET


def apply_set(sync: Sync, data: Any) -> dict[str, Any]:
    """Replace the given attributes. Returns the paths the client needs no echo for."""
    if not isinstance(data, dict):
        raise ClientWriteError("_SET data must be an object", [{"msg": "not an object"}])
    obj = sync.obj
    errors: list[dict[str, Any]] = []
    planned: list[tuple[str, str, Any, Any]] = []
    for token, value in data.items():
        attr, reason = writable_attribute(sync, str(token))
        path = pointer.join("", token)
        if attr is None:
            errors.append({"path": path, "msg": reason})
            continue
        try:
            validated = adapter(attribute_type(obj, attr)).validate_python(value)
        except ValidationError as e:
            errors.extend(_errors(e, path))
            continue
        planned.append((attr, sync.attributes[attr], validated, value))
    if errors:
        raise ClientWriteError(f"_SET rejected: {len(errors)} error(s)", errors)
    echo_free: dict[str, Any] = {}
    for attr, wire_name, validated, sent in planned:
        setattr(obj, attr, validated)
        if dump(validated) == sent:
            echo_free[pointer.join("", wire_name)] = sent
    return echo_free


def _errors(e: ValidationError, path: str, index: int | None = None) -> list[dict[str, Any]]:
    out = []
    for err in e.errors(include_url=False, include_context=False, include_input=False):
        item: dict[str, Any] = {
            "path": path,
            "msg": err["msg"],
            "type": err["type"],
            "loc": list(err["loc"]),
        }
        if index is not None:
            item["op"] = index
        out.append(item)
    return out


# --------------------------------------------------------------------------- #
# _PATCH


def apply_patch(sync: Sync, ops: Any) -> dict[str, Any]:
    """Apply a client's JSON Patch. Returns the paths the client needs no echo for."""
    parsed = _parse(ops)
    if _independent(parsed):
        return _apply_in_place(sync, parsed)
    return _apply_on_copy(sync, ops, parsed)


def _parse(ops: Any) -> list[tuple[str, list[str], dict[str, Any]]]:
    if not isinstance(ops, list):
        raise ClientWriteError(
            "_PATCH data must be an array of operations", [{"msg": "not a list"}]
        )
    errors = []
    parsed = []
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or op.get("op") not in _OPS:
            errors.append({"op": i, "msg": "not a JSON Patch operation"})
            continue
        path = op.get("path")
        if not isinstance(path, str):
            errors.append({"op": i, "msg": "missing or non-string 'path'"})
            continue
        try:
            tokens = pointer.split(path)
        except ValueError as e:
            errors.append({"op": i, "path": path, "msg": str(e)})
            continue
        if op["op"] in ("add", "replace", "test") and "value" not in op:
            errors.append({"op": i, "path": path, "msg": "missing 'value'"})
            continue
        if op["op"] in ("move", "copy"):
            src = op.get("from")
            try:
                pointer.split(src) if isinstance(src, str) else None
            except ValueError:
                src = None
            if not isinstance(src, str):
                errors.append({"op": i, "path": path, "msg": "missing or invalid 'from'"})
                continue
        if not tokens:
            errors.append({"op": i, "path": path, "msg": "the whole state cannot be replaced"})
            continue
        parsed.append((op["op"], tokens, op))
    if errors:
        raise ClientWriteError(f"_PATCH rejected: {len(errors)} error(s)", errors)
    return parsed


def _independent(parsed: list[tuple[str, list[str], dict[str, Any]]]) -> bool:
    """Ops that can be checked against the current state one by one: no move or
    copy, no path inside another, and nothing else under a container that an
    add or remove may shift."""
    if any(kind in ("move", "copy") for kind, _, _ in parsed):
        return False
    paths = [tuple(t) for _, t, _ in parsed]
    if len(set(paths)) != len(paths):
        return False
    ordered = sorted(paths)
    for a, b in itertools.pairwise(ordered):
        if b[: len(a)] == a:
            return False
    shifting = [
        (i, p[:-1])
        for i, ((kind, _, _), p) in enumerate(zip(parsed, paths, strict=True))
        if kind in ("add", "remove")
    ]
    return not any(
        j != i and path[: len(parent)] == parent
        for i, parent in shifting
        for j, path in enumerate(paths)
    )


def _apply_in_place(
    sync: Sync, parsed: list[tuple[str, list[str], dict[str, Any]]]
) -> dict[str, Any]:
    obj = sync.obj
    errors: list[dict[str, Any]] = []
    plan = []
    for i, (kind, tokens, op) in enumerate(parsed):
        try:
            plan.append(_plan(sync, obj, kind, tokens, op))
        except _OpError as e:
            errors.append({"op": i, "path": op["path"], "msg": e.message})
        except ValidationError as e:
            errors.extend(_errors(e, op["path"], i))
    if errors:
        raise ClientWriteError(f"_PATCH rejected: {len(errors)} error(s)", errors)
    echo_free: dict[str, Any] = {}
    for step in plan:
        if step is not None:
            step(echo_free)
    return echo_free


class _OpError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _plan(sync: Sync, obj: Any, kind: str, tokens: list[str], op: dict[str, Any]) -> Any:
    """Check one op against the live state; return the step that applies it."""
    attr, reason = writable_attribute(sync, tokens[0])
    if attr is None:
        raise _OpError(reason or "forbidden")
    tp = attribute_type(obj, attr)
    wire0 = pointer.join("", sync.attributes[attr])
    if len(tokens) == 1:
        if kind == "remove":
            raise _OpError("a synced attribute cannot be removed")
        if kind == "test":
            return _test(getattr(obj, attr), op["value"])
        value = adapter(tp).validate_python(op["value"])
        sent = op["value"]
        return _then_echo(lambda: setattr(obj, attr, value), wire0, value, sent)
    container = getattr(obj, attr)
    path = wire0
    for token in tokens[1:-1]:
        container, tp = _child(container, tp, token)
        path = pointer.join(path, token)
    last = tokens[-1]
    if kind == "test":
        value, _ = _child(container, tp, last)
        return _test(value, op["value"])
    if isinstance(container, list):
        return _plan_list(container, tp, kind, last, op, path)
    if isinstance(container, dict):
        return _plan_dict(container, tp, kind, last, op, path)
    return _plan_model(container, kind, last, op, path)


def _test(actual: Any, expected: Any) -> None:
    if dump(actual) != expected:
        raise _OpError("test failed")


def _then_echo(write: Any, path: str, value: Any, sent: Any) -> Any:
    """The planned step of one op: do `write`, then note whether it needs an echo."""

    def step(echo: dict[str, Any]) -> None:
        write()
        _echo(echo, path, value, sent)

    return step


def _echo(echo: dict[str, Any], path: str, value: Any, sent: Any) -> None:
    if dump(value) == sent:
        echo[path] = sent


def _child(container: Any, tp: Any, token: str) -> tuple[Any, Any]:
    if isinstance(container, list):
        i = _index(token, len(container))
        return container[i], child_type(tp, token)
    if isinstance(container, dict):
        key = _key(container, tp, token)
        if key not in container:
            raise _OpError(f"no member {token!r}")
        return container[key], child_type(tp, token)
    attr = _model_attr(container, token)
    return getattr(container, attr), _field_type(container, attr)


def _index(token: str, n: int) -> int:
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise _OpError(f"{token!r} is not an array index")
    i = int(token)
    if i >= n:
        raise _OpError(f"index {i} out of range")
    return i


def _key(container: dict[Any, Any], tp: Any, token: str) -> Any:
    kt = key_type(tp)
    if kt in (Any, str) or token in container:
        return token
    try:
        return adapter(kt).validate_python(token)
    except ValidationError as e:
        raise _OpError(f"invalid key {token!r}") from e


def _model_attr(container: Any, token: str) -> str:
    if not (isinstance(container, BaseModel) or dataclasses.is_dataclass(container)):
        raise _OpError(f"no member {token!r}")
    attr = _wire_to_attr(type(container), token)
    if attr is None or attr.startswith("_"):
        raise _OpError(f"no writable field {token!r}")
    return attr


def _field_type(container: Any, attr: str) -> Any:
    return child_type(type(container), model_keymap(type(container)).get(attr, attr))


def _plan_list(
    lst: list[Any], tp: Any, kind: str, token: str, op: dict[str, Any], path: str
) -> Any:
    n = len(lst)
    if kind == "add":
        if token == "-":
            i = n
        else:
            if not token.isdigit() or (len(token) > 1 and token[0] == "0") or int(token) > n:
                raise _OpError(f"index {token!r} out of range")
            i = int(token)
        value = adapter(child_type(tp, token)).validate_python(op["value"])
        target = pointer.join(path, i)
        sent = op["value"]
        return _then_echo(lambda: lst.insert(i, value), target, value, sent)
    i = _index(token, n)
    target = pointer.join(path, i)
    if kind == "remove":
        return lambda echo: (lst.pop(i), echo.__setitem__(target, MISSING))
    value = adapter(child_type(tp, token)).validate_python(op["value"])
    sent = op["value"]

    def replace(echo: dict[str, Any]) -> None:
        lst[i] = value
        _echo(echo, target, value, sent)

    return replace


def _plan_dict(
    d: dict[Any, Any], tp: Any, kind: str, token: str, op: dict[str, Any], path: str
) -> Any:
    key = _key(d, tp, token)
    target = pointer.join(path, token)
    if kind in ("remove", "replace") and key not in d:
        raise _OpError(f"no member {token!r}")
    if kind == "remove":
        return lambda echo: (d.pop(key), echo.__setitem__(target, MISSING))
    value = adapter(child_type(tp, token)).validate_python(op["value"])
    sent = op["value"]

    def put(echo: dict[str, Any]) -> None:
        d[key] = value
        _echo(echo, target, value, sent)

    return put


def _plan_model(model: Any, kind: str, token: str, op: dict[str, Any], path: str) -> Any:
    attr = _model_attr(model, token)
    if kind == "remove":
        raise _OpError(f"field {token!r} cannot be removed")
    value = adapter(_field_type(model, attr)).validate_python(op["value"])
    target = pointer.join(path, token)
    sent = op["value"]
    return _then_echo(lambda: setattr(model, attr, value), target, value, sent)


def _apply_on_copy(sync: Sync, ops: list[Any], parsed: list[Any]) -> dict[str, Any]:
    obj = sync.obj
    errors: list[dict[str, Any]] = []
    touched: dict[str, str] = {}
    for i, (_, tokens, op) in enumerate(parsed):
        heads = [tokens[0]]
        if "from" in op and op["op"] in ("move", "copy"):
            src = pointer.split(op["from"])
            if not src:
                errors.append({"op": i, "path": op["path"], "msg": "invalid 'from'"})
                continue
            heads.append(src[0])
        for head in heads:
            attr, reason = writable_attribute(sync, head)
            if attr is None:
                errors.append({"op": i, "path": op["path"], "msg": reason})
            else:
                touched[head] = attr
    if errors:
        raise ClientWriteError(f"_PATCH rejected: {len(errors)} error(s)", errors)
    # the client's view: fields the model serializes its own way, as it does
    doc = {head: attribute_json(obj, attr, getattr(obj, attr)) for head, attr in touched.items()}
    try:
        result = jsonpatch.apply_patch(doc, ops)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as e:
        raise ClientWriteError("_PATCH rejected", [{"msg": str(e)}]) from e
    if set(result) != set(doc):
        raise ClientWriteError("_PATCH rejected", [{"msg": "synced attributes cannot be removed"}])
    planned = []
    for head, attr in touched.items():
        if result[head] == doc[head]:
            continue
        try:
            value = adapter(attribute_type(obj, attr)).validate_python(result[head])
        except ValidationError as e:
            errors.extend(_errors(e, pointer.join("", head)))
            continue
        planned.append((attr, value, result[head]))
    if errors:
        raise ClientWriteError(f"_PATCH rejected: {len(errors)} error(s)", errors)
    echo_free: dict[str, Any] = {}
    for attr, value, sent in planned:
        setattr(obj, attr, value)
        _echo(echo_free, pointer.join("", sync.attributes[attr]), value, sent)
    return echo_free
