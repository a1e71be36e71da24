"""Sign-in and roles in a real browser: the board example with
``sign_in=True`` in Debian's Chromium, driven by Playwright. Signed out, the
server refuses the page's WebSocket; signed in, the board works; a viewer's
clicks and edits reach the server and are refused there (the page shows the
controls: the refusal is not the page's doing)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from e2e_helpers import ARTIFACTS, ROOT, LiveServer, chromium, wait_until
from playwright.sync_api import Browser, BrowserContext, Page, expect

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.board.app import Board, Card
from examples.board.app import create_app as board_app

pytestmark = pytest.mark.e2e

TIMEOUT = 10_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture
def server() -> Iterator[LiveServer]:
    board = Board(cards=[Card(id="c1", text="Ship it", votes=1)])
    live = LiveServer(board_app(board, sign_in=True))
    live.start()
    yield live
    live.close()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def open_page(browser: Browser, contexts: list[BrowserContext], url: str) -> Page:
    """A page in a browser of its own (own cookies)."""
    context = browser.new_context()
    contexts.append(context)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(url)
    return page


def subscribers(server: LiveServer) -> int:
    board: Board = server.app.state.board
    return server.call(lambda: len(board.sync.sessions))  # type: ignore[attr-defined]


def test_signed_out_the_page_is_refused_and_signed_in_it_works(
    server: LiveServer, browser: Browser, contexts: list[BrowserContext]
) -> None:
    page = open_page(browser, contexts, server.url)
    expect(page.locator("#status")).to_have_text("reconnecting…")  # its socket was refused
    assert subscribers(server) == 0  # no session was made
    assert page.context.cookies() == []

    page.goto(server.url + "join")  # signs in as an editor, back to the board
    expect(page.locator("#status")).to_have_text("live")
    assert [c["name"] for c in page.context.cookies()] == ["board_member"]
    page.click(".card .votes")
    expect(page.locator(".card .votes")).to_have_text("▲ 2")
    board: Board = server.app.state.board
    assert server.call(lambda: board.cards[0].votes) == 2


def test_a_viewers_edits_are_refused_by_the_server(
    server: LiveServer, browser: Browser, contexts: list[BrowserContext]
) -> None:
    board: Board = server.app.state.board
    viewer = open_page(browser, contexts, server.url + "join?role=viewer")
    editor = open_page(browser, contexts, server.url + "join?role=editor")
    for page in (viewer, editor):
        expect(page.locator("#status")).to_have_text("live")
        expect(page.locator(".card textarea")).to_have_value("Ship it")  # both read it

    viewer.click(".card .votes")  # the controls are there: the server says no
    viewer.fill('.column[data-column="todo"] input', "Spam")
    viewer.press('.column[data-column="todo"] input', "Enter")
    viewer.fill(".card textarea", "Vandalized")  # last: its refusal comes after the others'
    expect(viewer.locator(".card textarea")).to_have_value("Ship it")  # the server's _SET
    expect(viewer.locator(".card")).to_have_count(1)
    expect(viewer.locator(".card .votes")).to_have_text("▲ 1")
    assert server.call(lambda: (board.cards[0].text, board.cards[0].votes, len(board.cards))) == (
        "Ship it",
        1,
        1,
    )

    editor.fill(".card textarea", "Ship it today")  # an editor's edit goes through
    wait_until(lambda: server.call(lambda: board.cards[0].text) == "Ship it today")
    expect(viewer.locator(".card textarea")).to_have_value("Ship it today")
    ARTIFACTS.mkdir(exist_ok=True)
    viewer.screenshot(path=ARTIFACTS / "board-viewer.png")
