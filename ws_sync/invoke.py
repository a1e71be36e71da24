"""Calling user code without blocking the event loop.

Handlers are expected to be ``async``. A plain ``def`` may block (``time.sleep``,
a sync HTTP call), so it runs in Starlette's threadpool; the current context,
and with it the session, goes along, and tracking locks while it runs (see
`threads`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from .threads import offloaded


async def invoke(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Await an async callable; run any other in the threadpool."""
    if inspect.iscoroutinefunction(func):
        return await func(*args, **kwargs)
    with offloaded():
        result = await run_in_threadpool(func, *args, **kwargs)
    if inspect.isawaitable(result):  # e.g. an object with an async __call__
        result = await result
    return result
