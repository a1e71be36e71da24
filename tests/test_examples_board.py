"""The board example's actions, without a browser: the patches they send."""

from __future__ import annotations

import sys

from e2e_helpers import ROOT
from fakes import FakeSession

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `examples` is a folder of the repo, not installed

from examples.board.app import Board, Card


def board_with(n: int) -> tuple[Board, FakeSession]:
    board = Board(cards=[Card(id=f"c{i}", text=f"card {i}") for i in range(n)])
    session = FakeSession()
    board.sync.attach(session)
    return board, session


async def test_delete_removes_the_card_in_place() -> None:
    board, session = board_with(1_000)
    await board.delete_card("c500")
    assert session.take() == [
        {"type": "_PATCH:BOARD", "data": [{"op": "remove", "path": "/cards/500"}]}
    ]
    assert len(board.cards) == 999 and "c500" not in {c.id for c in board.cards}


async def test_delete_of_an_unknown_card_changes_nothing() -> None:
    board, session = board_with(3)
    await board.delete_card("nope")
    assert session.take() == []
    assert [c.id for c in board.cards] == ["c0", "c1", "c2"]


async def test_vote_patches_one_field() -> None:
    board, session = board_with(1_000)
    await board.vote("c999")
    assert session.take() == [
        {
            "type": "_PATCH:BOARD",
            "data": [{"op": "replace", "path": "/cards/999/votes", "value": 1}],
        }
    ]
