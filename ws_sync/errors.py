"""What a client is told when handling its event failed.

Errors about the client's own input (bad params, a rejected write, a task that
cannot start) are always described. Any other exception is the app's: it is
logged with its traceback under a short reference (``ref``), and the client
reads "internal error" plus that reference, which a user can quote and an
operator can grep for. With ``expose_errors=True`` (handy in development) the
client reads the exception's text instead.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .actions import ParamsError
from .protocol import validation_errors
from .validation import ClientWriteError

HIDDEN = "internal error"

logger = logging.getLogger("ws_sync")


class TaskError(Exception):
    """A task could not be started or cancelled (e.g. it is already running)."""


_CLIENTS_OWN = (ParamsError, ClientWriteError, ValidationError, TaskError)


@dataclass(frozen=True)
class Failure:
    """One failure as the client reads it."""

    message: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    ref: str | None = None

    @property
    def extra(self) -> dict[str, Any]:
        """Fields beyond message and errors, for an `_ERROR` frame."""
        return {"ref": self.ref} if self.ref is not None else {}

    def result_error(self) -> dict[str, Any]:
        """The ``error`` object of a failed `_ACTION_RESULT`."""
        error: dict[str, Any] = {"message": self.message}
        if self.errors:
            error["errors"] = self.errors
        if self.ref is not None:
            error["ref"] = self.ref
        return error


def failure(e: Exception, expose: bool = False, context: str = "handler") -> Failure:
    """`e` as the client reads it. An app exception is logged here, with its
    traceback and the reference the client gets."""
    if isinstance(e, _CLIENTS_OWN):
        return Failure(describe(e), errors_of(e))
    ref = secrets.token_hex(4)
    logger.error("%s failed [ref %s]", context, ref, exc_info=e)
    return Failure(describe(e, expose), [], ref)


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
