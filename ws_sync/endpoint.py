"""A ready-made WebSocket endpoint, and a route serving the browser client.

A whole app::

    from starlette.applications import Starlette
    from ws_sync.endpoint import client_route, sync_endpoint

    app = Starlette(routes=[sync_endpoint(Notes), client_route()])

`sync_endpoint(factory)` returns a Starlette `WebSocketRoute`. For each new
user session it makes a `Session` and calls ``factory()`` inside it, so every
synced object the factory builds belongs to that session (and is kept alive
with it). With FastAPI::

    app = FastAPI()
    app.router.routes.append(sync_endpoint(Notes, path="/ws"))
    app.router.routes.append(client_route())

What each connection gets:

- an Origin check before the handshake is accepted (same origin by default;
  ``allowed_origins=["https://app.example.com"]`` or ``["*"]``); a foreign
  Origin is refused with 403;
- with ``authenticate=fn``, a principal: ``fn(websocket)`` (sync or async)
  reads cookies or headers and returns who the client is, or None to refuse
  it with 403 before anything is made; without it, the authenticated user of
  Starlette's ``AuthenticationMiddleware``, if any (`ws_sync.auth`). The
  session keeps it as ``session.user``, and its user sessions are the
  principal's own;
- with ``allowed_hosts=["app.example.com"]``, a Host check against DNS
  rebinding (`ws_sync.hosts`; patterns as Starlette's `TrustedHostMiddleware`,
  which the app's HTTP routes should use with the same list); another Host is
  refused with 403. None (default) checks no host;
- with ``user_sessions=True`` (default), the `_REQUEST_USER_SESSION`
  handshake: a client reconnecting with the same ids resumes its session, its
  objects and running tasks; idle sessions expire after ``session_ttl``
  seconds. With ``user_sessions=False`` every connection is a fresh session,
  closed when the connection ends;
- the limits of ``limits`` (`ws_sync.limits.Limits`): frame size, JSON depth,
  event rate, outbound queue and send timeout;
- while the backplane is unreachable and `ws_sync.shared` objects are not
  loaded yet, a factory that uses none of them works at once; one that fails
  is tried again once they load, for ``shared_timeout`` seconds at most, and
  the client is then told `_ERROR` and closed with 1013 (try again later).

``client_route("/ws-sync")`` serves ``ws_sync/static`` (``ws-sync.js`` and
``react.js``) so a page can ``import {Session} from "/ws-sync/ws-sync.js"``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

from starlette.routing import Mount, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from . import wire
from .address import TrustedProxies, client_address
from .auth import Authenticate, audit, identity, principal_of, stored_user
from .backplane import Backplane
from .backplane import current as current_backplane
from .backplane import use as use_backplane
from .connection import CLOSE_POLICY, CLOSE_TOO_SLOW, Connection
from .hello import wants_versions
from .hosts import host_allowed, host_patterns
from .limits import AddressBuckets, Limits
from .origin import origin_allowed
from .protocol import INVALID, error_frame
from .registry import HandshakeError, RegistryFull, SessionRegistry, opening, reject
from .session import Session, Tabs
from .shared import pending, ready_all

STATIC_DIR = Path(__file__).parent / "static"
CLOSE_INTERNAL = 1011

logger = logging.getLogger("ws_sync")


def sync_endpoint(
    factory: Callable[[], Any],
    *,
    path: str = "/ws",
    user_sessions: bool | SessionRegistry = True,
    allowed_origins: Iterable[str] | None = None,
    allowed_hosts: Iterable[str] | None = None,
    limits: Limits | None = None,
    session_ttl: float = 3600.0,
    max_sessions: int = 10_000,
    max_sessions_per_address: int = 100,
    trusted_proxies: Iterable[str] | None = None,
    name: str | None = None,
    expose_errors: bool = False,
    tabs: Tabs = "auto",
    authenticate: Authenticate | None = None,
    backplane: Backplane | str | None = None,
    shared_timeout: float = 5.0,
) -> WebSocketRoute:
    """A `WebSocketRoute` at `path` serving sessions built by `factory`.

    `factory()` (sync or async) runs in the new session's context; return the
    objects to keep (a synced object, a list, anything: it is held for the
    life of the session). ``user_sessions`` may be a `SessionRegistry` to share
    or inspect; the route exposes it as ``route.registry``. Clients read
    "internal error" and a log reference for an exception raised by the app;
    ``expose_errors=True`` shows them its text (see `ws_sync.errors`).
    ``tabs`` says whether a session's connections share it or the newest
    takes over (`Session.new_connection`). ``authenticate`` gives each
    connection its principal (see `ws_sync.auth`). ``backplane`` (a
    `Backplane` or a URL, default ``WS_SYNC_BACKPLANE``) is where
    `ws_sync.shared` objects live (`ws_sync.backplane`); ``shared_timeout``
    is how long a new session waits for them while it is unreachable.

    Per-address limits (the frame budget of `Limits.address_rate`,
    ``max_sessions_per_address``) count the client address of the ASGI
    scope; with ``trusted_proxies`` (addresses, networks or ``"*"``), the one
    such a proxy names in ``X-Forwarded-For`` (see `ws_sync.address`).
    """
    if backplane is not None:
        use_backplane(backplane)
    limits = limits or Limits()
    proxies = TrustedProxies(trusted_proxies) if trusted_proxies is not None else None
    budgets = AddressBuckets(limits.address_rate, limits.address_burst)
    origins = list(allowed_origins) if allowed_origins is not None else None
    hosts = host_patterns(allowed_hosts) if allowed_hosts is not None else None
    registry: SessionRegistry | None
    if isinstance(user_sessions, SessionRegistry):
        registry = user_sessions
    elif user_sessions:
        registry = SessionRegistry(
            ttl=session_ttl,
            max_sessions=max_sessions,
            max_sessions_per_address=max_sessions_per_address,
        )
    else:
        registry = None

    async def make(user: Any) -> Session:
        return await new_session(factory, limits, expose_errors=expose_errors, tabs=tabs, user=user)

    async def create(user: Any = None, ids: tuple[str, str] | None = None) -> Session:
        try:
            session = await _with_shared(lambda: make(user), shared_timeout)
            if ids is not None:  # kept in the backplane, in the principal's namespace
                await current_backplane().adopt(session, ids, session_ttl)
            return session
        except SharedUnavailable:
            raise
        except Exception as e:
            logger.exception("sync_endpoint: the session factory failed")
            raise FactoryError from e

    async def endpoint(ws: WebSocket) -> None:
        if not host_allowed(ws, hosts) or not origin_allowed(ws, origins):
            await ws.close(CLOSE_POLICY)  # before accept: the server answers 403
            return
        address = client_address(ws, proxies)
        user = None
        if authenticate is not None or "user" in ws.scope:
            user = await _principal(ws, authenticate, address)
            if user is None and authenticate is not None:
                await ws.close(CLOSE_POLICY)  # before accept: 403, nothing made
                return
        conn = Connection(ws, limits, budgets.acquire(address))
        try:
            await serve(conn, address, user)
        finally:
            budgets.release(address)

    async def serve(conn: Connection, address: str, user: Any = None) -> None:
        await conn.accept()
        conn.start()
        versioned = wants_versions(conn.ws)
        if registry is None:
            if versioned:
                try:
                    await opening(conn, ids=False, hello=True)
                except HandshakeError as e:
                    await reject(conn, str(e))
                    return
            try:
                session = await create(user)
            except SharedUnavailable:
                await _unavailable(conn)
                return
            except FactoryError:
                await _fail(conn)
                return
            try:
                await session.handle_connection(conn)
            finally:
                # shielded: a cancelled endpoint (server shutdown) still ends the
                # session; bounded: a slow task's `finally` cannot hold the server
                closing = session.close(grace=limits.close_timeout)
                await asyncio.shield(_background(closing))
            return
        owner = identity(user)
        try:
            ids = await opening(conn, ids=True, hello=versioned)
            assert ids is not None
            kept = (stored_user(owner, ids[0]), ids[1]) if owner is not None else ids
            session = await registry.open(ids, lambda: create(user, kept), address, owner)
        except HandshakeError as e:
            await reject(conn, str(e))
            return
        except RegistryFull as e:
            conn.push(error_frame(wire.USER_SESSION, str(e)))
            await conn.close(CLOSE_TOO_SLOW, "server full")
            return
        except SharedUnavailable:
            await _unavailable(conn)
            return
        except FactoryError:
            await _fail(conn)
            return
        try:
            await session.handle_connection(conn)
        finally:
            registry.release(ids, session, owner)

    route = WebSocketRoute(path, endpoint, name=name)
    route.registry = registry  # type: ignore[attr-defined]
    route.budgets = budgets  # type: ignore[attr-defined]
    return route


async def new_session(
    factory: Callable[[], Any],
    limits: Limits | None = None,
    *,
    expose_errors: bool = False,
    tabs: Tabs = "auto",
    user: Any = None,
) -> Session:
    """A `Session` of `user` with the objects of ``factory()`` built in it and kept."""
    session = Session(limits=limits, expose_errors=expose_errors, tabs=tabs, user=user)
    with session:
        made = factory()
        if inspect.isawaitable(made):
            made = await made
    session.keep(made)
    return session


async def _principal(ws: WebSocket, authenticate: Authenticate | None, address: str) -> Any:
    """The connection's principal; None (audited) when `authenticate` refuses
    it or fails (logged), or when the middleware's user is anonymous."""
    try:
        user = await principal_of(ws, authenticate)
    except Exception:
        logger.exception("sync_endpoint: authenticate failed")
        user = None
    if identity(user) is None:
        if authenticate is not None:
            audit("handshake refused", None, path=ws.url.path, address=address)
        return None
    return user


