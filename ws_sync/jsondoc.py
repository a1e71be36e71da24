"""RFC 6902 ops onto a plain JSON document, in place.

A worker keeps each shared object's committed state as such a document, and
applies every commit to it. The ops were made by ws-sync itself, so there is
nothing to validate against a model and no copy to take: this costs what the
change does. (Ops from browsers go through `ws_sync.validation` instead.)
"""

from __future__ import annotations

import copy
from typing import Any

from .pointer import is_index, split

Op = dict[str, Any]


class PatchError(ValueError):
    """An op that does not apply to the document."""


def apply(doc: Any, ops: list[Op]) -> Any:
    """`ops` applied to `doc`, changed in place; the result (another object
    only if an op replaced the whole document). On `PatchError` the ops
    before the failing one stay applied."""
    for op in ops:
        doc = _apply_op(doc, op)
    return doc


def _apply_op(doc: Any, op: Op) -> Any:
    if not isinstance(op, dict):
        raise PatchError(f"not an op: {op!r}")
    kind = op.get("op")
    path = op.get("path")
    if not isinstance(path, str):
        raise PatchError("an op needs a string 'path'")
    if kind == "add" or kind == "replace" or kind == "test":
        if "value" not in op:
            raise PatchError(f"{kind} needs a 'value'")
        value = op["value"]
        if kind == "test":
            if not equal(_get(doc, path), value):
                raise PatchError(f"test failed at {path!r}")
            return doc
        return _put(doc, path, value, insert=kind == "add")
    if kind == "remove":
        _take(doc, path)
        return doc
    if kind == "move" or kind == "copy":
        source = op.get("from")
        if not isinstance(source, str):
            raise PatchError(f"{kind} needs a string 'from'")
        if kind == "copy":
            return _put(doc, path, copy.deepcopy(_get(doc, source)), insert=True)
        if path == source:
            _get(doc, source)
            return doc
        if path.startswith(source + "/"):
            raise PatchError("cannot move a value into itself")
        return _put(doc, path, _take(doc, source), insert=True)
    raise PatchError(f"unknown op {kind!r}")


def _tokens(path: str) -> list[str]:
    try:
        return split(path)
    except ValueError as e:
        raise PatchError(str(e)) from None


def _index(container: list[Any], token: str, end: int) -> int:
    """An array index (RFC 6901: no leading zeros) up to `end`."""
    if not is_index(token) or (token[0] == "0" and token != "0") or int(token) > end:
        raise PatchError(f"no index {token!r} in a list of {len(container)}")
    return int(token)


def _child(node: Any, token: str) -> Any:
    if isinstance(node, dict):
        if token not in node:
            raise PatchError(f"no member {token!r}")
        return node[token]
    if isinstance(node, list):
        return node[_index(node, token, len(node) - 1)]
    raise PatchError(f"{token!r} is inside a scalar")


def _get(doc: Any, path: str) -> Any:
    node = doc
    for token in _tokens(path):
        node = _child(node, token)
    return node


def _parent(doc: Any, path: str) -> tuple[Any, str]:
    tokens = _tokens(path)
    node = doc
    for token in tokens[:-1]:
        node = _child(node, token)
    return node, tokens[-1]


def _put(doc: Any, path: str, value: Any, insert: bool) -> Any:
    if path == "":
        return value
    parent, token = _parent(doc, path)
    if isinstance(parent, dict):
        if not insert and token not in parent:
            raise PatchError(f"no member {token!r} to replace")
        parent[token] = value
    elif isinstance(parent, list):
        if insert:
            if token == "-":
                parent.append(value)
            else:
                parent.insert(_index(parent, token, len(parent)), value)
        else:
            parent[_index(parent, token, len(parent) - 1)] = value
    else:
        raise PatchError(f"{token!r} is inside a scalar")
    return doc


def _take(doc: Any, path: str) -> Any:
    if path == "":
        raise PatchError("cannot remove the whole document")
    parent, token = _parent(doc, path)
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"no member {token!r} to remove")
        return parent.pop(token)
    if isinstance(parent, list):
        return parent.pop(_index(parent, token, len(parent) - 1))
    raise PatchError(f"{token!r} is inside a scalar")


def equal(a: Any, b: Any) -> bool:
    """Equality as RFC 6902's ``test`` means it: 1 equals 1.0 but not true."""
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and len(a) == len(b)
            and all(k in b and equal(v, b[k]) for k, v in a.items())
        )
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b
