"""A shared board: every open tab edits the same object, live.
Run ``python -m examples.board`` and open http://127.0.0.1:8000 in two windows.

Adding, voting and deleting are actions (found by card id, so concurrent edits
do not trip over list positions); editing a card's text or moving it to another
column are direct edits from the page, JSON Patches validated against `Card`.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from ws_sync import (
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

    @remote_action("ADD_CARD")
    async def add_card(self, text: str, column: Column = "todo"):
        self.cards.append(Card(id=uuid.uuid4().hex[:8], text=text, column=column))
        await self.sync()

    @remote_action("VOTE")
    async def vote(self, card_id: str):
        for card in self.cards:
            if card.id == card_id:
                card.votes += 1
        await self.sync()

    @remote_action("DELETE_CARD")
    async def delete_card(self, card_id: str):
        self.cards = [card for card in self.cards if card.id != card_id]
        await self.sync()


def create_app(board: Board | None = None) -> Starlette:
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

    # No per-user state here, so no user sessions: each connection is a fresh
    # session that leaves the board when the connection ends.
    endpoint = sync_endpoint(join_board, path="/ws", user_sessions=False, allowed_hosts=HOSTS)
    static = StaticFiles(directory=Path(__file__).parent / "static", html=True)
    app = Starlette(
        routes=[endpoint, client_route(), Mount("/", static)],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=HOSTS)],
        lifespan=lifespan(),  # at shutdown: sessions closed, pages told to reconnect (1012)
    )
    app.state.board = board
    return app


app = create_app()
