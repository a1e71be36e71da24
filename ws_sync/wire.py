"""Envelope encoding and event names of the wire protocol (see PROTOCOL.md)."""

from __future__ import annotations

from typing import Any

from pydantic_core import to_json

from .serialize import fallback


def encode(event: str, data: Any = None) -> str:
    """One text frame. Raw values (models, tracked containers) serialize here, once."""
    return to_json({"type": event, "data": data}, by_alias=True, fallback=fallback).decode()


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
