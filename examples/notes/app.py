"""The README's Notes app, served with its page: ``python -m examples.notes``.

Every browser session gets its own `Notes` (reload the page: same notes; open
a new tab: new ones). A dropped connection resumes the same session.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ws_sync import client_route, lifespan, remote_action, remote_task, sync_all, sync_endpoint

HOSTS = ["localhost", "127.0.0.1"]
"""Served on 127.0.0.1 only, so no other name may reach it: a page elsewhere
whose name resolves to us (DNS rebinding) is refused, pages and socket alike."""


class Notes(BaseModel):
    title: str = "My Notes"
    notes: list[str] = []

    @sync_all("NOTES")
    def model_post_init(self, __context):
        pass  # Sync is automatically set up

    @property
    def total_length(self):
        return sum(len(note) for note in self.notes)

    @remote_action("RENAME")
    async def rename(self, new_title: str):
        self.title = new_title
        await self.sync()

    @remote_action("ADD_NOTE")
    async def add_note(self, note: str):
        self.notes.append(note)
        await self.sync()

    @remote_task("PROCESS")
    async def process(self, steps: int = 50):
        """A long job: each value it yields reaches the page as progress.
        Cancelling it (from the page) cancels this coroutine."""
        for step in range(1, steps + 1):
            await asyncio.sleep(0.1)
            yield step / steps


def create_app() -> FastAPI:
    # at shutdown: tasks cancelled, pages told to reconnect (1012)
    app = FastAPI(title="ws-sync notes", lifespan=lifespan())
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=HOSTS)
    # one Notes per browser session
    endpoint = sync_endpoint(Notes, path="/ws", allowed_hosts=HOSTS)
    app.router.routes.append(endpoint)
    app.router.routes.append(client_route())  # /ws-sync/ws-sync.js
    app.mount("/", StaticFiles(directory=Path(__file__).parent / "static", html=True))
    app.state.sessions = endpoint.registry  # to look at the live sessions (the tests do)
    return app


app = create_app()
