"""The examples in a real browser: Debian's Chromium, headless, driven by Playwright.

Each example app runs in this process (uvicorn in a background thread), so a
test can look at the Python objects behind the page; one test runs an example
as its users do, ``python -m examples.board``. Never downloads a browser: a
missing Chromium fails these tests. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_helpers import (
    ARTIFACTS,
    ROOT,
    ExampleProcess,
    LiveServer,
    add_note,
    chromium,
    notes_of,
    wait_until,
)
from playwright.sync_api import Browser, Page, expect

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `examples` is a folder of the repo, not installed

from examples.board.app import Board
from examples.board.app import create_app as board_app
from examples.notes.app import create_app as notes_app

pytestmark = pytest.mark.e2e

TIMEOUT = 10_000  # ms, for every wait on the page


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


class Pages:
    """Opens pages, each in its own browser context (own storage: another
    user, as a second browser would be), and records their JS errors."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[Any] = []
        self.errors: list[str] = []

    def open(self, url: str, width: int = 900, height: int = 600) -> Page:
        context = self.browser.new_context(viewport={"width": width, "height": height})
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.goto(url)
        expect(page.locator("#status")).to_have_text("live", timeout=TIMEOUT)
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: Browser) -> Iterator[Pages]:
    opened = Pages(browser)
    yield opened
    opened.close()


@pytest.fixture
def notes_server() -> Iterator[LiveServer]:
    server = LiveServer(notes_app())
    server.start()
    yield server
    server.close()


@pytest.fixture
def board_server() -> Iterator[LiveServer]:
    server = LiveServer(board_app())
    server.start()
    yield server
    server.close()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png")


def progress(page: Page) -> float:
    return page.eval_on_selector("#progress", "el => el.value")


# --------------------------------------------------------------------------- #
# notes


def test_notes_typing_reaches_the_server_and_server_changes_reach_the_page(
    notes_server: LiveServer, pages: Pages
) -> None:
    page = pages.open(notes_server.url)
    expect(page.locator("#title")).to_have_value("My Notes")  # from the server's _SET
    notes = notes_of(notes_server, page)

    # Typing: one _PATCH per keystroke, applied to the Python object.
    page.fill("#title", "")
    page.locator("#title").press_sequentially("  Groceries ", delay=20)
    wait_until(lambda: notes_server.call(lambda: notes.title) == "  Groceries ")
    # Enter commits with the RENAME action (trimmed); its patch comes back.
    page.press("#title", "Enter")
    expect(page.locator("#title")).to_have_value("Groceries")
    assert notes_server.call(lambda: notes.title) == "Groceries"

    # ADD_NOTE: the page shows the note only when the server's patch arrives,
    # with total_length, which only the server computes.
    add_note(page, "Milk")
    add_note(page, "Bread")
    expect(page.locator("#notes li span")).to_have_text(["Milk", "Bread"])
    expect(page.locator("#summary")).to_have_text("2 note(s) · 9 characters")
    assert notes_server.call(lambda: list(notes.notes)) == ["Milk", "Bread"]

    # A change made on the server alone reaches the page.
    async def server_edit() -> None:
        notes.notes.insert(0, "Eggs")
        notes.title = "Shopping"
        await notes.sync()

    notes_server.call(server_edit)
    expect(page.locator("#notes li span")).to_have_text(["Eggs", "Milk", "Bread"])
    expect(page.locator("#title")).to_have_value("Shopping")
    expect(page.locator("#summary")).to_have_text("3 note(s) · 13 characters")

    # Deleting is a local edit (a `remove` patch); the server applies it.
    page.locator("#notes li", has_text="Milk").locator("button").click()
    wait_until(lambda: notes_server.call(lambda: list(notes.notes)) == ["Eggs", "Bread"])
    expect(page.locator("#notes li span")).to_have_text(["Eggs", "Bread"])
    expect(page.locator("#summary")).to_have_text("2 note(s) · 9 characters")

    # A reload keeps the session (its id is in sessionStorage): same notes.
    page.reload()
    expect(page.locator("#status")).to_have_text("live")
    expect(page.locator("#notes li span")).to_have_text(["Eggs", "Bread"])
    assert notes_of(notes_server, page) is notes

    # Another browser (another user session) has notes of its own.
    other = pages.open(notes_server.url)
    expect(other.locator("#title")).to_have_value("My Notes")
    expect(other.locator("#notes li")).to_have_count(0)
    assert notes_of(notes_server, other) is not notes
    assert not pages.errors


