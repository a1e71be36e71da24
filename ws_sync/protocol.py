"""Inbound envelopes and `_ERROR` replies (see docs/protocol.md).

Every text frame must be ``{"type": str, "data": any}``. Anything else is
answered with `_ERROR` and dropped; the connection stays open.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json

from . import wire
from .limits import too_deep

INVALID = "_INVALID"
"""The `event` of an `_ERROR` about a frame whose type is unknown or absent."""


class ProtocolError(Exception):
    """A client event that cannot be handled; becomes one `_ERROR` frame."""

    def __init__(
        self, event: str, message: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.event = event
        self.message = message
        self.errors = errors or []


def parse(text: str, max_depth: int) -> tuple[str, Any, dict[str, Any]]:
    """(type, data, the whole envelope) of one text frame. Depth is checked
    before parsing, so a deeply nested payload never reaches the parser. The
    envelope has the fields beside type and data (a write's ``"$id"`` and
    ``"v"``)."""
    if too_deep(text, max_depth):
        raise ProtocolError(INVALID, f"JSON nested deeper than {max_depth} levels")
    try:
        message = from_json(text, allow_inf_nan=False)
    except ValueError as e:
        raise ProtocolError(INVALID, "frame is not valid JSON", [{"msg": str(e)}]) from None
    if not isinstance(message, dict):
        raise ProtocolError(INVALID, "frame must be a JSON object {type, data}")
    event = message.get("type")
    if not isinstance(event, str):
        raise ProtocolError(INVALID, "frame has no string 'type'")
    return event, message.get("data"), message


# Where the bundled client writes them: the type first, `$id` last (in `data`
# for an action, in the envelope for a write).
_HEAD_TYPE = re.compile(r'\{\s*"type"\s*:\s*"([A-Za-z0-9_]{1,64}:[^"\\]{0,256})"')
_TAIL_ID = re.compile(r'"\$id"\s*:\s*(-?\d{1,16}|"[^"\\]{0,128}")\s*\}\s*\}?\s*$')
_PEEK = 512


def peek(frame: str | bytes) -> tuple[str | None, dict[str, Any]]:
    """(type, ``{"id": $id}``) of a frame that could not be parsed (too big,
    too deep, not JSON), where they can be read cheaply: the type from its
    head, `$id` from its tail. Lets such a frame still get its answer."""
    if not isinstance(frame, str):
        return None, {}
    head = _HEAD_TYPE.match(frame[:_PEEK])
    tail = _TAIL_ID.search(frame[-_PEEK:])
    call = {"id": from_json(tail.group(1))} if tail else {}
    return (head.group(1) if head else None), call


def error_frame(
    event: str, message: str, errors: list[dict[str, Any]] | None = None, **extra: Any
) -> str:
    return wire.encode(
        wire.ERROR, {"event": event, "message": message, "errors": errors or [], **extra}
    )


MAX_LISTED = 100
"""Errors listed in one `_ERROR`; past it the rest are counted, not listed, so
refusing a frame costs no more than accepting it."""


def capped(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most `MAX_LISTED` errors, then one that counts the others."""
    if len(errors) <= MAX_LISTED:
        return errors
    rest = len(errors) - MAX_LISTED
    return [*errors[:MAX_LISTED], {"msg": f"and {rest} more errors", "type": "too_many_errors"}]


def too_many(count: int) -> list[dict[str, Any]] | None:
    """One error standing for `count` of them, when listing them would cost
    more than the frame did (pydantic builds every one it reports)."""
    if count <= MAX_LISTED:
        return None
    return [{"msg": f"{count} errors (too many to list)", "type": "too_many_errors"}]


def validation_errors(e: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors without the input (it may be large, or not JSON) or URLs."""
    summary = too_many(e.error_count())
    if summary is not None:
        return summary
    return [
        {"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
        for err in e.errors(include_url=False, include_context=False, include_input=False)
    ]
