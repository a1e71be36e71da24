"""Handlers in worker threads and the event loop on the same tracked state."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import threading
from collections.abc import Iterator
from typing import Any

import jsonpatch
import pytest
from fakes import FakeSession
from pydantic import BaseModel

from ws_sync import Sync, native, threads
from ws_sync.invoke import invoke


class Card(BaseModel):
    title: str = ""
    votes: int = 0
    tags: list[str] = []


class Board:
    def __init__(self) -> None:
        self.count = 0
        self.items: list[Any] = []
        self.table: dict[str, Any] = {}
        self.cards: list[Card] = []


def mutate(rng: random.Random, board: Board) -> None:
    # another thread may change a list between our len() and our write
    with contextlib.suppress(IndexError, KeyError):
        _mutate(rng, board)


def _mutate(rng: random.Random, board: Board) -> None:
    kind = rng.randrange(10)
    items, table, cards = board.items, board.table, board.cards
    if kind == 0:
        board.count += 1
    elif kind == 1:
        items.append(rng.randrange(100))
    elif kind == 2:
        items.append({"n": rng.randrange(9), "l": [1]})
    elif kind == 3 and items:
        items[rng.randrange(len(items))] = rng.random()
    elif kind == 4 and items:
        items.pop(rng.randrange(len(items)))
    elif kind == 5:
        items.insert(0, "front")
    elif kind == 6:
        table[str(rng.randrange(20))] = [rng.randrange(5)]
    elif kind == 7 and table:
        table.pop(rng.choice(list(table)), None)
    elif kind == 8:
        cards.append(Card(title=str(rng.randrange(9))))
    elif cards:
        card = cards[rng.randrange(len(cards))]
        card.votes += 1
        card.tags.append("t")
    if len(items) > 60:
        del items[:30]


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads every microsecond, so interleavings happen at all."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_offloaded_marks_the_threaded_stretch() -> None:
    assert not threads.active()
    with threads.offloaded():
        assert threads.active()
        with threads.offloaded():
            assert threads.active()
        assert threads.active()
        if native.speedups is not None:
            assert native.speedups.threaded()
    assert not threads.active()
    if native.speedups is not None:
        assert not native.speedups.threaded()


async def test_invoke_marks_a_plain_handler_as_threaded() -> None:
    seen: list[Any] = []

    def handler() -> None:
        seen.append((threads.active(), threading.current_thread() is threading.main_thread()))

    await invoke(handler)
    assert seen == [(True, False)]
    assert not threads.active()


async def test_worker_threads_and_the_loop_keep_the_client_exact(fast_switching: None) -> None:
    board = Board()
    sync = Sync(board, "BOARD", sync_all=True)
    client = sync.state()
    subscriber = FakeSession()
    sync.attach(subscriber)
    done = False

    def worker(seed: int) -> None:  # a plain `def` handler: runs in the threadpool
        rng = random.Random(seed)
        for _ in range(1500):
            mutate(rng, board)

    async def loop_side() -> None:
        rng = random.Random(-1)
        while not done:
            mutate(rng, board)  # the loop mutates too (async handlers)
            sync.flush()
            await asyncio.sleep(0)

    async def workers() -> None:
        nonlocal done
        await asyncio.gather(*(invoke(worker, seed) for seed in range(4)))
        done = True

    await asyncio.gather(workers(), loop_side())
    sync.flush()
    for event in subscriber.take():
        client = jsonpatch.apply_patch(client, event["data"])
    assert client == sync.state()
    assert not threads.active()
