"""Objects shared by the whole deployment, and jobs that run on one worker.

    board = shared("BOARD", Board)          # module level, in every worker

    def join():
        session_context.get().attach(board)
        return board

    app = Starlette(routes=[sync_endpoint(join)], lifespan=ws_sync.lifespan())

`shared` returns a handle that stands for this process's replica of the
object: attribute reads and writes go to it, and it is made on first use
(``memory://``, the default) or connected and loaded before the first session
opens (Redis: by the endpoint, by `ws_sync.lifespan`, or ``await board.ready()``).

With Redis (`ws_sync.redis_replica`) the first worker to declare the object
makes it with ``factory()`` and stores its state; every other worker, and
every restart, makes a blank one with ``factory()`` and loads the stored state
into it (each synced attribute validated against its declared type). Fields
added since, with defaults, keep their defaults; stored values that no longer
validate raise `SharedStateError` naming them, unless ``migrate(state)``, given
the stored wire-named state, returns a state that fits.

Actions and client writes on a shared object run one at a time across the
deployment. Server code outside handlers (a timer, a task) changes one inside
``async with board.lock():``, which waits its turn and commits on exit; a
change made outside is committed only if no handler runs meanwhile anywhere,
and is otherwise discarded (logged). `one_worker` runs a background job on a
single worker at a time, under a fencing token (`ws_sync.backplane.leader`).

A worker whose backplane is unreachable at startup still starts: `start`
returns, and the objects load (and the jobs start) once it answers; until
then the endpoint opens the sessions that need no shared object
(`ws_sync.endpoint`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from pydantic_core import from_json, to_json

from . import backplane as _backplane
from .context import session_context
from .validation import ClientWriteError, adapter, attribute_type

T = TypeVar("T")

logger = logging.getLogger("ws_sync")

Migrate = Callable[[dict[str, Any]], dict[str, Any]]


class SharedStateError(Exception):
    """The stored state of a shared object does not fit its class."""


class SharedWriteError(ClientWriteError):
    """A change to a shared object was not committed (the backplane is
    unreachable, or another worker committed first); nothing of it stays."""

    def __init__(self, message: str) -> None:
        super().__init__(message, [{"msg": message}])


_handles: dict[str, Shared[Any]] = {}


class Shared(Generic[T]):
    """This process's replica of a deployment-wide object (see `shared`)."""

    def __init__(
        self,
        key: str,
        factory: Callable[[], T],
        migrate: Migrate | None = None,
        backplane: _backplane.Backplane | None = None,
    ) -> None:
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_factory", factory)
        object.__setattr__(self, "_migrate", migrate)
        object.__setattr__(self, "_backplane", backplane)
        object.__setattr__(self, "_obj", None)
        object.__setattr__(self, "_opening", None)

    @property
    def key(self) -> str:
        return self._key  # type: ignore[no-any-return]

    @property
    def migrate(self) -> Migrate | None:
        return self._migrate  # type: ignore[no-any-return]

    @property
    def backplane(self) -> _backplane.Backplane:
        bp = self._backplane
        return bp if bp is not None else _backplane.current()

    def build(self) -> T:
        """A new object from the factory; its sync key must be this handle's."""
        obj = contextvars.copy_context().run(self._made)
        sync = obj.sync  # type: ignore[attr-defined]
        if sync.key != self.key:
            raise ValueError(f"shared({self.key!r}): the factory made an object keyed {sync.key!r}")
        return obj

    def _made(self) -> T:
        session_context.set(None)  # belongs to no session: each attaches it itself
        return self._factory()  # type: ignore[no-any-return]

    @property
    def obj(self) -> T:
        """The live object. With a backplane that must load it first, an
        error until `ready` (or the endpoint, or the lifespan) has run."""
        obj = self._obj
        if obj is None:
            bp = self.backplane
            if not bp.embedded:
                raise RuntimeError(
                    f"shared object {self.key!r} is not loaded yet: await its ready(), "
                    "or open it through sync_endpoint or ws_sync.lifespan()"
                )
            obj = bp.make(self)
            object.__setattr__(self, "_obj", obj)
        return obj  # type: ignore[no-any-return]

    @property
    def loaded(self) -> bool:
        return self._obj is not None

    async def ready(self) -> T:
        """Connect and load (once); the live object."""
        if self._obj is not None:
            return self._obj  # type: ignore[no-any-return]
        opening = self._opening
        if opening is None:
            opening = asyncio.ensure_future(self.backplane.open(self))
            object.__setattr__(self, "_opening", opening)
        try:
            obj = await asyncio.shield(opening)
        except BaseException:
            if opening.done():
                object.__setattr__(self, "_opening", None)
            raise
        object.__setattr__(self, "_obj", obj)
        return obj  # type: ignore[no-any-return]

    def lock(self) -> contextlib.AbstractAsyncContextManager[T]:
        """``async with board.lock():`` exclusive use across the deployment for
        server code outside handlers; its changes are committed on exit (a
        failed commit raises `SharedWriteError` and leaves nothing of them)."""
        return self.backplane.lock(self)

    def forget(self) -> None:
        """Drop the replica (a test, or a backplane that was closed)."""
        object.__setattr__(self, "_obj", None)
        object.__setattr__(self, "_opening", None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.obj, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.obj, name, value)

    def __repr__(self) -> str:
        state = "loaded" if self._obj is not None else "not loaded"
        return f"<shared {self.key!r} {state}>"


