"""Sessions that outlive a connection: the user-session handshake and a registry.

On a new connection the server sends `_REQUEST_USER_SESSION`; the client
answers `_USER_SESSION {"user", "session"}` with ids it keeps (user id in local
storage, session id in session storage). A client that comes back with the
same ids resumes its `Session`, objects and running tasks, and gets `_SET` for
each object. Sessions left idle (no connection) for `ttl` seconds are closed
and dropped, and at most `max_sessions` are kept, so memory stays bounded.

The ids are chosen by the client: on their own they are a bearer token for
the session. A session bound to a principal (`ws_sync.auth`) is kept in that
principal's namespace: the same ids presented by anyone else open a fresh
session of their own and never reach it (the attempt goes to the audit log).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import weakref
from collections.abc import Awaitable, Callable, Container, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from starlette.websockets import WebSocket

from . import wire
from .auth import audit
from .connection import CLOSE_GOING_AWAY, CLOSE_POLICY, Connection, Frame, FrameRejected
from .hello import held_versions
from .protocol import ProtocolError, error_frame, parse
from .session import Session

logger = logging.getLogger("ws_sync")

Ids = tuple[str, str]
Key = tuple[str, ...]
"""A session's place in a registry: its `Ids`, and its principal's identity
after them when it has one."""

ID_PATTERN = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
"""A safe user or session id: 1-128 characters, letters, digits and ``._:@-``
(UUIDs and hex ids, as the JS client makes them, fit)."""

MAX_EARLY_FRAMES = 64
"""Frames a client may send before answering the handshake; kept and handled after it."""


class HandshakeError(Exception):
    """The client did not answer `_REQUEST_USER_SESSION` correctly or in time."""


class RegistryFull(Exception):
    """No room for another session: every kept session is connected."""


def valid_id(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


async def handshake(conn: Connection, timeout: float | None = None) -> Ids:
    """Ask for the client's (user, session) ids. Frames that arrive first are
    put back to be handled after the session is found. Raises `HandshakeError`."""
    ids = await opening(conn, timeout, ids=True)
    assert ids is not None
    return ids


async def opening(
    conn: Connection, timeout: float | None = None, *, ids: bool = True, hello: bool = False
) -> Ids | None:
    """The opening exchange: the user-session ids (`ids`) and the protocol-2
    `_HELLO` (`hello`), answered at once, in whichever order they come.
    Other frames are put back, to be handled once the session is there."""
    conn.start()
    if ids:
        conn.push(wire.encode(wire.REQUEST_USER_SESSION))
    found: Ids | None = None
    early: list[Frame] = []
    try:
        async with asyncio.timeout(
            timeout if timeout is not None else conn.limits.handshake_timeout
        ):
            while (ids and found is None) or (hello and conn.protocol < wire.PROTOCOL):
                try:
                    frame = await conn.receive()
                except FrameRejected as e:
                    raise HandshakeError(e.message) from None
                if frame is None:
                    raise HandshakeError("the client left during the handshake")
                event, data = _event(conn, frame)
                if event == wire.USER_SESSION and ids and found is None:
                    found = _ids(data)
                elif event == wire.HELLO and hello and conn.protocol < wire.PROTOCOL:
                    conn.greet(held_versions(data))
                else:
                    early.append(frame)
                    if len(early) > MAX_EARLY_FRAMES:
                        raise HandshakeError("too many frames before _USER_SESSION")
    except TimeoutError:
        missing = "_USER_SESSION" if ids and found is None else "_HELLO"
        raise HandshakeError(f"no {missing} in time") from None
    conn.unread(early)
    return found


def _event(conn: Connection, frame: Frame) -> tuple[str, Any]:
    if not isinstance(frame, str):
        return "", None
    try:
        event, data, _ = parse(frame, conn.limits.max_depth)
    except ProtocolError:
        return "", None
    return event, data


def _ids(data: Any) -> Ids:
    if not isinstance(data, dict):
        raise HandshakeError("_USER_SESSION data must be {user, session}")
    user, session = data.get("user"), data.get("session")
    if not valid_id(user) or not valid_id(session):
        raise HandshakeError(
            "user and session must be 1-128 characters of letters, digits and ._:@-"
        )
    return user, session


async def get_user_session(
    ws: WebSocket, timeout: float = 10.0
) -> tuple[str, str] | tuple[None, None]:
    """The client's (user, session) ids, or (None, None) after closing the
    connection if it did not answer correctly. Accepts `ws` if needed."""
    conn = Connection.of(ws)
    await conn.accept()
    try:
        return await handshake(conn, timeout)
    except HandshakeError as e:
        await reject(conn, str(e))
        return None, None


async def reject(conn: Connection, message: str) -> None:
    """`_ERROR` about the handshake, then close with 1008 (policy violation)."""
    conn.push(error_frame(wire.USER_SESSION, message))
    await conn.close(CLOSE_POLICY, "handshake failed")


@dataclass(eq=False)
class _Entry:
    session: Session
    address: str = ""
    idle_since: float | None = None
    expiry: asyncio.TimerHandle | None = None
    users: int = 0


def key_of(ids: Ids, owner: str | None = None) -> Key:
    """Where the session of `ids` is kept: under its principal's identity."""
    return ids if owner is None else (*ids, owner)


