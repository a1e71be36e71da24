"""Who is on the other end of a connection: the principal of its session.

``sync_endpoint(..., authenticate=fn)`` calls ``fn(websocket)`` (sync or
async) before the handshake is accepted; it reads what it needs (cookies,
headers, the query) and returns a principal: a string, or any object with a
stable ``identity`` (Starlette's ``SimpleUser`` has one). ``None`` (or an
empty identity) refuses the connection: the server answers 403 and no
session is made. Without ``authenticate``, the user of Starlette's
``AuthenticationMiddleware`` (``scope["user"]``) is the principal when it is
authenticated; anonymous connections stay unbound, as without any sign-in.
A plain function runs on the event loop, as a dependency of the handshake:
make it ``async`` if it waits on I/O (a database, a token service).

A session keeps its principal as ``session.user``. User sessions are kept in
their principal's namespace (`ws_sync.registry`), so ids presented by someone
else never reach them; permissions (`ws_sync.permissions`) ask it.

Refusals are written to the ``ws_sync.audit`` logger as structured records:
each carries ``record.audit``, a dict with the ``event``, the ``principal``
(its identity, None when unbound) and where it happened (``key``, ``path``,
``method``, ``address``...), never a payload value. Events: "handshake
refused", "session ids of another principal", "action refused", "task
refused", "write refused", "read refused", and "revoked" (at INFO).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.websockets import WebSocket

from .connection import CLOSE_POLICY
from .context import session_context

Authenticate = Callable[[WebSocket], Any | Awaitable[Any]]
"""``authenticate(websocket) -> principal | None``, sync or async."""

audit_logger = logging.getLogger("ws_sync.audit")


def identity(principal: Any) -> str | None:
    """The stable name of `principal` (itself for a string, else its
    ``identity``); None for no principal or an empty identity."""
    if principal is None:
        return None
    if isinstance(principal, str):
        value: Any = principal
    else:
        try:
            value = principal.identity
        except (AttributeError, NotImplementedError):
            return None
    if value is None:
        return None
    text = str(value)
    return text or None


def middleware_user(ws: WebSocket) -> Any:
    """``scope["user"]`` of `AuthenticationMiddleware` if authenticated, else None."""
    user = ws.scope.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user


async def principal_of(ws: WebSocket, authenticate: Authenticate | None) -> Any:
    """The principal of a connection: what `authenticate` returns (awaited
    if need be), or the signed-in user of the middleware without it."""
    if authenticate is None:
        return middleware_user(ws)
    if inspect.iscoroutinefunction(authenticate):
        return await authenticate(ws)
    made = authenticate(ws)
    if inspect.isawaitable(made):
        made = await made
    return made


def current_user() -> Any:
    """The principal of the current session (None when unbound or outside one)."""
    session = session_context.get(None)
    return getattr(session, "user", None)


def audit(event: str, principal: Any, *, level: int = logging.WARNING, **where: Any) -> None:
    """One structured audit record: `event`, the principal's identity, and
    where (key, path, action, address...). Never pass payload values here."""
    if not audit_logger.isEnabledFor(level):
        return
    record = {"event": event, "principal": identity(principal), **where}
    detail = " ".join(f"{k}={v!r}" for k, v in record.items() if k != "event")
    audit_logger.log(level, "%s %s", event, detail, extra={"audit": record})


async def revoke(principal: Any, message: str | None = "Signed out") -> int:
    """Close every session of `principal` (a principal or its identity) in
    the deployment, with their connections, and drop them from their
    registries: for a logout or a banned user. The clients get `_DISCONNECT`
    with `message` and stay away.

    Returns how many sessions were closed here, in this event loop (the
    server's). With the Redis backplane the other workers close theirs when
    the revocation reaches them, a moment later (not counted), and the
    principal's stored sessions are deleted before this returns, so that no
    worker resumes one: a client coming back with old ids gets a fresh
    session. Raises `ws_sync.backplane.RevokeIncomplete` if Redis is
    unreachable (this worker's sessions are closed all the same)."""
    from . import backplane

    name = identity(principal)
    if name is None:
        return 0
    return await backplane.current().revoke(name, message)


async def close_sessions_of(name: str, message: str | None) -> int:
    """Close this event loop's sessions of the principal `name` (the local
    part of `revoke`); how many."""
    return len(await end_sessions(name, message))


async def end_sessions(name: str, message: str | None) -> set[Any]:
    """Close this event loop's sessions of the principal `name`, audited as
    "revoked"; the sessions closed."""
    from . import registry, session

    loop = asyncio.get_running_loop()
    ended = {
        s
        for s, made_in in list(session._live.items())
        if made_in is loop and not s.closed and identity(s.user) == name
    }
    for r in list(registry._live):
        r.discard(ended)
    await asyncio.gather(
        *(s.close(message, code=CLOSE_POLICY) for s in ended), return_exceptions=True
    )
    audit("revoked", name, level=logging.INFO, sessions=len(ended))
    return ended


def stored_user(name: str, user_id: str) -> str:
    """The user id a session of the principal `name` is stored under in a
    backplane: the identity, percent-encoded so that it holds no ``/`` or
    ``:``, then the client's id. No two principals share a prefix."""
    return f"{quote(name, safe='@')}/{user_id}"