def shared(
    key: str,
    factory: Callable[[], T],
    *,
    migrate: Migrate | None = None,
    backplane: _backplane.Backplane | None = None,
) -> Shared[T]:
    """Declare the deployment-wide object `key`, made by `factory` (whose sync
    key must be `key`); returns this process's handle to it. One declaration
    per key and backplane."""
    handle: Shared[T] = Shared(key, factory, migrate, backplane)
    if backplane is None:
        old = _handles.get(key)
        if old is not None and old.loaded:
            raise ValueError(f"shared object {key!r} is declared twice")
        _handles[key] = handle
    return handle


def loaded() -> bool:
    return any(h.loaded for h in _handles.values())


async def ready_all() -> None:
    """Load every declared shared object of the process's backplane."""
    pending = [h for h in list(_handles.values()) if not h.loaded]
    if pending:
        await asyncio.gather(*(h.ready() for h in pending))


def pending(backplane: _backplane.Backplane | None = None) -> int:
    """How many declared shared objects (of `backplane`, default: the
    process's) are not loaded yet."""
    bp = backplane or _backplane.current()
    return sum(1 for h in list(_handles.values()) if not h.loaded and h.backplane is bp)


def forget_all() -> None:
    for h in _handles.values():
        h.forget()


# --------------------------------------------------------------------------- #
# one worker only

_jobs: dict[str, Callable[[], Awaitable[Any]]] = {}


def one_worker(
    name: str | Callable[[], Awaitable[Any]],
) -> Any:
    """Mark a background coroutine function to run on one worker of the
    deployment at a time (the holder of a lease; another takes over if it
    dies), started and stopped by `ws_sync.lifespan`::

        @one_worker("tick")
        async def tick():
            while True:
                async with board.lock():
                    board.clock += 1
                await asyncio.sleep(1)
    """
    if callable(name):
        _jobs[name.__name__] = name
        return name

    def mark(job: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        _jobs[str(name)] = job
        return job

    return mark


async def start() -> list[asyncio.Task[None]]:
    """Connect the process's backplane, load the shared objects and start
    competing for the `one_worker` jobs (`ws_sync.lifespan` calls this).
    With the backplane unreachable this returns all the same: the objects
    load, and the jobs start, in the background once it answers."""
    bp = _backplane.current()
    await bp.start()
    try:
        await ready_all()
    except Exception as e:
        if not bp.unreachable(e):
            raise
        return [asyncio.ensure_future(_start_later(bp))]
    return _lead_all(bp)


def _lead_all(bp: _backplane.Backplane) -> list[asyncio.Task[None]]:
    return [asyncio.ensure_future(bp.lead(name, job)) for name, job in _jobs.items()]


async def _start_later(bp: _backplane.Backplane) -> None:
    """Load the shared objects, retrying with backoff; then run the jobs."""
    delay = 0.1
    while True:
        await asyncio.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 2.0)
        try:
            await ready_all()
            break
        except Exception as e:
            if not bp.unreachable(e):
                logger.exception("shared objects could not be loaded; one_worker jobs not started")
                return
    logger.info("shared objects loaded; the backplane is reachable")
    jobs = _lead_all(bp)
    try:
        await asyncio.gather(*jobs)
    finally:
        for job in jobs:
            job.cancel()


async def stop(jobs: list[asyncio.Task[None]]) -> None:
    """Stop the jobs, close the backplane and drop its replicas."""
    for job in jobs:
        job.cancel()
    for job in jobs:
        with contextlib.suppress(BaseException):
            await job
    bp = _backplane.current()
    await bp.close()
    if not bp.embedded:
        forget_all()


# --------------------------------------------------------------------------- #
# state in and out


def copy_json(value: Any) -> Any:
    return from_json(to_json(value))


def load_state(sync: Any, state: dict[str, Any], heads: Any = None) -> None:
    """Set the synced attributes named (by wire name) in `heads` (default:
    all of `state`) from `state`, validated against their declared types;
    the changes this makes are consumed, not sent. Raises `SharedStateError`
    naming every value that does not fit, changing nothing."""
    obj = sync.obj
    by_wire = {w: a for a, w in sync.attributes.items()}
    planned: list[tuple[str, Any]] = []
    errors: list[str] = []
    for w in state if heads is None else heads:
        attr = by_wire.get(w)
        if attr is None or attr in sync._computed or w not in state:
            continue
        try:
            value = adapter(attribute_type(obj, attr)).validate_python(copy_json(state[w]))
        except ValidationError as e:
            errors.append(f"{w!r}: {e.errors()[0]['msg']}")
            continue
        planned.append((attr, value))
    if errors:
        raise SharedStateError(
            f"{sync.key}: the stored state does not fit {type(obj).__name__} "
            f"({'; '.join(errors)}); pass migrate= to shared() to convert it"
        )
    for attr, value in planned:
        setattr(obj, attr, value)
    sync.collect()
