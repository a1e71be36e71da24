"""Writes from a client (`_SET`, `_PATCH`): checked, validated, all or nothing.

Only synced, writable attributes can be written. Values are validated against
the type at their path (a pydantic field with its constraints, an annotation of
a plain class, the item type of a ``list[User]``) and coerced (``"25"`` -> 25).
Independent ops are validated in place and applied as tracked mutations, so the
other clients get the same small patch; anything else (``move``, ``copy``, ops
that build on each other) is applied to a JSON copy of the touched attributes,
validated whole, and assigned.

Fail closed, with bounded work per frame:

- an annotation that does not resolve refuses every write to its attribute
  (naming it); nothing is ever accepted unvalidated;
- numbers a browser cannot hold are refused, also where lax validation would
  make them from a string (``"NaN"``): NaN and Infinity always, integers beyond
  +-(2**53 - 1) with `Limits.safe_integers` (off by default);
- a `_PATCH` has at most `Limits.max_patch_ops` ops, and its ``copy`` ops share
  what they copy and count it against `Limits.max_copy_nodes` as they go, so a
  patch that doubles the state is refused after a few cheap steps.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import sys
import typing
import weakref
from collections.abc import Iterator
from typing import Annotated, Any, NamedTuple, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import from_json, to_json

from . import pointer
from .changelog import MISSING
from .jsondoc import equal as json_equal
from .limits import Limits
from .patch import model_keymap
from .pointer import is_index as _is_index
from .protocol import capped, too_many
from .serialize import attribute_json, dump, unsafe_number
from .sync import Sync, _is_computed

_OPS = {"add", "remove", "replace", "move", "copy", "test"}
_DEFAULT_LIMITS = Limits()

logger = logging.getLogger("ws_sync")


class ClientWriteError(Exception):
    """A rejected client write; `errors` lists every failure."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = capped(errors or [])