class FactoryError(Exception):
    """The session factory raised (logged); the client learns nothing more."""


class SharedUnavailable(Exception):
    """The shared objects a session needs could not be loaded in time."""


UNAVAILABLE = "the shared state is unreachable now; try again later"


async def _with_shared(make: Callable[[], Awaitable[Session]], wait: float) -> Session:
    """``make()`` once the `ws_sync.shared` objects are loaded. While the
    backplane is unreachable, ``make()`` is tried at once (a factory that
    uses no shared object works); if it fails, again once they load, for
    `wait` seconds at most (then `SharedUnavailable`)."""
    bp = current_backplane()
    try:
        if bp.connected or not pending():
            await ready_all()  # shared objects load before the first session uses them
            return await make()
    except Exception as e:
        if not bp.unreachable(e):
            raise
    try:
        return await make()
    except Exception:
        logger.debug("sync_endpoint: waiting for the shared objects (backplane unreachable)")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    delay = 0.05
    while True:
        if bp.connected:
            try:
                await ready_all()
                break
            except Exception as e:
                if not bp.unreachable(e):
                    raise
        if loop.time() + delay > deadline:
            raise SharedUnavailable
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)
    return await make()


async def _fail(conn: Connection) -> None:
    conn.push(error_frame(INVALID, "the server could not open a session"))
    await conn.close(CLOSE_INTERNAL, "internal error")


async def _unavailable(conn: Connection) -> None:
    conn.push(error_frame(INVALID, UNAVAILABLE))
    await conn.close(CLOSE_TOO_SLOW, "try again later")


_pending: set[asyncio.Task[Any]] = set()


def _background(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """A task that runs to the end even if its awaiter is cancelled."""
    task = asyncio.ensure_future(coro)
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    return task


def client_route(path: str = "/ws-sync", *, name: str = "ws-sync") -> Mount:
    """Serve the packaged browser client (``ws_sync/static``) under `path`."""
    return Mount(path, app=StaticFiles(directory=STATIC_DIR), name=name)