def test_notes_task_progress_advances_and_cancel_stops_it(
    notes_server: LiveServer, pages: Pages
) -> None:
    page = pages.open(notes_server.url, width=760, height=500)
    notes = notes_of(notes_server, page)
    page.fill("#title", "Trip to Lisbon")
    add_note(page, "Book the flights")
    add_note(page, "Ask Ana about the tram pass")
    expect(page.locator("#cancel")).to_be_disabled()

    page.click("#process")
    page.wait_for_function("() => document.getElementById('progress').value >= 0.2")
    expect(page.locator("#cancel")).to_be_enabled()
    expect(page.locator("#process")).to_be_disabled()
    assert notes_server.call(lambda: list(notes.sync.running_tasks)) == ["PROCESS"]
    before = progress(page)
    time.sleep(0.35)
    assert progress(page) > before, "the progress bar does not advance"
    expect(page.locator("#task-status")).to_contain_text("processing…")
    page.locator("#title").blur()
    screenshot(page, "notes")

    page.click("#cancel")
    expect(page.locator("#task-status")).to_have_attribute("data-status", "cancelled")
    expect(page.locator("#task-status")).to_have_text("cancelled")
    stopped = progress(page)
    assert 0.2 <= stopped < 1
    time.sleep(0.6)  # six steps of the task, had it gone on
    assert progress(page) == stopped, "progress still moves after cancel"
    assert notes_server.call(lambda: list(notes.sync.running_tasks)) == []
    expect(page.locator("#process")).to_be_enabled()
    expect(page.locator("#cancel")).to_be_disabled()
    assert not pages.errors


def test_notes_page_reconnects_after_a_server_restart_and_resumes_its_session(
    notes_server: LiveServer, pages: Pages
) -> None:
    page = pages.open(notes_server.url)
    add_note(page, "Before the restart")
    notes = notes_of(notes_server, page)

    notes_server.stop()
    expect(page.locator("#status")).not_to_have_text("live")

    async def edit_while_down() -> None:
        notes.notes.append("Added while the page was away")
        await notes.sync()  # nobody is connected: sends nothing, loses nothing

    notes_server.call(edit_while_down)
    page.fill("#title", "Typed while offline")  # queued by the page, sent after the _SET
    notes_server.start()

    # Reconnected by itself (backoff), same user session, state sent whole.
    expect(page.locator("#status")).to_have_text("live", timeout=15_000)
    expect(page.locator("#notes li span")).to_have_text(
        ["Before the restart", "Added while the page was away"]
    )
    wait_until(lambda: notes_server.call(lambda: notes.title) == "Typed while offline")
    expect(page.locator("#title")).to_have_value("Typed while offline")
    assert len(notes_server.app.state.sessions) == 1
    assert notes_of(notes_server, page) is notes
    add_note(page, "After the restart")
    assert notes_server.call(lambda: notes.notes[-1]) == "After the restart"
    assert not pages.errors


# --------------------------------------------------------------------------- #
# board


def card(page: Page, card_id: str) -> Any:
    return page.locator(f'.card[data-id="{card_id}"]')


