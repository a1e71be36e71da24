"""`python -m benchmarks.ui_keystroke [--cards N] [--keys K] [--out DIR | --save]`

How long a keystroke in a card of the board example takes to reach the
screen: from the `input` event (its timestamp) to the first animation frame
after the page updated its DOM, the median of K keystrokes typed into the
middle card, in headless Debian chromium. Measured with the board at N cards
and at 10 cards in the same run: keyed rendering should make the two equal.
The server is the example app itself (uvicorn on 127.0.0.1); the page writes
each keystroke as a `_PATCH` and gets its acknowledgement back while typing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from .common import BENCH_DIR, REPO_DIR, dump_json, environment, md_table

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
TRACKED = BENCH_DIR / "results"
UNTRACKED = REPO_DIR / "test-artifacts" / "benchmarks"

# After the app's own handler (registered first) has updated the DOM, the
# next animation frame is the first one that can paint the keystroke.
PROBE = """(id) => {
  window.__latency = [];
  const field = document.querySelector(`.card[data-id="${id}"] textarea`);
  field.addEventListener("input", (e) => {
    const start = e.timeStamp;
    requestAnimationFrame(() => window.__latency.push(performance.now() - start));
  });
  field.focus();
  field.setSelectionRange(field.value.length, field.value.length);
}"""


class Server:
    """The board example with `cards` cards, served from a background thread."""

    def __init__(self, cards: int) -> None:
        if str(REPO_DIR) not in sys.path:
            sys.path.insert(0, str(REPO_DIR))
        from examples.board.app import Board, Card, create_app

        board = Board(cards=[Card(id=f"c{i}", text=f"card {i}") for i in range(cards)])
        config = uvicorn.Config(create_app(board), host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the board server did not start")
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def measure(browser: Any, cards: int, keys: int) -> dict[str, Any]:
    server = Server(cards)
    try:
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        t0 = time.monotonic()
        page.goto(server.url)
        page.wait_for_function(
            f"document.querySelectorAll('.card').length === {cards}", timeout=120_000
        )
        load = time.monotonic() - t0
        middle = f"c{cards // 2}"
        page.evaluate(PROBE, middle)
        for _ in range(keys):
            page.keyboard.type("x")
            page.wait_for_timeout(100)  # one keystroke at a time, as typed
        page.wait_for_function(f"window.__latency.length === {keys}")
        samples = page.evaluate("() => window.__latency")
        page.close()
    finally:
        server.stop()
    return {
        "cards": cards,
        "keys": keys,
        "median_ms": statistics.median(samples),
        "max_ms": max(samples),
        "samples_ms": samples,
        "load_s": load,
    }


def row(run: dict[str, Any]) -> list[str]:
    ms = [f"{run[k]:.1f} ms" for k in ("median_ms", "max_ms")]
    return [f"{run['cards']:,}", *ms, f"{run['load_s']:.1f} s"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ui_keystroke", description=__doc__)
    p.add_argument("--cards", type=int, default=10_000)
    p.add_argument("--keys", type=int, default=20)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, help="default test-artifacts/benchmarks (untracked)")
    where.add_argument("--save", action="store_true", help="write to benchmarks/results")
    args = p.parse_args(argv)
    out: Path = TRACKED if args.save else (args.out or UNTRACKED)

    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            runs = [measure(browser, n, args.keys) for n in (10, args.cards)]
        finally:
            browser.close()
    small, big = runs
    target = 50.0
    rows = [row(r) for r in runs]
    verdict = "met" if big["median_ms"] <= target else "missed"
    text = "\n".join(
        [
            "# Keystroke to screen in the board example",
            "",
            f"Median of {args.keys} keystrokes, `input` event to the first animation frame "
            "after the DOM update, headless chromium.",
            "",
            md_table(["cards", "median", "max", "page load"], rows),
            "",
            f"Target: <= {target:.0f} ms at {big['cards']:,} cards: **{verdict}** "
            f"({big['median_ms']:.1f} ms; {big['median_ms'] / small['median_ms']:.2f}x the "
            f"10-card board).",
            "",
        ]
    )
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ui_keystroke.md").write_text(text)
    dump_json(out / "ui_keystroke.json", {"runs": runs, "environment": environment()})
    print(f"results in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
