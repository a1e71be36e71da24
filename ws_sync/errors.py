"""What a client is told when handling its event failed.

Errors about the client's own input (bad params, a rejected write, a task that
cannot start) are always described. Any other exception is the app's: its text
goes to the client only while the session exposes errors (the default, handy in
development); with ``expose_errors=False`` the client reads "internal error"
and only the server log has the details.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .actions import ParamsError
from .protocol import validation_errors
from .validation import ClientWriteError

HIDDEN = "internal error"


class TaskError(Exception):
    """A task could not be started or cancelled (e.g. it is already running)."""


def describe(e: Exception, expose: bool = True) -> str:
    if isinstance(e, ParamsError | ClientWriteError):
        return e.message
    if isinstance(e, ValidationError):
        return f"validation failed: {e.error_count()} error(s)"
    if not expose and not isinstance(e, TaskError):
        return HIDDEN
    return str(e) or type(e).__name__


def errors_of(e: Exception) -> list[dict[str, Any]]:
    if isinstance(e, ParamsError | ClientWriteError):
        return e.errors
    if isinstance(e, ValidationError):
        return validation_errors(e)
    return []