def _owner(key: Key) -> str | None:
    return key[2] if len(key) > 2 else None


@dataclass(eq=False)
class SessionRegistry:
    """Sessions by (user, session) id and principal, expiring `ttl` seconds
    after their last connection ends.

    At most `max_sessions` are kept, and at most `max_sessions_per_address`
    made from one client address. A new session over its address's cap
    replaces that address's least recently used idle session; one over the
    global cap, the least recently used idle session of all. One address
    therefore never holds more than its share, and cannot push everyone
    else's sessions out.

    `owner` is the identity of the session's principal (`ws_sync.auth`): a
    session is found only with the ids *and* the owner it was made for."""

    ttl: float = 3600.0
    max_sessions: int = 10_000
    max_sessions_per_address: int = 100
    _entries: dict[Key, _Entry] = field(default_factory=dict, init=False, repr=False)
    _creating: dict[Key, asyncio.Future[Session]] = field(default_factory=dict, init=False)
    _by_address: dict[str, dict[Key, None]] = field(default_factory=dict, init=False, repr=False)
    _holders: dict[Ids, dict[Key, None]] = field(default_factory=dict, init=False, repr=False)
    _closing: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        _live.add(self)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, ids: Ids, owner: str | None = None) -> Session | None:
        entry = self._entries.get(key_of(ids, owner))
        return entry.session if entry else None

    async def open(
        self,
        ids: Ids,
        create: Callable[[], Awaitable[Session]],
        address: str = "",
        owner: str | None = None,
    ) -> Session:
        """The session for `ids` of `owner`, resumed or made by `create()` for
        a client at `address`; pair every call with `release` once its
        connection has ended."""
        key = key_of(ids, owner)
        entry = self._entries.get(key)
        if entry is not None and entry.session.closed:  # closed by the app: start afresh
            self._drop(key, entry)
            entry = None
        if entry is None:
            pending = self._creating.get(key)
            if pending is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pending)  # made by another connection: share it
                return await self.open(ids, create, address, owner)
            self._foreign(ids, key, address)
            self._make_room(address)
            future: asyncio.Future[Session] = asyncio.get_running_loop().create_future()
            self._creating[key] = future
            own = self._by_address.setdefault(address, {})
            own[key] = None  # counts while being made
            try:
                session = await create()
            except BaseException as e:
                self._forget(key, address)
                future.set_exception(e)
                future.exception()  # retrieved: waiters retry on their own
                raise
            finally:
                del self._creating[key]
            entry = self._entries[key] = _Entry(session, address)
            self._holders.setdefault(ids, {})[key] = None
            future.set_result(session)
        if entry.expiry is not None:
            entry.expiry.cancel()
            entry.expiry = None
        entry.idle_since = None
        entry.users += 1
        return entry.session

    def _foreign(self, ids: Ids, key: Key, address: str) -> None:
        """Ids of another principal's session: audited; the caller gets its own."""
        held = next((k for k in self._holders.get(ids, ()) if k != key), None)
        if held is not None:
            audit(
                "session ids of another principal",
                _owner(key),
                holder=_owner(held),
                address=address,
            )

    def release(self, ids: Ids, session: Session, owner: str | None = None) -> None:
        """A connection of the session ended: start its idle clock if it has
        no other connection."""
        key = key_of(ids, owner)
        entry = self._entries.get(key)
        if entry is None or entry.session is not session:
            return
        entry.users -= 1
        if entry.users > 0 or session.is_connected:
            return
        entry.idle_since = time.monotonic()
        loop = asyncio.get_running_loop()
        entry.expiry = loop.call_later(self.ttl, self._expire, key, entry)

    def _expire(self, key: Key, entry: _Entry) -> None:
        if self._entries.get(key) is entry and entry.users <= 0:
            self._drop(key, entry)

    def _forget(self, key: Key, address: str) -> None:
        own = self._by_address.get(address)
        if own is not None:
            own.pop(key, None)
            if not own:
                del self._by_address[address]
        ids = (key[0], key[1])
        holders = self._holders.get(ids)
        if holders is not None and key in holders:
            del holders[key]
            if not holders:
                del self._holders[ids]

    def _remove(self, key: Key) -> _Entry | None:
        """Take a session out of the registry (its close is the caller's)."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._forget(key, entry.address)
            if entry.expiry is not None:
                entry.expiry.cancel()
        return entry

    def _drop(self, key: Key, entry: _Entry) -> None:
        self._remove(key)
        task = asyncio.get_running_loop().create_task(entry.session.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        logger.debug("session %s dropped", "/".join(key))

    def _make_room(self, address: str) -> None:
        own = self._by_address.get(address, {})
        if len(own) >= self.max_sessions_per_address:
            self._drop_idle(own, f"{self.max_sessions_per_address} sessions of this address")
        if len(self._entries) + len(self._creating) >= self.max_sessions:
            self._drop_idle(self._entries, f"{self.max_sessions} sessions")

    def _drop_idle(self, among: Iterable[Key], what: str) -> None:
        """Drop the least recently used idle session `among` these keys."""
        entries = self._entries
        idle = [
            (entry.idle_since, key)
            for key in among
            if (entry := entries.get(key)) is not None and entry.idle_since is not None
        ]
        if not idle:
            raise RegistryFull(f"{what} are in use")
        _, oldest = min(idle)
        self._drop(oldest, entries[oldest])

    def discard(self, sessions: Container[Session]) -> None:
        """Take these sessions out of the registry; closing them is the
        caller's (`ws_sync.auth.revoke`)."""
        for key in [k for k, entry in self._entries.items() if entry.session in sessions]:
            self._remove(key)

    async def close(
        self, ids: Key | None = None, *, code: int = CLOSE_GOING_AWAY, grace: float | None = None
    ) -> None:
        """Close one session (its ids, and its owner after them if it has one)
        or all of them, at shutdown, now; `code` and `grace` as in
        `Session.close`. The closes go on if this is cancelled."""
        targets = [ids] if ids is not None else list(self._entries)
        loop = asyncio.get_running_loop()
        for key in targets:
            entry = self._remove(key)
            if entry is None:
                continue
            task = loop.create_task(entry.session.close(code=code, grace=grace))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        if self._closing:
            await asyncio.wait(self._closing)


_live: weakref.WeakSet[SessionRegistry] = weakref.WeakSet()
"""Every registry, for a server shutdown to close their sessions (`ws_sync.lifespan`)."""