def test_board_is_shared_live_between_two_windows(board_server: LiveServer, pages: Pages) -> None:
    board: Board = board_server.app.state.board
    a = pages.open(board_server.url, width=1100, height=520)
    b = pages.open(board_server.url, width=1100, height=520)
    expect(card(b, "welcome").locator("textarea")).to_have_value(
        "Open this page in a second window"
    )

    # An action in A (ADD_CARD) shows up in B.
    a.fill('.column[data-column="todo"] input', "Write the release notes")
    a.press('.column[data-column="todo"] input', "Enter")
    new_id = wait_until(
        lambda: board_server.call(
            lambda: next((c.id for c in board.cards if c.text == "Write the release notes"), None)
        ),
        what="the new card on the server",
    )
    expect(card(b, new_id).locator("textarea")).to_have_value("Write the release notes")
    expect(b.locator('.column[data-column="todo"] .card')).to_have_count(2)

    # A direct edit in B (a _PATCH from store.set) reaches the server and A.
    b.fill(f'.card[data-id="{new_id}"] textarea', "Write the release notes for 0.7")
    expect(card(a, new_id).locator("textarea")).to_have_value("Write the release notes for 0.7")
    assert board_server.call(lambda: board.cards[-1].text) == "Write the release notes for 0.7"

    # An edit the model refuses (text: max 280 characters, past the textarea's
    # maxlength by script) is undone in B by the server's _SET, never seen in A.
    card(b, new_id).locator("textarea").evaluate(
        "el => { el.value = 'x'.repeat(300); el.dispatchEvent(new Event('input')); }"
    )
    expect(card(b, new_id).locator("textarea")).to_have_value("Write the release notes for 0.7")
    assert board_server.call(lambda: board.cards[-1].text) == "Write the release notes for 0.7"
    expect(card(a, new_id).locator("textarea")).to_have_value("Write the release notes for 0.7")

    # Moving is a direct edit too: /cards/<i>/column, validated as a Column.
    card(a, new_id).locator('[title="Move right"]').click()
    expect(b.locator(f'.column[data-column="doing"] .card[data-id="{new_id}"]')).to_be_visible()
    assert board_server.call(lambda: board.cards[-1].column) == "doing"

    # B keeps typing focus while A's changes arrive (the page patches its DOM).
    b.locator(f'.card[data-id="{new_id}"] textarea').focus()
    card(a, "edit").locator(".votes").click()
    card(a, "edit").locator(".votes").click()
    expect(card(b, "edit").locator(".votes")).to_have_text("▲ 4")
    assert b.evaluate("() => document.activeElement.closest('.card')?.dataset.id") == new_id
    b.keyboard.type("!")
    expect(card(a, new_id).locator("textarea")).to_have_value("Write the release notes for 0.7!")

    a.fill('.column[data-column="done"] input', "Ship the examples")
    a.press('.column[data-column="done"] input', "Enter")
    expect(b.locator('.column[data-column="done"] .card')).to_have_count(1)
    a.locator('.column[data-column="done"] input').blur()
    a.mouse.move(1, 1)  # no hover highlight in the picture
    screenshot(a, "board")

    # Deleting (an action, by card id) removes it everywhere.
    card(b, "welcome").locator('[title="Delete"]').click()
    expect(card(a, "welcome")).to_have_count(0)
    assert "welcome" not in board_server.call(lambda: [c.id for c in board.cards])
    assert not pages.errors


def test_board_command_restarts_and_the_page_reconnects(pages: Pages) -> None:
    """`python -m examples.board` (PORT from the environment), stopped and
    started again: the page reconnects and shows the new server's state."""
    server = ExampleProcess("board")
    server.start()
    try:
        page = pages.open(server.url)
        expect(card(page, "welcome")).to_be_visible()
        page.fill('.column[data-column="todo"] input', "Only on the old server")
        page.press('.column[data-column="todo"] input', "Enter")
        added = page.locator('.column[data-column="todo"] .card textarea').nth(1)
        expect(added).to_have_value("Only on the old server")

        server.stop()
        expect(page.locator("#status")).not_to_have_text("live")
        server.start()
        expect(page.locator("#status")).to_have_text("live", timeout=20_000)
        expect(page.locator(".card")).to_have_count(2)  # the fresh board, from its _SET
        expect(card(page, "welcome")).to_be_visible()
        expect(card(page, "edit").locator("textarea")).to_have_value(
            "Click a card to edit its text"
        )
        assert not pages.errors
    finally:
        server.close()
