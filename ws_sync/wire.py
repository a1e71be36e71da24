"""Envelope encoding and event names of the wire protocol (see docs/protocol.md)."""

from __future__ import annotations

from typing import Any

from pydantic_core import from_json, to_json

from .serialize import NOT_FINITE, fallback, unsafe_number


class NonJSONValue(ValueError):
    """A frame would carry NaN or Infinity, which are not JSON (RFC 8259): a
    browser's parser drops the whole frame. `path` points at the value inside
    the frame's data, when it could be found."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


def encode(event: str, data: Any = None) -> str:
    """One text frame. Raw values (models, tracked containers) serialize here,
    once. Raises `NonJSONValue` rather than write NaN or Infinity."""
    return _encode({"type": event, "data": data}, event)


def encode_with(event: str, data: Any, **fields: Any) -> str:
    """A frame with top-level fields beside type and data (``"v"``, ``"ack"``)."""
    return _encode({"type": event, "data": data, **fields}, event)


def _encode(envelope: dict[str, Any], event: str) -> str:
    out = to_json(envelope, by_alias=True, fallback=fallback).decode()
    # a letter is found at memchr speed, a word is not: the word is looked for
    # only where its first letter occurs at all, the frame parsed only on a hit
    if ("N" in out and "NaN" in out) or ("I" in out and "Infinity" in out):
        _check(event, out)
    return out


def _check(event: str, out: str) -> None:
    try:
        from_json(out, allow_inf_nan=False)
    except ValueError:
        found = unsafe_number(from_json(out)["data"])
        path = found[0] if found else None
        where = "" if path is None else f" at {path!r}"
        raise NonJSONValue(f"{event}: a value{where} is not JSON ({NOT_FINITE})", path) from None


def set_event(key: str) -> str:
    return f"_SET:{key}"


def get_event(key: str) -> str:
    return f"_GET:{key}"


def patch_event(key: str) -> str:
    return f"_PATCH:{key}"


def action_event(key: str) -> str:
    return f"_ACTION:{key}"


def action_result_event(key: str) -> str:
    return f"_ACTION_RESULT:{key}"


def task_start_event(key: str) -> str:
    return f"_TASK_START:{key}"


def task_cancel_event(key: str) -> str:
    return f"_TASK_CANCEL:{key}"


def task_progress_event(key: str) -> str:
    return f"_TASK_PROGRESS:{key}"


def task_done_event(key: str) -> str:
    return f"_TASK_DONE:{key}"


TOAST = "_TOAST"
DOWNLOAD = "_DOWNLOAD"
BIN_META = "_BIN_META"
DISCONNECT = "_DISCONNECT"
ERROR = "_ERROR"
REQUEST_USER_SESSION = "_REQUEST_USER_SESSION"
USER_SESSION = "_USER_SESSION"
HELLO = "_HELLO"
PING = "_PING"
PONG = "_PONG"

PROTOCOL = 2
"""The newest protocol this server speaks: 2 adds versions, acks and resume.
A client asks for it with ``?ws_sync=2`` on the URL and a `_HELLO` frame."""