class _OpError(Exception):
    """One refused op or value; `path`, when set, is more precise than the op's."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


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
    """The declared type of a synced attribute, constraints included; Any if none.
    Raises `_OpError` when the annotation does not resolve."""
    cls = type(obj)
    if isinstance(obj, BaseModel):
        info = cls.model_fields.get(attr)
        if info is not None:
            return _annotated(info.annotation, info.metadata)
    prop = _class_attr(cls, attr)
    if isinstance(prop, property) and prop.fset is not None:
        hints = type_hints(prop.fset)
        params = [p for p in inspect.signature(prop.fset).parameters][1:2]
        for name in params:
            if name in hints.failed:
                raise _OpError(f"{attr!r} cannot be validated: {hints.failed[name]}")
            if name in hints.types:
                return hints.types[name]
        return Any
    return declared_type(cls, attr)


def _annotated(tp: Any, metadata: list[Any]) -> Any:
    return Annotated[tuple([tp, *metadata])] if metadata else tp


class Hints(NamedTuple):
    """Resolved annotations, and why each of the others did not resolve."""

    types: dict[str, Any]
    failed: dict[str, str]


def type_hints(target: Any) -> Hints:
    """The annotations of a class (with its bases) or a function. Each is
    resolved on its own, so one that cannot be (a name only imported under
    TYPE_CHECKING) fails alone, named, instead of taking the others with it."""
    try:
        return Hints(typing.get_type_hints(target, include_extras=True), {})
    except Exception:
        pass
    types: dict[str, Any] = {}
    failed: dict[str, str] = {}
    owner = getattr(target, "__qualname__", repr(target))
    for name, annotation, globalns, localns in _annotations(target):
        try:
            types[name] = _evaluate(annotation, globalns, localns)
            failed.pop(name, None)
        except Exception as e:
            types.pop(name, None)
            spelled = annotation if isinstance(annotation, str) else repr(annotation)
            failed[name] = f"the annotation {name}: {spelled} of {owner} does not resolve ({e})"
    return Hints(types, failed)


def _annotations(target: Any) -> Iterator[tuple[str, Any, dict[str, Any], dict[str, Any]]]:
    """(name, annotation, globals, locals) in the order `typing.get_type_hints`
    reads them, with the namespaces it would use."""
    if isinstance(target, type):
        for base in reversed(target.__mro__):
            own = inspect.get_annotations(base)
            if not own:
                continue
            module = getattr(sys.modules.get(base.__module__), "__dict__", {})
            namespace = dict(vars(base))
            for name, annotation in own.items():
                yield name, annotation, namespace, module  # the module wins, as there
        return
    globalns = getattr(inspect.unwrap(target), "__globals__", {})
    for name, annotation in inspect.get_annotations(target).items():
        yield name, annotation, globalns, globalns


def _evaluate(annotation: Any, globalns: dict[str, Any], localns: dict[str, Any]) -> Any:
    stub = type("_", (), {"__annotations__": {"x": annotation}, "__module__": __name__})
    return typing.get_type_hints(stub, globalns, localns, include_extras=True)["x"]


class _ClassHints:
    __slots__ = ("hints", "warned")

    def __init__(self, hints: Hints) -> None:
        self.hints = hints
        self.warned: set[str] = set()


_class_hints: weakref.WeakKeyDictionary[type, _ClassHints] = weakref.WeakKeyDictionary()


def prepare(cls: type) -> None:
    """Resolve the annotations of a synced class, once, when its first `Sync`
    is built (not at the first write, where a failure would go unnoticed)."""
    if cls not in _class_hints:
        _class_hints[cls] = _ClassHints(type_hints(cls))


def declared_type(cls: type, name: str) -> Any:
    """The annotation of `name` on `cls`, Any if it has none. One that did not
    resolve is tried again (a late import may have made it resolvable); if it
    still fails the write is refused, naming it, and the server warns once."""
    entry = _class_hints.get(cls)
    if entry is None:
        prepare(cls)
        entry = _class_hints[cls]
    if name in entry.hints.failed:
        entry.hints = type_hints(cls)
        reason = entry.hints.failed.get(name)
        if reason is not None:
            if name not in entry.warned:
                entry.warned.add(name)
                logger.warning("%s: writes to %r are refused: %s", cls.__name__, name, reason)
            raise _OpError(f"{name!r} cannot be validated: {reason}")
    return entry.hints.types.get(name, Any)


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
        if _is_index(token) and int(token) < len(args):
            return args[int(token)]
        return Any
    if origin is dict or (origin is not None and _is_sub(origin, typing.Mapping)):
        return args[1] if len(args) == 2 else Any
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        attr = _wire_to_attr(tp, token)
        info = tp.model_fields.get(attr) if attr else None
        return _annotated(info.annotation, info.metadata) if info else Any
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return declared_type(tp, token)
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
# values


def validate(tp: Any, value: Any, limits: Limits, path: str) -> Any:
    """`value` as type `tp`; raises ValidationError, or `_OpError` for a number
    a browser could not hold, also one that validation made (``"NaN"``)."""
    validated = adapter(tp).validate_python(value)
    check_numbers(validated, limits, path)
    return validated


def check_numbers(value: Any, limits: Limits, path: str) -> None:
    found = unsafe_number(value, limits.safe_integers)
    if found is not None:
        raise _OpError(found[1], path + found[0])


# --------------------------------------------------------------------------- #
# _SET


def apply_set(sync: Sync, data: Any, limits: Limits | None = None) -> dict[str, Any]:
    """Replace the given attributes. Returns the paths the client needs no echo for."""
    if not isinstance(data, dict):
        raise ClientWriteError("_SET data must be an object", [{"msg": "not an object"}])
    limits = limits or _DEFAULT_LIMITS
    obj = sync.obj
    errors: list[dict[str, Any]] = []
    planned: list[tuple[str, str, Any, Any]] = []
    for token, value in data.items():
        attr, reason = writable_attribute(sync, str(token))
        path = pointer.join("", token)
        if attr is None:
            if not _derived(sync, str(token), value):
                errors.append({"path": path, "msg": reason})
            continue
        try:
            check_numbers(value, limits, path)
            validated = validate(attribute_type(obj, attr), value, limits, path)
        except ValidationError as e:
            errors.extend(_errors(e, path))
            continue
        except _OpError as e:
            errors.append({"path": e.path or path, "msg": e.message})
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


def _derived(sync: Sync, token: str, value: Any) -> bool:
    """A key of the whole state a client may send back but not write: a
    computed value, the running tasks, or a read-only attribute left as it
    is. A full-state `_SET` (``sendState(getState())``) skips them."""
    if token == sync.task_exposure:
        return True
    attr = {w: a for a, w in sync.attributes.items()}.get(token, token)
    if attr not in sync.attributes:
        return False
    if attr in sync.read_only:
        current = sync._read(sync.obj, attr)
        return current is not MISSING and json_equal(dump(current), value)
    return _is_computed(type(sync.obj), attr)


def _errors(e: ValidationError, path: str, index: int | None = None) -> list[dict[str, Any]]:
    summary = too_many(e.error_count())
    if summary is not None:
        return [{"path": path, **error} for error in summary]
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


class _Op(NamedTuple):
    kind: str
    tokens: list[str]
    source: list[str] | None  # the tokens of ``from`` (move, copy)
    op: dict[str, Any]


def apply_patch(sync: Sync, ops: Any, limits: Limits | None = None) -> dict[str, Any]:
    """Apply a client's JSON Patch. Returns the paths the client needs no echo for."""
    limits = limits or _DEFAULT_LIMITS
    parsed = _parse(ops, limits)
    if _independent(parsed):
        return _apply_in_place(sync, parsed, limits)
    return _apply_on_copy(sync, parsed, limits)


