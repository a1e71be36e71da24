"""The server side of one user session; it outlives its WebSocket connections.

    @app.websocket("/ws")
    async def websocket_endpoint(ws: WebSocket):
        await ws.accept()
        session = Session()   # now the current session of this task
        notes = Notes()       # so this synced object belongs to it
        await session.new_connection(ws)
        await session.handle_connection()

Synced objects register here by key (held weakly: an object nobody references
is collected). On every (re)connection each object with ``send_on_init`` is
sent whole (`_SET`); while no client is connected, syncs send nothing and lose
nothing. A second connection takes over: the first one gets `_DISCONNECT` and
is closed. See `ws_sync.endpoint.sync_endpoint` for a ready-made endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import weakref
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any, Literal

from starlette.websockets import WebSocket

from . import tasks, wire
from .connection import CLOSE_GOING_AWAY, Connection, Frame
from .context import session_context
from .dispatch import Dispatcher
from .invoke import invoke
from .limits import Limits
from .recent import Recent
from .socket import as_starlette
from .sync import Sync, ToastType
from .wire import NonJSONValue

__all__ = ["Session", "SessionState", "session_context"]

Tabs = Literal["auto", "share", "takeover"]
"""What a new connection of a session does to those already open."""

_entered: ContextVar[tuple[Token[Any], ...]] = ContextVar("ws_sync_entered", default=())
"""Tokens of the `with session:` blocks open in this context, innermost last."""

_live: weakref.WeakKeyDictionary[Session, asyncio.AbstractEventLoop | None] = (
    weakref.WeakKeyDictionary()
)
"""Sessions not yet closed, with the event loop each was made in: a server
shutdown closes those of its loop (`ws_sync.lifespan`)."""

LOGGER = logging.getLogger("ws_sync")

_SILENT = logging.Logger("ws_sync.silent")  # not in the logger tree: affects nobody else
_SILENT.disabled = True

TAKEOVER_MESSAGE = (
    "Seems like you're logged in somewhere else. If this is a mistake, please refresh the page."
)


class SessionState:
    """Base for user state attached to a session (``session.state``). Override
    the hooks you need; they run in the session's context."""

    async def on_connect(self) -> None:
        """A connection was established (also after a reconnect or takeover)."""

    async def on_disconnect(self) -> None:
        """The connection ended; the session may still resume."""

    async def on_terminate(self) -> None:
        """The session was closed for good (expired, or closed by the server)."""


