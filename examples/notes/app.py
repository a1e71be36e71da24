"""The README's Notes app, served with its page: ``python -m examples.notes``.

Every browser session gets its own `Notes` (reload the page: same notes; open
a new tab: new ones). A dropped connection resumes the same session.

With ``--sign-in`` (``create_app(sign_in=True)``) the page asks for a name
first: a cookie session (Starlette's `SessionMiddleware`) holds it, the socket
is refused without it, and each name's sessions are its own (ids taken from
another name's page open a fresh session). ``/logout`` ends them all.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ws_sync import client_route, lifespan, remote_action, remote_task, sync_all, sync_endpoint
from ws_sync.auth import revoke

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
    def total_length(self) -> int:
        return sum(len(note) for note in self.notes)

    @remote_action("RENAME")
    async def rename(self, new_title: str) -> None:
        self.title = new_title
        await self.sync()

    @remote_action("ADD_NOTE")
    async def add_note(self, note: str) -> None:
        self.notes.append(note)
        await self.sync()

    @remote_task("PROCESS")
    async def process(self, steps: int = 50) -> AsyncIterator[float]:
        """A long job: each value it yields reaches the page as progress.
        Cancelling it (from the page) cancels this coroutine."""
        for step in range(1, steps + 1):
            await asyncio.sleep(0.1)
            yield step / steps


STATIC = Path(__file__).parent / "static"

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in: ws-sync notes</title><link rel="stylesheet" href="/style.css"></head>
<body><main><h1>Sign in</h1>{error}
<form method="post" action="/login">
<label for="name">Your name</label>
<input id="name" name="name" autocomplete="username" required maxlength="40" autofocus>
<button type="submit">Sign in</button>
</form></main></body></html>"""


def signed_in(conn: HTTPConnection) -> str | None:
    """The name the cookie session holds: the socket's principal (None refuses)."""
    name = conn.session.get("user")
    return name if isinstance(name, str) and name else None


async def login(request: Request) -> Response:
    """The form, and on POST the name it sends into the cookie session (a real
    app checks a password or an identity provider here)."""
    if request.method == "GET":
        return HTMLResponse(LOGIN_PAGE.format(error=""))
    form = parse_qs((await request.body()).decode(errors="replace"))
    name = (form.get("name") or [""])[0].strip()[:40]
    if not name:
        error = '<p role="alert">Enter a name.</p>'
        return HTMLResponse(LOGIN_PAGE.format(error=error), status_code=400)
    request.session["user"] = name
    return RedirectResponse("/", status_code=303)


async def logout(request: Request) -> Response:
    """Forget the name and close its sessions, on every open page."""
    name = signed_in(request)
    request.session.clear()
    if name is not None:
        await revoke(name)
    return RedirectResponse("/login", status_code=303)


async def page(request: Request) -> Response:
    """The notes page, for a signed-in browser; the others sign in first."""
    if signed_in(request) is None:
        return RedirectResponse("/login", status_code=303)
    return FileResponse(STATIC / "index.html")


def create_app(*, sign_in: bool = False) -> FastAPI:
    # at shutdown: tasks cancelled, pages told to reconnect (1012)
    app = FastAPI(title="ws-sync notes", lifespan=lifespan())
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=HOSTS)
    if sign_in:
        secret = os.environ.get("NOTES_SECRET") or secrets.token_hex(32)
        app.add_middleware(SessionMiddleware, secret_key=secret, same_site="strict")
        app.router.routes.extend(
            [
                Route("/login", login, methods=["GET", "POST"]),
                Route("/logout", logout),
                Route("/", page),
            ]
        )
    # one Notes per browser session (and, signed in, per name)
    endpoint = sync_endpoint(
        Notes, path="/ws", allowed_hosts=HOSTS, authenticate=signed_in if sign_in else None
    )
    app.router.routes.append(endpoint)
    app.router.routes.append(client_route())  # /ws-sync/ws-sync.js
    app.mount("/", StaticFiles(directory=STATIC, html=True))
    app.state.sessions = endpoint.registry  # to look at the live sessions (the tests do)
    return app


app = create_app()
