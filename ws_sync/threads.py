"""Tracked state touched from worker threads.

Plain ``def`` handlers run in a threadpool (see `invoke`). While one runs, two
threads may mutate the same tracked state, or one may mutate it while the event
loop collects a patch; a change log written in the middle of a collection, or
two mutations interleaved, would leave the client's copy wrong. So while any
handler runs in a worker thread (`offloaded`), every tracked mutation and every
collection holds `LOCK`, one at a time. The rest of the time nothing is locked
and the hot paths cost what they cost without threads.

A thread the app starts itself and that mutates synced state must run inside
``with offloaded():`` too.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from . import native

LOCK = threading.RLock()
_count_lock = threading.Lock()
_active = 0

F = TypeVar("F", bound=Callable[..., Any])


def active() -> bool:
    """Whether a handler is running in a worker thread."""
    return _active > 0


@contextmanager
def offloaded() -> Iterator[None]:
    """Mark a stretch during which other threads may mutate tracked state.
    Enter it on the event loop's thread, before the work is handed over."""
    _add(1)
    try:
        yield
    finally:
        _add(-1)


def _add(delta: int) -> None:
    global _active
    with _count_lock:
        _active += delta
        if native.speedups is not None:
            native.speedups.set_threaded(_active > 0)


def locked(method: F) -> F:
    """`method`, holding `LOCK` while handlers run in worker threads."""

    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        if _active:
            with LOCK:
                return method(*args, **kwargs)
        return method(*args, **kwargs)

    return run  # type: ignore[return-value]


def locked_setattr(method: F) -> F:
    """`locked` for ``__setattr__(self, name, value)``: a hot path, no packing."""

    @functools.wraps(method)
    def run(obj: Any, name: str, value: Any) -> None:
        if _active:
            with LOCK:
                method(obj, name, value)
            return
        method(obj, name, value)

    return run  # type: ignore[return-value]


def call_locked(func: Callable[..., Any], *args: Any) -> Any:
    """`func(*args)` holding `LOCK` (the C hot paths call this while threaded)."""
    with LOCK:
        return func(*args)