def _parse(ops: Any, limits: Limits) -> list[_Op]:
    if not isinstance(ops, list):
        raise ClientWriteError(
            "_PATCH data must be an array of operations", [{"msg": "not a list"}]
        )
    if len(ops) > limits.max_patch_ops:
        raise ClientWriteError(
            f"_PATCH rejected: {len(ops)} operations, at most {limits.max_patch_ops} are accepted",
            [{"msg": "too many operations"}],
        )
    errors: list[dict[str, Any]] = []
    parsed: list[_Op] = []
    for i, op in enumerate(ops):
        try:
            parsed.append(_parse_op(op, limits))
        except _OpError as e:
            path = {} if e.path is None else {"path": e.path}
            errors.append({"op": i, **path, "msg": e.message})
    if errors:
        raise ClientWriteError(f"_PATCH rejected: {len(errors)} error(s)", errors)
    return parsed


def _parse_op(op: Any, limits: Limits) -> _Op:
    if not isinstance(op, dict) or op.get("op") not in _OPS:
        raise _OpError("not a JSON Patch operation")
    kind = op["op"]
    path = op.get("path")
    if not isinstance(path, str):
        raise _OpError("missing or non-string 'path'")
    try:
        tokens = pointer.split(path)
    except ValueError as e:
        raise _OpError(str(e), path) from None
    if kind in ("add", "replace", "test"):
        if "value" not in op:
            raise _OpError("missing 'value'", path)
        check_numbers(op["value"], limits, path)
    source = None
    if kind in ("move", "copy"):
        src = op.get("from")
        try:
            source = pointer.split(src) if isinstance(src, str) else None
        except ValueError:
            source = None
        if not source:
            raise _OpError("missing or invalid 'from'", path)
    if not tokens:
        raise _OpError("the whole state cannot be replaced", path)
    return _Op(kind, tokens, source, op)


def _independent(parsed: list[_Op]) -> bool:
    """Ops that can be checked against the current state one by one: no move or
    copy, no path inside another, and nothing else under a container that an
    add or remove may shift. Linear in the tokens of the paths (a trie)."""
    if any(p.source is not None for p in parsed):
        return False
    root: list[Any] = [0, {}]  # [paths through this node, children by token]
    ends = []
    for p in parsed:
        node = root
        node[0] += 1
        for token in p.tokens:
            node = node[1].setdefault(token, [0, {}])
            node[0] += 1
        ends.append(node)
    for p, end in zip(parsed, ends, strict=True):
        if end[0] > 1:  # the same path twice, or a path inside this one
            return False
        if p.kind in ("add", "remove"):
            parent = root
            for token in p.tokens[:-1]:
                parent = parent[1][token]
            if parent[0] > 1:  # another op under the container this one shifts
                return False
    return True


def _apply_in_place(sync: Sync, parsed: list[_Op], limits: Limits) -> dict[str, Any]:
    obj = sync.obj
    errors: list[dict[str, Any]] = []
    plan = []
    for i, (kind, tokens, _, op) in enumerate(parsed):
        try:
            plan.append(_plan(sync, obj, kind, tokens, op, limits))
        except _OpError as e:
            errors.append({"op": i, "path": e.path or op["path"], "msg": e.message})
        except ValidationError as e:
            errors.extend(_errors(e, op["path"], i))
    if errors:
        raise ClientWriteError(f"_PATCH rejected: {len(errors)} error(s)", errors)
    echo_free: dict[str, Any] = {}
    for step in plan:
        if step is not None:
            step(echo_free)
    return echo_free


def _plan(
    sync: Sync, obj: Any, kind: str, tokens: list[str], op: dict[str, Any], limits: Limits
) -> Any:
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
        value = validate(tp, op["value"], limits, op["path"])
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
        return _plan_list(container, tp, kind, last, op, path, limits)
    if isinstance(container, dict):
        return _plan_dict(container, tp, kind, last, op, path, limits)
    return _plan_model(container, kind, last, op, path, limits)


def _test(actual: Any, expected: Any) -> None:
    if not json_equal(dump(actual), expected):
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
    if not _is_index(token) or (len(token) > 1 and token[0] == "0") or len(token) > 18:
        raise _OpError(f"{token[:20]!r} is not an array index")
    i = int(token)
    if i >= n:
        raise _OpError(f"index {i} out of range")
    return i


