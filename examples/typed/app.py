"""A synced class whose frontend is TypeScript, typed by generated types.

    python -m ws_sync typescript examples.typed.app:Todos -o examples/typed/synced.ts

`main.ts` uses them; the tests type-check it with ``tsc --noEmit`` (see
docs/typed-frontend.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from pydantic import BaseModel, Field, computed_field

from ws_sync import SyncedAsCamelCase, remote_action, remote_task


class Todo(BaseModel):
    text: str
    done: bool = False


class Todos(SyncedAsCamelCase, BaseModel, sync_key="TODOS"):
    title: str = "Today"
    todo_items: list[Todo] = []

    @computed_field  # type: ignore[prop-decorator]
    @property
    def open_count(self) -> int:
        return sum(not t.done for t in self.todo_items)

    @remote_action("ADD_TODO")
    async def add_todo(self, text: str = Field(min_length=1)) -> int:
        """Appends a todo; returns its index."""
        self.todo_items.append(Todo(text=text))
        await self.sync()
        return len(self.todo_items) - 1

    @remote_action("TOGGLE")
    async def toggle(self, index: int) -> None:
        self.todo_items[index].done = not self.todo_items[index].done
        await self.sync()

    @remote_task("ARCHIVE_DONE")
    async def archive_done(self, delay: float = 0.5) -> AsyncIterator[int]:
        """Removes done todos one by one, yielding how many are left."""
        while any(t.done for t in self.todo_items):
            await asyncio.sleep(delay)
            first = next(i for i, t in enumerate(self.todo_items) if t.done)
            del self.todo_items[first]
            await self.sync()
            yield sum(t.done for t in self.todo_items)
