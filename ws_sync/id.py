"""Upstream's module of the user-session handshake, kept for its import path.

The handshake itself is `ws_sync.registry.get_user_session`. Upstream raised
these two errors inside it; they are here for code that names them.
"""

from __future__ import annotations

from typing import Any

from .registry import HandshakeError, get_user_session


class InvalidUserSessionMessageError(HandshakeError):
    """The client answered the handshake with another event than `_USER_SESSION`."""

    def __init__(self, wrong_message: Any) -> None:
        super().__init__(f"Client sent wrong message type: {wrong_message}")


class InvalidUserSessionError(HandshakeError):
    """The client's `_USER_SESSION` lacked a user or session id."""

    def __init__(self, wrong_message: Any) -> None:
        super().__init__(f"Client sent invalid user or session: {wrong_message}")


__all__ = ["InvalidUserSessionError", "InvalidUserSessionMessageError", "get_user_session"]
