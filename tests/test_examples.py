"""The example pages as people use them: on a phone, with a screen reader or
a keyboard, with a refused action or a lost connection, and with a big board.

Debian's Chromium, headless, driven by Playwright; axe-core (an npm dev
dependency) is injected from ``node_modules``. The apps run in this process
(uvicorn in a background thread), so a test can change the Python objects
behind a page and watch what the page does with the patch.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_helpers import ARTIFACTS, ROOT, LiveServer, add_note, chromium, notes_of, wait_until
from playwright.sync_api import Browser, Page, expect

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `examples` is a folder of the repo, not installed

from examples.board.app import Board, Card
from examples.board.app import create_app as board_app
from examples.notes.app import create_app as notes_app

pytestmark = pytest.mark.e2e

TIMEOUT = 15_000  # ms, for every wait on the page
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PHONE, DESKTOP = 375, 1200
BIG = 10_000

# Collected in every page: unhandled promise rejections, and every DOM change
# (and textarea value set) under an element the test watches (`__watch`, `__changes`).
INIT_SCRIPT = """
window.__rejections = [];
addEventListener("unhandledrejection", (e) => window.__rejections.push(String(e.reason)));
window.__records = [];
// A form field's value is no DOM mutation: its setter reports itself.
const value = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, "value");
Object.defineProperty(HTMLTextAreaElement.prototype, "value", { ...value, set(v) {
  window.__records.push({ type: "value", target: this });
  value.set.call(this, v);
} });
window.__watch = (selector) => {
  window.__records = [];
  window.__observer?.disconnect();
  window.__observer = new MutationObserver((rs) => window.__records.push(...rs));
  window.__observer.observe(document.querySelector(selector),
    { subtree: true, childList: true, characterData: true, attributes: true });
};
window.__changes = (itemSelector) => {
  const records = [...window.__records, ...(window.__observer?.takeRecords() ?? [])];
  window.__records = [];
  const touched = new Set(), added = [], removed = [];
  const key = (el) => el?.dataset?.id ?? el?.firstElementChild?.textContent ?? el?.textContent;
  for (const r of records) {
    if (r.type === "childList" && r.target.matches?.(itemSelector.list)) {
      for (const n of r.addedNodes) added.push(key(n));
      for (const n of r.removedNodes) removed.push(key(n));
      continue;
    }
    const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
    const item = el?.closest(itemSelector.item);
    if (item) touched.add(key(item));
    else touched.add("outside:" + (el?.id || el?.className || el?.tagName));
  }
  return { touched: [...touched], added, removed };
};
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


