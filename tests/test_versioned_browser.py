"""Versioned sync in a real browser (Debian's Chromium, headless, Playwright):
the board example open in two windows, each its own browser context.

- Both windows type into the same card at once; once typing stops they show
  the same text, the server's, in 10 of 10 trials. How long that takes after
  the last keystroke goes to ``WS_SYNC_AGREE_REPORT`` (a JSON file, read by
  ``python -m benchmarks``), never into an assertion.
- Window A goes offline and edits a card while B deletes a card before it:
  after A is back, its edit is on the card it was made on.

Elements are found by the data attributes and roles the page has today
(``[data-id]`` per card, its text box, its Delete button, ``#status``).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import ROOT, LiveServer, chromium, wait_until
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `examples` is a folder of the repo, not installed

from examples.board.app import Board, Card
from examples.board.app import create_app as board_app

pytestmark = pytest.mark.e2e

TIMEOUT = 10_000  # ms, for every wait on the page
TRIALS = 10
KEYSTROKES = 24
AGREE_REPORT = Path(
    os.environ.get("WS_SYNC_AGREE_REPORT", Path(tempfile.gettempdir()) / "ws-sync-agree.json")
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture
def server() -> Iterator[LiveServer]:
    board = Board(cards=[Card(id=f"c{i}", text=f"card {i}") for i in range(1, 5)])
    live = LiveServer(board_app(board))
    live.start()
    yield live
    live.close()


class Window:
    """One browser window on the board, in its own context."""

    def __init__(self, browser: Browser, url: str, errors: list[str]) -> None:
        self.context: BrowserContext = browser.new_context(viewport={"width": 1100, "height": 600})
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT)
        self.page.on("pageerror", lambda e: errors.append(str(e)))
        self.page.goto(url)
        self.expect_state("open")

    def expect_state(self, state: str) -> None:
        expect(self.page.locator("#status")).to_have_attribute("data-state", state)

    def card(self, card_id: str) -> Locator:
        return self.page.locator(f'[data-id="{card_id}"]')

    def text_box(self, card_id: str) -> Locator:
        return self.card(card_id).get_by_role("textbox")

    def delete_button(self, card_id: str) -> Locator:
        """By its accessible name, or by its tooltip while its name is the sign it shows."""
        card = self.card(card_id)
        by_name = card.get_by_role("button", name=re.compile("delete", re.I))
        return by_name.or_(card.locator('button[title="Delete" i]')).first

    def text(self, card_id: str) -> str:
        return self.text_box(card_id).input_value()

    def type_concurrently(self, card_id: str, marker: str, count: int, seed: int) -> None:
        """Start typing `count` characters into the card at the caret, one
        every 5-30 ms, in the page itself: this returns at once, so that the
        other window types at the same time. `typed()` says when it is done."""
        self.page.evaluate(
            """([id, marker, count, seed]) => {
              const box = document.querySelector(`[data-id="${id}"] textarea`);
              let s = seed, n = 0;
              const random = () => ((s = (s * 16807) % 2147483647) / 2147483647);
              window.__typed = 0;
              const key = () => {
                box.focus();
                box.setSelectionRange(box.value.length, box.value.length);
                document.execCommand("insertText", false, marker);
                window.__typed = ++n;
                window.__lastKey = Date.now();
                if (n < count) setTimeout(key, 5 + random() * 25);
              };
              setTimeout(key, random() * 10);
            }""",
            [card_id, marker, count, seed],
        )

    def typed(self) -> int:
        return int(self.page.evaluate("() => window.__typed ?? 0"))

    def last_key(self) -> float:
        """Wall-clock time of the last keystroke, in seconds (the machine's clock)."""
        return float(self.page.evaluate("() => window.__lastKey")) / 1000

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def windows(browser: Browser, server: LiveServer) -> Iterator[tuple[Window, Window, list[str]]]:
    errors: list[str] = []
    a = Window(browser, server.url, errors)
    b = Window(browser, server.url, errors)
    yield a, b, errors
    a.close()
    b.close()


def server_text(server: LiveServer, card_id: str) -> str | None:
    board: Board = server.app.state.board
    return server.call(lambda: next((c.text for c in board.cards if c.id == card_id), None))


def test_two_windows_typing_into_one_card_agree_once_typing_stops(
    server: LiveServer, windows: tuple[Window, Window, list[str]]
) -> None:
    a, b, errors = windows
    board: Board = server.app.state.board
    agreed: list[float] = []
    for trial in range(TRIALS):
        card_id = f"t{trial}"

        async def add(card_id: str = card_id) -> None:
            board.cards.append(Card(id=card_id, text=""))
            await board.sync()

        server.call(add)
        for w in (a, b):
            expect(w.text_box(card_id)).to_have_value("")
        a.type_concurrently(card_id, "a", KEYSTROKES, seed=2 * trial + 1)
        b.type_concurrently(card_id, "b", KEYSTROKES, seed=2 * trial + 2)
        poll(
            lambda: a.typed() == KEYSTROKES and b.typed() == KEYSTROKES,
            timeout=20,
            what="both windows to finish typing",
        )
        stopped = max(a.last_key(), b.last_key())

        def agree(card_id: str = card_id) -> str | None:
            text = server_text(server, card_id)
            same = text == a.text(card_id) == b.text(card_id)
            return text if same and text else None

        text = poll(agree, timeout=15, what=f"trial {trial}: both windows and the server to agree")
        agreed.append(time.time() - stopped)
        assert set(text) <= {"a", "b"}, f"trial {trial}: {text!r}"
        # and it stays so: no write still on its way changes it afterwards
        time.sleep(0.3)
        assert agree() == text, (
            f"trial {trial}: {text!r} then {a.text(card_id)!r}, {b.text(card_id)!r}"
        )
    write_agree_report(agreed)
    assert len(agreed) == TRIALS
    a.expect_state("open")
    b.expect_state("open")
    assert not errors


def poll(check: Any, timeout: float, what: str) -> Any:
    """`wait_until` without its pause between checks, so the end of typing and
    the moment of agreement are seen as they come (a check is a few round trips)."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
    return value


def write_agree_report(seconds: list[float]) -> None:
    """Time from the last keystroke to agreement, per trial, for the benchmarks."""
    report: dict[str, Any] = {
        "trials": len(seconds),
        "keystrokes": KEYSTROKES,
        "seconds": seconds,
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    AGREE_REPORT.write_text(json.dumps(report))


def test_an_offline_edit_lands_on_its_card_though_a_card_before_it_was_deleted(
    server: LiveServer, windows: tuple[Window, Window, list[str]]
) -> None:
    a, b, errors = windows
    board: Board = server.app.state.board
    for w in (a, b):
        expect(w.text_box("c3")).to_have_value("card 3")

    # A goes offline: the network is gone, and the page hears the browser say so.
    a.context.set_offline(True)
    a.page.evaluate("() => window.dispatchEvent(new Event('offline'))")
    a.expect_state("offline")
    a.text_box("c3").fill("edited offline")

    # Meanwhile B deletes c1, a card before c3: c3's position changes.
    b.delete_button("c1").click()
    wait_until(
        lambda: server.call(lambda: [c.id for c in board.cards]) == ["c2", "c3", "c4"],
        what="c1 deleted on the server",
    )
    expect(b.card("c1")).to_have_count(0)
    expect(a.text_box("c3")).to_have_value("edited offline")  # still A's view

    a.context.set_offline(False)
    a.page.evaluate("() => window.dispatchEvent(new Event('online'))")
    a.expect_state("open")

    def texts() -> dict[str, str]:
        return server.call(lambda: {c.id: c.text for c in board.cards})

    wait_until(
        lambda: "edited offline" in texts().values(),
        timeout=5,
        what=f"A's offline edit on the server (server: {texts()}, A shows c3 {a.text('c3')!r})",
    )
    assert texts() == {"c2": "card 2", "c3": "edited offline", "c4": "card 4"}
    for w in (a, b):
        expect(w.card("c1")).to_have_count(0)
        for card_id, text in texts().items():
            expect(w.text_box(card_id)).to_have_value(text)
    assert not errors
