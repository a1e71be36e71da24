"""Turning state into JSON: pydantic_core does the work, this decides the edge cases."""

from __future__ import annotations

from typing import Any

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
