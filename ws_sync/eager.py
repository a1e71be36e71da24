"""Coroutines started in the caller's own step, as Python 3.12's eager tasks
would start them: a write goes out before the caller yields, not one turn of
the event loop later.

Only for coroutines that do not tie themselves to the running task before
their first wait (an `asyncio.timeout` or a cancel scope entered first): the
rest of such a coroutine may run in another task.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any


def start(coro: Coroutine[Any, Any, Any]) -> Resume | None:
    """Run `coro` until it first has to wait: None if it finished, else what
    a task awaits to finish it. Its exceptions propagate."""
    try:
        first = coro.send(None)
    except StopIteration:
        return None
    return Resume(coro, first)


class Resume:
    """Awaiting it finishes a coroutine that was started elsewhere and
    suspended: `first` is what its first step yielded (the future it waits on,
    or None for a bare yield), passed on to the task awaiting this; what the
    task sends or throws back goes on into the coroutine, as `await` would."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self) -> Generator[Any, Any, None]:
        coro = self.coro
        yielded = self.first
        while True:
            try:
                value = yield yielded
            except BaseException as e:  # cancellation thrown in by the task
                try:
                    yielded = coro.throw(e)
                except StopIteration:
                    return
            else:
                try:
                    yielded = coro.send(value)
                except StopIteration:
                    return