def _insert_index(token: str, n: int) -> int:
    if token == "-":
        return n
    if (
        not _is_index(token)
        or (len(token) > 1 and token[0] == "0")
        or len(token) > 18
        or int(token) > n
    ):
        raise _OpError(f"index {token[:20]!r} out of range")
    return int(token)


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
    lst: list[Any], tp: Any, kind: str, token: str, op: dict[str, Any], path: str, limits: Limits
) -> Any:
    n = len(lst)
    if kind == "add":
        i = _insert_index(token, n)
        target = pointer.join(path, i)
        value = validate(child_type(tp, token), op["value"], limits, target)
        sent = op["value"]
        return _then_echo(lambda: lst.insert(i, value), target, value, sent)
    i = _index(token, n)
    target = pointer.join(path, i)
    if kind == "remove":
        return lambda echo: (lst.pop(i), echo.__setitem__(target, MISSING))
    value = validate(child_type(tp, token), op["value"], limits, target)
    sent = op["value"]

    def replace(echo: dict[str, Any]) -> None:
        lst[i] = value
        _echo(echo, target, value, sent)

    return replace


def _plan_dict(
    d: dict[Any, Any], tp: Any, kind: str, token: str, op: dict[str, Any], path: str, limits: Limits
) -> Any:
    key = _key(d, tp, token)
    target = pointer.join(path, token)
    if kind in ("remove", "replace") and key not in d:
        raise _OpError(f"no member {token!r}")
    if kind == "remove":
        return lambda echo: (d.pop(key), echo.__setitem__(target, MISSING))
    value = validate(child_type(tp, token), op["value"], limits, target)
    sent = op["value"]

    def put(echo: dict[str, Any]) -> None:
        d[key] = value
        _echo(echo, target, value, sent)

    return put


def _plan_model(
    model: Any, kind: str, token: str, op: dict[str, Any], path: str, limits: Limits
) -> Any:
    attr = _model_attr(model, token)
    if kind == "remove":
        raise _OpError(f"field {token!r} cannot be removed")
    target = pointer.join(path, token)
    value = validate(_field_type(model, attr), op["value"], limits, target)
    sent = op["value"]
    return _then_echo(lambda: setattr(model, attr, value), target, value, sent)


def _apply_on_copy(sync: Sync, parsed: list[_Op], limits: Limits) -> dict[str, Any]:
    obj = sync.obj
    errors: list[dict[str, Any]] = []
    touched: dict[str, str] = {}
    for i, p in enumerate(parsed):
        for head in (p.tokens[0], *(p.source[:1] if p.source else ())):
            attr, reason = writable_attribute(sync, head)
            if attr is None:
                errors.append({"op": i, "path": p.op["path"], "msg": reason})
            else:
                touched[head] = attr
    if errors:
        raise ClientWriteError(f"_PATCH rejected: {len(errors)} error(s)", errors)
    # the client's view: fields the model serializes its own way, as it does
    before = {head: attribute_json(obj, attr, getattr(obj, attr)) for head, attr in touched.items()}
    doc = _Document(dict(before), limits.max_copy_nodes)
    for i, p in enumerate(parsed):
        try:
            doc.apply(p)
        except _OpError as e:
            error = {"op": i, "path": e.path or p.op["path"], "msg": e.message}
            raise ClientWriteError("_PATCH rejected", [error]) from None
    planned = []
    for head, attr in touched.items():
        result = doc.root[head]
        if result is before[head] or json_equal(result, before[head]):
            continue
        if doc.copied:  # copies share their values: give the state its own
            result = from_json(to_json(result))
        path = pointer.join("", head)
        try:
            value = validate(attribute_type(obj, attr), result, limits, path)
        except ValidationError as e:
            errors.extend(_errors(e, path))
            continue
        except _OpError as e:
            errors.append({"path": e.path or path, "msg": e.message})
            continue
        planned.append((attr, value, result))
    if errors:
        raise ClientWriteError(f"_PATCH rejected: {len(errors)} error(s)", errors)
    echo_free: dict[str, Any] = {}
    for attr, value, sent in planned:
        setattr(obj, attr, value)
        _echo(echo_free, pointer.join("", sync.attributes[attr]), value, sent)
    return echo_free