class Pages:
    """Opens pages in fresh browser contexts and records their JS errors."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[Any] = []
        self.errors: list[str] = []
        self.opened: list[Page] = []

    def open(self, url: str, width: int = DESKTOP, height: int = 800) -> Page:
        context = self.browser.new_context(viewport={"width": width, "height": height})
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        page.add_init_script(INIT_SCRIPT)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.goto(url)
        expect(page.locator("#status")).to_have_text("live")
        self.opened.append(page)
        return page

    def rejections(self) -> list[str]:
        return [r for page in self.opened for r in page.evaluate("() => window.__rejections")]

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: Browser) -> Iterator[Pages]:
    opened = Pages(browser)
    yield opened
    # No page may leave an error or an unhandled rejection behind.
    assert opened.errors == []
    assert opened.rejections() == []
    opened.close()


def serve(app: Any) -> Iterator[LiveServer]:
    server = LiveServer(app)
    server.start()
    yield server
    server.close()


@pytest.fixture
def notes_server() -> Iterator[LiveServer]:
    yield from serve(notes_app())


@pytest.fixture
def board() -> Board:
    return Board(
        cards=[
            Card(id="welcome", text="Open this page in a second window", column="doing"),
            Card(id="edit", text="Click a card to edit its text", votes=2),
            Card(id="long", text="A-very-long-word-" * 8, column="done"),
        ]
    )


@pytest.fixture
def board_server(board: Board) -> Iterator[LiveServer]:
    yield from serve(board_app(board))


def card(page: Page, card_id: str) -> Any:
    return page.locator(f'.card[data-id="{card_id}"]')


def active(page: Page) -> dict[str, Any]:
    """What has keyboard focus: its aria-label, class, and the card or note it is in."""
    return page.evaluate(
        """() => { const el = document.activeElement;
        return { label: el.getAttribute('aria-label'), cls: el.className, tag: el.tagName,
                 card: el.closest('.card')?.dataset.id ?? null,
                 column: el.closest('.column')?.dataset.column ?? null }; }"""
    )


def overflow(page: Page) -> dict[str, float]:
    return page.evaluate(
        """() => ({ scroll: document.documentElement.scrollWidth, width: innerWidth,
        status: document.getElementById('status').getBoundingClientRect().right })"""
    )


def axe(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => (await axe.run(document, { resultTypes: ['violations'] })).violations
        .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' '))
        }))"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


# --------------------------------------------------------------------------- #
# phone layout, accessibility


def test_notes_fits_a_phone(pages: Pages, notes_server: LiveServer) -> None:
    page = pages.open(notes_server.url, width=PHONE)
    add_note(page, "Milk")
    add_note(page, "Pneumonoultramicroscopicsilicovolcanoconiosis" * 3)  # one long word
    page.fill("#title", "A title long enough to need the whole width of a phone")
    sizes = overflow(page)
    assert sizes["scroll"] <= sizes["width"], sizes
    assert sizes["status"] <= PHONE, sizes  # the connection state is on screen
    screenshot(page, "notes-375")


def test_board_stacks_its_columns_on_a_phone(pages: Pages, board_server: LiveServer) -> None:
    page = pages.open(board_server.url, width=PHONE)
    expect(card(page, "long")).to_be_visible()
    sizes = overflow(page)
    assert sizes["scroll"] <= sizes["width"], sizes
    assert sizes["status"] <= PHONE, sizes
    widths = page.eval_on_selector_all(".column", "els => els.map(e => e.offsetWidth)")
    assert min(widths) >= PHONE - 40, widths  # one column after the other, full width
    screenshot(page, "board-375")

    wide = pages.open(board_server.url, width=DESKTOP)
    tops = wide.eval_on_selector_all(".column", "els => els.map(e => e.offsetTop)")
    assert len(set(tops)) == 1, tops  # side by side on a desktop


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_notes_has_no_serious_axe_violations(
    pages: Pages, notes_server: LiveServer, width: int
) -> None:
    page = pages.open(notes_server.url, width=width)
    add_note(page, "Milk")
    add_note(page, "Bread")
    assert axe(page) == []


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_board_has_no_serious_axe_violations(
    pages: Pages, board_server: LiveServer, width: int
) -> None:
    page = pages.open(board_server.url, width=width)
    expect(page.locator(".card")).to_have_count(3)
    assert axe(page) == []


def test_status_pills_are_live_regions(
    pages: Pages, notes_server: LiveServer, board_server: LiveServer
) -> None:
    for url in (notes_server.url, board_server.url):
        status = pages.open(url).locator("#status")
        expect(status).to_have_attribute("role", "status")
        expect(status).to_have_attribute("aria-live", "polite")


# --------------------------------------------------------------------------- #
# keyboard focus


def test_board_keeps_focus_on_keyboard_move_and_delete(
    pages: Pages, board_server: LiveServer, board: Board
) -> None:
    page = pages.open(board_server.url)
    card(page, "edit").locator(".right").focus()
    page.keyboard.press("Enter")  # todo → doing
    expect(page.locator('.column[data-column="doing"] .card[data-id="edit"]')).to_be_visible()
    assert active(page) == {**active(page), "card": "edit", "label": "Move right"}
    page.keyboard.press("Enter")  # doing → done: "Move right" is disabled there
    expect(page.locator('.column[data-column="done"] .card[data-id="edit"]')).to_be_visible()
    assert active(page)["card"] == "edit"
    assert active(page)["label"] == "Move left"
    column = lambda: next(c.column for c in board.cards if c.id == "edit")  # noqa: E731
    wait_until(lambda: board_server.call(column) == "done", what="the move on the server")

    # Delete "edit" by keyboard: focus goes to the delete button of its neighbour.
    card(page, "edit").locator(".delete").focus()
    page.keyboard.press("Enter")
    expect(card(page, "edit")).to_have_count(0)
    assert active(page) == {**active(page), "card": "long", "label": "Delete"}
    page.keyboard.press("Enter")  # and again: the column is empty, focus goes to its input
    expect(card(page, "long")).to_have_count(0)
    assert active(page) == {**active(page), "tag": "INPUT", "column": "done", "card": None}
    wait_until(lambda: [c.id for c in board.cards] == ["welcome"], what="the deletes on the server")


def test_notes_keeps_focus_on_keyboard_delete(pages: Pages, notes_server: LiveServer) -> None:
    page = pages.open(notes_server.url)
    for text in ("one", "two", "three"):
        add_note(page, text)
    page.locator("#notes li", has_text="two").locator("button").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#notes li span")).to_have_text(["one", "three"])
    assert active(page)["label"] == "Delete note: three"
    page.keyboard.press("Enter")
    expect(page.locator("#notes li span")).to_have_text(["one"])
    assert active(page)["label"] == "Delete note: one"
    page.keyboard.press("Enter")
    expect(page.locator("#notes li")).to_have_count(0)
    assert active(page)["label"] == "New note"
    notes = notes_of(notes_server, page)
    wait_until(lambda: notes.notes == [], what="the deletes on the server")


# --------------------------------------------------------------------------- #
# failures are shown


def test_board_shows_refused_actions_and_edits_and_a_lost_connection(
    pages: Pages, board_server: LiveServer, board: Board
) -> None:
    page = pages.open(board_server.url)
    # An action the server refuses (text: at most 280 characters).
    field = page.locator('.column[data-column="todo"] input')
    field.evaluate("el => { el.removeAttribute('maxlength'); el.value = 'x'.repeat(300); }")
    field.press("Enter")
    expect(page.locator(".toast")).to_contain_text("Adding the card failed")
    # A direct edit the server refuses.
    card(page, "edit").locator("textarea").evaluate(
        "el => { el.value = 'x'.repeat(300); el.dispatchEvent(new Event('input')); }"
    )
    expect(page.locator(".toast", has_text="Edit refused")).to_have_count(1)
    expect(card(page, "edit").locator("textarea")).to_have_value("Click a card to edit its text")

    board_server.stop()
    expect(page.locator("#banner")).to_contain_text("Connection lost")
    expect(page.locator("#status")).to_have_text("reconnecting…")
    board_server.start()
    expect(page.locator("#status")).to_have_text("live", timeout=20_000)
    expect(page.locator("#banner")).to_be_hidden()
    assert len(board.cards) == 3


def test_notes_shows_a_failed_action(pages: Pages, notes_server: LiveServer) -> None:
    page = pages.open(notes_server.url)
    # A note bigger than the server's frame limit (1 MiB): refused, and said so.
    page.eval_on_selector("#new-note", "el => { el.value = 'x'.repeat(1_100_000); }")
    page.press("#new-note", "Enter")
    expect(page.locator(".toast")).to_contain_text("Adding the note failed")
    assert notes_of(notes_server, page).notes == []
    notes_server.stop()
    expect(page.locator("#banner")).to_contain_text("Connection lost")
    notes_server.start()
    expect(page.locator("#status")).to_have_text("live", timeout=20_000)


# --------------------------------------------------------------------------- #
# keyed rendering


@pytest.fixture
def big_board() -> Board:
    return Board(cards=[Card(id=f"c{i}", text=f"card {i}", column="todo") for i in range(BIG)])


def test_a_big_board_updates_one_card_per_change(pages: Pages, big_board: Board) -> None:
    server = LiveServer(board_app(big_board))
    server.start()
    try:
        page = pages.open(server.url)
        expect(page.locator(".card")).to_have_count(BIG, timeout=60_000)
        items = {"list": ".cards", "item": ".card"}

        def change(fn: Any) -> dict[str, Any]:
            page.evaluate("() => __watch('.board')")
            server.call(fn)
            return wait_until(
                lambda: page.evaluate(
                    "(s) => { const c = __changes(s); return c.touched.length + c.added.length"
                    " + c.removed.length ? c : null; }",
                    items,
                ),
                what="the page to apply the patch",
            )

        async def vote() -> None:
            await big_board.vote("c5000")

        async def edit() -> None:
            big_board.cards[7000].text = "edited on the server"
            await big_board.sync()

        async def delete() -> None:
            await big_board.delete_card("c42")

        assert change(vote) == {"touched": ["c5000"], "added": [], "removed": []}
        assert change(edit) == {"touched": ["c7000"], "added": [], "removed": []}
        # the card's <li> goes, and the column's count changes
        assert change(delete) == {"touched": ["outside:count"], "added": [], "removed": ["c42"]}
        expect(page.locator(".card")).to_have_count(BIG - 1)
        expect(page.locator('.column[data-column="todo"] .count')).to_have_text(str(BIG - 1))

        # Moving a card: it leaves one list and enters the other, nothing else moves.
        page.evaluate("() => __watch('.board')")
        card(page, "c9000").locator(".right").click()
        expect(page.locator('.column[data-column="doing"] .card')).to_have_count(1)
        moved = page.evaluate("(s) => __changes(s)", items)
        assert moved["added"] == ["c9000"] and moved["removed"] == ["c9000"]
        assert set(moved["touched"]) <= {"c9000", "outside:count"}
    finally:
        server.close()


def test_notes_patches_one_item_not_the_list(pages: Pages, notes_server: LiveServer) -> None:
    page = pages.open(notes_server.url)
    notes = notes_of(notes_server, page)

    async def many() -> None:
        notes.notes.extend(f"note {i}" for i in range(2_000))
        await notes.sync()

    notes_server.call(many)
    expect(page.locator("#notes li")).to_have_count(2_000)
    items = {"list": "#notes", "item": "li"}

    async def append() -> None:
        notes.notes.append("the last one")
        await notes.sync()

    page.evaluate("() => __watch('#notes')")
    notes_server.call(append)
    expect(page.locator("#notes li")).to_have_count(2_001)
    assert page.evaluate("(s) => __changes(s)", items) == {
        "touched": [],
        "added": ["the last one"],
        "removed": [],
    }
    page.locator("#notes li", has_text="note 1000").first.locator("button").click()
    expect(page.locator("#notes li")).to_have_count(2_000)
    assert page.evaluate("(s) => __changes(s)", items) == {
        "touched": [],
        "added": [],
        "removed": ["note 1000"],
    }


def test_board_tells_a_viewer_that_the_server_refused(
    pages: Pages, board_server: LiveServer, board: Board
) -> None:
    page = pages.open(board_server.url + "join?role=viewer")
    card(page, "edit").locator(".votes").click()
    expect(page.locator(".toast", has_text="Vote failed: forbidden")).to_have_count(1)
    card(page, "edit").locator(".delete").click()
    expect(page.locator(".toast", has_text="Delete failed: forbidden")).to_have_count(1)
    expect(card(page, "edit")).to_have_count(1)
    assert board_server.call(lambda: [(c.id, c.votes) for c in board.cards][1]) == ("edit", 2)