class Session:
    """One per user session, across reconnects."""

    def __init__(
        self,
        logger: logging.Logger | None = LOGGER,
        *,
        state: SessionState | None = None,
        limits: Limits | None = None,
        expose_errors: bool = False,
        tabs: Tabs = "auto",
        user: Any = None,
    ) -> None:
        self.logger = logger if logger is not None else _SILENT  # None: silent, as upstream
        self.user: Any = user
        """The principal the session belongs to (`ws_sync.auth`); None when unbound."""
        self.expose_errors = expose_errors
        """Whether a failing handler's exception text reaches the client; by
        default it reads "internal error" and a ref the log has too (see `errors`)."""
        self.state: SessionState | None = state
        """User state; its `on_connect` / `on_disconnect` / `on_terminate` hooks are called."""
        self.limits = limits or Limits()
        self.syncs: weakref.WeakValueDictionary[str, Sync] = weakref.WeakValueDictionary()
        self.event_handlers: dict[str, Callable[..., Any]] = {}
        self.closed = False
        self.tabs = tabs
        """Which connections share the session (see `new_connection`)."""
        self._conns: list[Connection] = []
        self._lock = asyncio.Lock()
        self._kept: list[Any] = []
        self._runs: set[tasks.TaskRun] = set()
        self._calls: Recent | None = None
        self._ended: dict[tuple[str, str], str] | None = None  # see `task_ended`
        self.on_task: Callable[[str, str, bool, Any], None] | None = None
        """Told of each task that starts (with its call id) or ends, by a
        backplane that keeps the session."""
        """Told (object key, task key, running) as tasks start and end, by a
        backplane that keeps the session (`ws_sync.backplane`)."""
        _live[self] = asyncio._get_running_loop()
        session_context.set(self)  # objects built next in this task belong to it

    # ------------------------------------------------------------------ #
    # context

    def __enter__(self) -> Session:
        token = session_context.set(self)
        _entered.set((*_entered.get(), token))  # per task: connections run concurrently
        return self

    def __exit__(self, *exc: object) -> None:
        *outer, token = _entered.get()
        _entered.set(tuple(outer))
        session_context.reset(token)

    # ------------------------------------------------------------------ #
    # synced objects (called by the core's Sync)

    def register(self, sync: Sync) -> None:
        old = self.syncs.get(sync.key)
        if old is not None and old is not sync:
            self.logger.warning("session: key %r registered twice; the newer object wins", sync.key)
        self.syncs[sync.key] = sync
        if sync.send_on_init and self.is_connected:
            sync.flush(exclude=self)  # pending changes are in the _SET for us
            frame = self.state_frame(sync)
            if frame is not None:
                self.send_frame(frame)

    def unregister(self, sync: Sync) -> None:
        if self.syncs.get(sync.key) is sync:
            del self.syncs[sync.key]

    def attach(self, obj: Any) -> Sync:
        """Subscribe this session to a synced object (shared objects have many)."""
        sync = obj if isinstance(obj, Sync) else obj.sync
        sync.attach(self)
        return sync

    def detach(self, obj: Any) -> None:
        sync = obj if isinstance(obj, Sync) else obj.sync
        sync.detach(self)

    def state_frame(self, sync: Sync) -> str | None:
        """`_SET` of `sync`; None while its state holds a value that is not
        JSON (logged: server code put it there; its next good sync sends it)."""
        try:
            return sync.set_frame()
        except NonJSONValue:
            self.logger.exception("%s: state not sent", sync.key)
            return None

    def _initial(self, sync: Sync, conn: Connection) -> list[str]:
        """What a new connection gets of `sync`: the whole state, or, for a
        versioned client that holds an older version, the commits it missed,
        then the last progress of its running tasks (no "idle" flash)."""
        if conn.protocol < wire.PROTOCOL:
            frame = self.state_frame(sync)
            return ([] if frame is None else [frame]) + self._missed(sync)
        try:
            frames = sync.resume_frames(conn.versions.get(sync.key))
        except NonJSONValue:
            self.logger.exception("%s: state not sent", sync.key)
            frames = []
        progress = [run.progress_frame() for run in tasks.running(sync).values()]
        return frames + [frame for frame in progress if frame is not None] + self._missed(sync)

    def task_ended(self, key: str, task: str, frame: str) -> None:
        """A task of object `key` ended while this session had no connection:
        its `_TASK_DONE` frame waits for the next one (the last per task)."""
        if self._ended is None:
            self._ended = {}
        self._ended[(key, task)] = frame

    def _missed(self, sync: Sync) -> list[str]:
        """The `_TASK_DONE` frames of `sync`'s tasks that ended while away, so a
        client does not keep showing them as running."""
        ended = self._ended
        if not ended:
            return []
        mine = [k for k in ended if k[0] == sync.key]
        return [ended.pop(k) for k in mine]

    @property
    def calls(self) -> Recent:
        """Ids of protocol-2 actions and task starts handled, with their answers."""
        if self._calls is None:
            self._calls = Recent()
        return self._calls

    def flush_pending(self) -> None:
        """Send what a handler changed but did not sync (it raised first, or
        forgot). Objects throttled by ``sync(if_since_last=...)`` keep their
        timer."""
        for sync in list(self.syncs.values()):
            if sync.throttled:
                continue
            try:
                sync.flush()
            except Exception:
                self.logger.exception("%s: sending changes after a handler failed", sync.key)

    def keep(self, *objs: Any) -> None:
        """Hold objects for as long as the session lives (syncs are held weakly)."""
        self._kept.extend(objs)

    # ------------------------------------------------------------------ #
    # outbound

    @property
    def is_connected(self) -> bool:
        return any(not conn.closing for conn in self._conns)

    @property
    def connection(self) -> Connection | None:
        """The newest connection (a session may have several tabs)."""
        return self._conns[-1] if self._conns else None

    @property
    def connections(self) -> list[Connection]:
        return list(self._conns)

    @property
    def ws(self) -> Any:
        """The newest WebSocket, if connected (as given: a `send_json`-shaped
        socket stays itself)."""
        if not self._conns:
            return None
        ws = self._conns[-1].ws
        return getattr(ws, "inner", ws)

    @ws.setter
    def ws(self, ws: Any) -> None:
        """Upstream's way to hand over an accepted socket: it replaces the
        connections (closed without `_DISCONNECT`) and gets what is synced
        from now on, without a `_SET`; None disconnects."""
        old, self._conns = self._conns, []
        for conn in old:
            conn.close_soon()
        if ws is None:
            return
        conn = Connection.of(as_starlette(ws, accepted=True), self.limits)
        self._conns.append(conn)
        if asyncio._get_running_loop() is not None:
            conn.start()

    def send_frame(self, frame: str) -> None:
        """Queue one frame for every connection; dropped when not connected."""
        for conn in self._conns:
            conn.push(frame)

    def send_frames(self, frames: list[Frame]) -> None:
        """Queue frames back to back (a `_BIN_META` and its bytes)."""
        for conn in self._conns:
            conn.push_many(frames)

    async def send(self, event: str, data: Any = None) -> None:
        self.send_frame(wire.encode(event, data))

    async def send_binary(self, event: str, metadata: dict[str, Any], data: bytes) -> None:
        """`_BIN_META` then the bytes; the client hands ``{data, ...metadata}``
        to its handler for `event`."""
        meta = wire.encode(wire.BIN_META, {"type": event, "metadata": metadata})
        self.send_frames([meta, data])

    async def send_action(self, key: str, action: dict[str, Any]) -> None:
        """Ask the client to run its handler for ``action["type"]`` on object `key`."""
        self.send_frame(wire.encode(wire.action_event(key), action))

    async def toast(self, *messages: Any, type: ToastType = "default") -> str:
        """A notification for this session only; returns the text."""
        text = " ".join(str(m) for m in messages)
        self.send_frame(wire.encode(wire.TOAST, {"type": type, "message": text}))
        return text

    async def download(self, filename: str, data: bytes) -> None:
        """A file for this session's browser to save."""
        payload = {"filename": filename, "data": base64.b64encode(data).decode()}
        self.send_frame(wire.encode(wire.DOWNLOAD, payload))

    # ------------------------------------------------------------------ #
    # custom events

    def register_event(self, event: str, callback: Callable[..., Any]) -> None:
        """Handle a custom client event: ``callback(data)``, awaited in order."""
        self.event_handlers[event] = callback

    def deregister_event(self, event: str) -> None:
        self.event_handlers.pop(event, None)

    # ------------------------------------------------------------------ #
    # connections

    async def new_connection(self, ws: WebSocket | Connection) -> None:
        """Add `ws` to this session (accepting it if needed); every object with
        send_on_init gets its state (`_SET`, or what a versioned client missed).

        Connections already open either stay (several tabs of one session,
        each getting every patch) or are told `_DISCONNECT` and closed
        (takeover, upstream's behaviour), by `tabs`: "share" keeps them all,
        "takeover" keeps the newest, "auto" (the default) shares among
        protocol-2 connections and takes over otherwise."""
        if self.closed:
            raise RuntimeError("session is closed")
        ws = ws if isinstance(ws, Connection) else as_starlette(ws)
        conn = ws if isinstance(ws, Connection) else Connection.of(ws, self.limits)
        await conn.accept()
        conn.start()
        async with self._lock:
            if conn in self._conns:
                return
            for old in self._conns if not self._shares(conn) else []:
                self._conns.remove(old)
                old.close_soon(message=TAKEOVER_MESSAGE)
                await self._hook("on_disconnect")
            # Made while not connected: changes pending from before go to the
            # other subscribers only; this client gets them inside the _SET.
            frames = [self._initial(s, conn) for s in list(self.syncs.values()) if s.send_on_init]
            self._conns.append(conn)
            for batch in frames:
                for frame in batch:
                    conn.push(frame)
            await self._hook("on_connect")

    def _shares(self, conn: Connection) -> bool:
        if self.tabs == "share":
            return True
        if self.tabs == "takeover":
            return False
        versioned = wire.PROTOCOL
        return conn.protocol >= versioned and all(c.protocol >= versioned for c in self._conns)

    async def handle_connection(self, ws: WebSocket | Connection | None = None) -> None:
        """Receive and handle events until the connection ends (the client
        leaves, it is taken over, or it is closed for being too slow)."""
        if ws is not None:
            ws = ws if isinstance(ws, Connection) else as_starlette(ws)
            await self.new_connection(ws)
            conn = ws if isinstance(ws, Connection) else Connection.of(ws, self.limits)
        elif self._conns:
            conn = self._conns[-1]
        else:
            raise RuntimeError("no connection: call new_connection(ws) first")
        conn.bind_reader()
        dispatcher = Dispatcher(self, conn)
        with self:
            try:
                await self._receive_loop(conn, dispatcher)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not conn.reader_cancelled or task is None or task.uncancel() > 0:
                    raise
            finally:
                await self._connection_ended(conn)

    async def _receive_loop(self, conn: Connection, dispatcher: Dispatcher) -> None:
        while not conn.closing:
            frame = await dispatcher.receive()
            if frame is None or conn.closing:
                return
            try:
                await dispatcher.frame(frame)
            except Exception:
                self.logger.exception("session: error while handling an event")

    async def _connection_ended(self, conn: Connection) -> None:
        current = conn in self._conns
        if current:
            self._conns.remove(conn)
        with contextlib.suppress(Exception):
            await conn.close()
        if current:
            await self._hook("on_disconnect")

    async def disconnect(self, message: str = TAKEOVER_MESSAGE) -> None:
        """Tell the clients `_DISCONNECT` (they stop reconnecting) and close
        the connections. The session itself lives on."""
        await self._close_connections(message=message)

    async def _close_connections(self, code: int = 1000, message: str | None = None) -> None:
        conns, self._conns = self._conns, []
        for conn in conns:
            await conn.close(code, message=message)
            await self._hook("on_disconnect")

    async def close(
        self,
        message: str | None = None,
        *,
        code: int = CLOSE_GOING_AWAY,
        grace: float | None = None,
    ) -> None:
        """End the session for good: cancel its tasks, close its connection
        with `code` (and `_DISCONNECT` if `message` is given: the client then
        stays away), call `on_terminate`, and leave every synced object.

        The cancelled tasks get `grace` seconds to finish (None: as long as
        they take); a task still running then is left behind, so that a
        shutdown is not held up by it and `on_terminate` still runs."""
        if self.closed:
            return
        self.closed = True
        try:
            runs = list(self._runs)
            if grace is None:
                await tasks.cancel_all(runs)
            elif runs:
                ending = asyncio.ensure_future(tasks.cancel_all(runs))
                await asyncio.wait([ending], timeout=grace)
                if not ending.done():
                    self.logger.warning("session: tasks still running %ss after cancel", grace)
            await self._close_connections(code, message)
            await self._hook("on_terminate")
            for sync in list(self.syncs.values()):
                sync.detach(self)
            self._kept.clear()
        finally:
            _live.pop(self, None)

    async def _hook(self, name: str) -> None:
        hook = getattr(self.state, name, None) if self.state is not None else None
        if hook is None:
            return
        with self:
            try:
                await invoke(hook)
            except Exception:
                self.logger.exception("session: state.%s failed", name)

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "closed" if self.closed else "idle"
        return f"<Session {state} {sorted(self.syncs)}>"