class _Document:
    """The touched attributes as JSON, patched op by op.

    A ``copy`` does not copy: the value is shared, and its JSON values are
    counted against a budget (a shared value keeps its count, so copying
    copies of copies walks nothing twice). A write inside a shared container
    first replaces each container on its path by a shallow copy (copy on
    write). So the work of a patch follows its ops and the budget, never the
    size of what it would build, and the attributes as they were (`before`)
    stay untouched for the comparison."""

    def __init__(self, root: dict[str, Any], budget: int) -> None:
        self.root = root
        self.limit = budget
        self.budget = budget
        self.copied = False
        self.shared: dict[int, Any] = {}  # in more than one place: never written
        self.sizes: dict[int, int] = {}  # JSON values under a shared value, once counted
        self.fresh: dict[int, Any] = {}  # copies made here, each in one place
        for value in root.values():
            self._share(value)

    def apply(self, p: _Op) -> None:
        kind, tokens, source, op = p
        if kind == "test":
            if not json_equal(self._get(tokens), op["value"]):
                raise _OpError("test failed")
        elif kind == "add":
            self._add(tokens, self._share(op["value"]))
        elif kind == "replace":
            parent, key = self._slot(tokens)
            parent[key] = self._share(op["value"])
        elif kind == "remove":
            self._remove(tokens)
        elif kind == "move" and source is not None:
            if len(tokens) > len(source) and tokens[: len(source)] == source:
                raise _OpError("a value cannot be moved into itself")
            if tokens == source:
                self._get(source)
                return
            value, from_shared = self._remove(source)
            if from_shared and id(value) not in self.fresh:
                self._share(value)  # its old container's copy may still hold it
            self._add(tokens, value)
        elif kind == "copy" and source is not None:
            value = self._get(source)
            self._charge(value)
            self.copied = True
            self._add(tokens, value)

    def _share(self, value: Any) -> Any:
        if isinstance(value, dict | list):
            self.shared[id(value)] = value
        return value

    def _charge(self, value: Any) -> None:
        """Count the JSON values of `value` against the budget, stopping as soon
        as it is exceeded; `value` is shared from now on."""
        left = self.budget
        n = 0
        stack = [value]
        while stack and n <= left:
            v = stack.pop()
            known = self.sizes.get(id(v))
            if known is not None:
                n += known
                continue
            n += 1
            if isinstance(v, dict | list):
                children = list(v.values()) if isinstance(v, dict) else v
                if n + len(children) > left:  # each child is one value at least
                    n += len(children)
                    break
                self.fresh.pop(id(v), None)  # reachable from the copy too now
                stack.extend(children)
        if n > left:
            raise _OpError(f"the copy ops of this patch make more than {self.limit} JSON values")
        self.budget -= n
        if isinstance(value, dict | list):
            self._share(value)
            self.sizes[id(value)] = n

    def _get(self, tokens: list[str]) -> Any:
        node: Any = self.root
        for token in tokens:
            node = node[_existing(node, token)]
        return node

    def _parent(self, tokens: list[str]) -> tuple[Any, bool]:
        """The container of the target of `tokens`, safe to write: each shared
        container on the way is replaced by a shallow copy, whose children are
        still shared. Also whether the container is such a copy."""
        node: Any = self.root
        below_copy = False
        for token in tokens[:-1]:
            key = _existing(node, token)
            child = node[key]
            if not isinstance(child, dict | list):
                raise _OpError(f"{token!r} is neither an object nor an array")
            if id(child) in self.shared or (below_copy and id(child) not in self.fresh):
                child = child.copy()
                node[key] = child
                self.fresh[id(child)] = child
                below_copy = True
            else:
                below_copy = id(child) in self.fresh
            node = child
        return node, below_copy

    def _slot(self, tokens: list[str]) -> tuple[Any, Any]:
        parent, _ = self._parent(tokens)
        return parent, _existing(parent, tokens[-1])

    def _add(self, tokens: list[str], value: Any) -> None:
        parent, _ = self._parent(tokens)
        last = tokens[-1]
        if isinstance(parent, dict):
            parent[last] = value
        elif isinstance(parent, list):
            parent.insert(_insert_index(last, len(parent)), value)
        else:
            raise _OpError(f"no container at {last!r}")

    def _remove(self, tokens: list[str]) -> tuple[Any, bool]:
        if len(tokens) == 1:
            raise _OpError("a synced attribute cannot be removed")
        parent, below_copy = self._parent(tokens)
        return parent.pop(_existing(parent, tokens[-1])), below_copy


def _existing(node: Any, token: str) -> Any:
    """The key or index `token` names in `node`, which must hold it."""
    if isinstance(node, dict):
        if token not in node:
            raise _OpError(f"no member {token!r}")
        return token
    if isinstance(node, list):
        return _index(token, len(node))
    raise _OpError(f"no member {token!r}: not an object or array")
