"""The server of the randomized convergence test (`test_jepsen`).

One `Shared` object, subscribed by every session, holds the shapes a real app
syncs: a scalar everyone writes (``title``), a list of nested models
(``cards``), a dict (``tags``). Besides the clients, a seeded `Mutator`
changes the same fields from a server task, and the ``BUMP`` action records
how often each call ran, by a token the client makes unique per call.

``GET /version`` answers the object's version, so that a client can tell
when it has caught up.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ws_sync import remote_action, session_context, sync_all, sync_endpoint

HISTORY = 1 << 20
"""History bounds: large enough to keep every commit of a run, so that the
test can read back which commit acknowledged which write."""


class Card(BaseModel):
    id: str
    text: str = Field(default="", max_length=200)
    votes: int = Field(default=0, ge=0)


class Shared(BaseModel):
    title: str = ""
    cards: list[Card] = []
    tags: dict[str, int] = {}

    @sync_all("SHARED", history_commits=HISTORY, history_chars=HISTORY * 64)
    def model_post_init(self, __context: Any) -> None:
        pass

    @remote_action("BUMP")
    async def bump(self, token: str, tag: str) -> int:
        """Adds one to ``tags[tag]`` and counts the run of ``token``."""
        RUNS[token] += 1
        self.tags[tag] = self.tags.get(tag, 0) + 1
        await self.sync()
        return RUNS[token]


RUNS: Counter[str] = Counter()
"""Runs of ``BUMP`` by token; reset by `create_app`."""


def initial() -> Shared:
    return Shared(
        title="start",
        cards=[Card(id=f"s{i}", text=f"start@s{i}") for i in range(5)],
        tags={"a": 0, "b": 0},
    )


class Mutator:
    """Server-side writes to the shared fields, at random, as an app's own
    code (a timer, a background job) makes them between client writes."""

    def __init__(self, shared: Shared, seed: int) -> None:
        self.shared = shared
        self.rng = random.Random(seed)
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.rng.uniform(0.01, 0.05))
            self.mutate()
            await self.shared.sync()

    def mutate(self) -> None:
        s, rng = self.shared, self.rng
        self.count += 1
        token = f"srv-{self.count}"
        kind = rng.choice(["title", "insert", "remove", "move", "text", "votes", "tag", "untag"])
        n = len(s.cards)
        if kind == "title":
            s.title = token
        elif kind == "insert" or (n == 0 and kind in ("remove", "move", "text", "votes")):
            s.cards.insert(rng.randint(0, n), Card(id=token, text=f"{token}@{token}"))
        elif kind == "remove":
            del s.cards[rng.randrange(n)]
        elif kind == "move":
            card = s.cards.pop(rng.randrange(n))
            s.cards.insert(rng.randint(0, n - 1), card)
        elif kind == "text":
            card = s.cards[rng.randrange(n)]
            card.text = f"{token}@{card.id}"
        elif kind == "votes":
            s.cards[rng.randrange(n)].votes += 1
        elif kind == "tag":
            s.tags[f"k{rng.randrange(6)}"] = self.count
        elif s.tags:
            del s.tags[rng.choice(sorted(s.tags))]


def create_app(shared: Shared, user_sessions: bool = True) -> Starlette:
    RUNS.clear()

    def join() -> Shared:
        session_context.get().attach(shared)
        return shared

    async def version(request: Request) -> JSONResponse:
        return JSONResponse({"v": shared.sync.log.version})

    app = Starlette(
        routes=[
            sync_endpoint(join, path="/ws", user_sessions=user_sessions),
            Route("/version", version),
        ],
    )
    app.state.shared = shared
    return app
