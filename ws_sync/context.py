"""The current session of a task, so objects created inside it can find it."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

session_context: ContextVar[Any] = ContextVar("session_context")
"""Per-task current `Session`; synced objects created while it is set belong to it."""
