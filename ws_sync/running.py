"""`Sync.running_tasks`: the keys of an object's running tasks."""

from __future__ import annotations

import asyncio
from typing import Any, SupportsIndex, overload


class RunningTasks(list[str]):
    """The keys of the running tasks in start order, as the state shows them.
    Indexed by a key it gives that task's `asyncio.Task`, as upstream's dict
    did (``await sync.running_tasks["GROW"]``)."""

    __slots__ = ("_handles",)

    def __init__(self) -> None:
        super().__init__()
        self._handles: dict[str, asyncio.Task[Any]] | None = None  # made by the first task

    @property
    def handles(self) -> dict[str, asyncio.Task[Any]]:
        if self._handles is None:
            self._handles = {}
        return self._handles

    @overload
    def __getitem__(self, i: SupportsIndex) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    @overload
    def __getitem__(self, i: str) -> asyncio.Task[Any]: ...
    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, str):
            return self.handles[i]
        return super().__getitem__(i)

    def get(self, key: str, default: Any = None) -> Any:
        return self.handles.get(key, default)

    def keys(self) -> list[str]:
        return list(self)

    def values(self) -> list[asyncio.Task[Any]]:
        return [self.handles[k] for k in self if k in self.handles]

    def items(self) -> list[tuple[str, asyncio.Task[Any]]]:
        return [(k, self.handles[k]) for k in self if k in self.handles]

    def remove(self, key: str) -> None:
        super().remove(key)
        if self._handles is not None:
            self._handles.pop(key, None)
