"""A shared board: every open tab edits the same object, live.
Run ``python -m examples.board`` and open http://127.0.0.1:8000 in two windows.

Adding, voting and deleting are actions (found by card id, so concurrent edits
do not trip over list positions); editing a card's text or moving it to another
column are direct edits from the page, JSON Patches validated against `Card`.

Roles: open http://127.0.0.1:8000/join?role=viewer to watch the board read-only
(``/join`` alone to edit again). The role is a signed cookie here; an app
takes it from its own sign-in. The server refuses a viewer's actions and
edits (`allow`, `can_write`), whatever the page shows.
With ``create_app(sign_in=True)`` a page without the cookie is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from ws_sync import (
    Session,
    client_route,
    lifespan,
    remote_action,
    session_context,
    sync_all,
    sync_endpoint,
)

HOSTS = ["localhost", "127.0.0.1"]
"""Served on 127.0.0.1 only, so no other name may reach it: a page elsewhere
whose name resolves to us (DNS rebinding) is refused, pages and socket alike."""

Column = Literal["todo", "doing", "done"]
Role = Literal["editor", "viewer"]

COOKIE = "board_member"
_KEY = secrets.token_bytes(32)  # per process: a restart signs everyone out


@dataclass(frozen=True)
class Member:
    """Who a session is: its `identity` and its role on the board."""

    identity: str
    role: Role = "editor"


def _signed(value: str) -> str:
    return hmac.new(_KEY, value.encode(), hashlib.sha256).hexdigest()


def member_of(cookie: str | None) -> Member | None:
    """The member a cookie of `/join` names, if its signature holds."""
    value, _, mac = (cookie or "").rpartition(".")
    if not value or not hmac.compare_digest(mac, _signed(value)):
        return None
    name, _, role = value.partition(":")
    return Member(name, "viewer" if role == "viewer" else "editor")


async def join(request: Request) -> RedirectResponse:
    """Sign in as ``?role=viewer`` or editor (the default), then the board."""
    role = "viewer" if request.query_params.get("role") == "viewer" else "editor"
    value = f"{role}-{uuid.uuid4().hex[:6]}:{role}"
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE, f"{value}.{_signed(value)}", httponly=True, samesite="strict")
    return response


def editor(session: Session, params: Any = None) -> bool:
    """Only editors change the board (checked by the server on every call and write)."""
    return getattr(session.user, "role", None) == "editor"


class Card(BaseModel):
    id: str
    text: str = Field(max_length=280)
    column: Column = "todo"
    votes: int = Field(default=0, ge=0)


class Board(BaseModel):
    cards: list[Card] = []

    @sync_all("BOARD")
    def model_post_init(self, __context):
        pass

    def can_write(self, session: Session, path: str, op: str) -> bool:
        return editor(session)

    @remote_action("ADD_CARD", allow=editor)
    async def add_card(self, text: str, column: Column = "todo"):
        self.cards.append(Card(id=uuid.uuid4().hex[:8], text=text, column=column))
        await self.sync()

    @remote_action("VOTE", allow=editor)
    async def vote(self, card_id: str):
        for card in self.cards:
            if card.id == card_id:
                card.votes += 1
        await self.sync()

    @remote_action("DELETE_CARD", allow=editor)
    async def delete_card(self, card_id: str):
        # In place, so the patch is one `remove` of /cards/<i>, not the whole list.
        for i, card in enumerate(self.cards):
            if card.id == card_id:
                del self.cards[i]
                break
        await self.sync()


def create_app(board: Board | None = None, *, sign_in: bool = False) -> Starlette:
    board = board or Board(
        cards=[
            Card(id="welcome", text="Open this page in a second window", column="doing"),
            Card(id="edit", text="Click a card to edit its text", votes=2),
        ]
    )

    def join_board() -> Board:
        """Runs in every new session: subscribe it to the one shared board."""
        session_context.get().attach(board)
        return board

    def authenticate(ws: WebSocket) -> Member | None:
        """The member of the cookie; without one, a guest editor (or, with
        `sign_in`, nobody: the page is refused)."""
        member = member_of(ws.cookies.get(COOKIE))
        return member or (None if sign_in else Member("guest"))

    # No per-user state here, so no user sessions: each connection is a fresh
    # session that leaves the board when the connection ends.
    endpoint = sync_endpoint(
        join_board,
        path="/ws",
        user_sessions=False,
        allowed_hosts=HOSTS,
        authenticate=authenticate,
    )
    static = StaticFiles(directory=Path(__file__).parent / "static", html=True)
    app = Starlette(
        routes=[endpoint, Route("/join", join), client_route(), Mount("/", static)],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=HOSTS)],
        lifespan=lifespan(),  # at shutdown: sessions closed, pages told to reconnect (1012)
    )
    app.state.board = board
    return app


app = create_app()
