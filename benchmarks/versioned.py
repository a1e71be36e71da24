# ruff: noqa: RUF001
"""Section 8: what versioned sync (protocol 2) costs and saves.

- The transform: a client write carried past the commits made since its
  version (`ws_sync.transform`), over histories of growing length, in ns per
  (write op, committed op) pair. Its cost is linear in both.
- Resume: the bytes a client that missed one change gets on reconnect (the
  missed `_PATCH` frames) next to the whole state (`_SET`), at 10, 10k and
  100k items.
- Time to agree: two browser windows type into one card at once; the time
  from the last keystroke until both show the server's text, as
  ``tests/test_versioned_browser.py`` last measured it (when its report is there).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

from ws_sync import pointer, sync_only
from ws_sync.transform import transform

from .common import (
    Config,
    Progress,
    SectionResult,
    Stats,
    Target,
    fmt_bytes,
    fmt_count,
    fmt_ratio,
    fmt_time,
    interleaved,
    md_table,
)
from .plots import COLORS, pyplot

KEY = "versioned"
TITLE = "8. Versioned sync"
RESUME_GOAL = 20_000  # bytes, a reconnect after one change at 100k items
AGREE_REPORT = Path(
    os.environ.get("WS_SYNC_AGREE_REPORT", Path(tempfile.gettempdir()) / "ws-sync-agree.json")
)


# --------------------------------------------------------------------------- #
# transform


def _is_list(tokens: tuple[str, ...]) -> bool:
    return tokens == ("cards",)


def committed_ops(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """`n` ops as a busy board commits them: card inserts, removes and moves,
    text edits, the title, dict keys."""
    rng = random.Random(seed)
    size = 200
    ops: list[dict[str, Any]] = []
    for i in range(n):
        kind = rng.choice(["add", "remove", "move", "text", "text", "title", "tag"])
        if kind == "add":
            ops.append({"op": "add", "path": f"/cards/{rng.randint(0, size)}", "value": {"id": i}})
            size += 1
        elif kind == "remove" and size > 1:
            ops.append({"op": "remove", "path": f"/cards/{rng.randrange(size)}"})
            size -= 1
        elif kind == "move":
            a, b = rng.randrange(size), rng.randrange(size)
            ops.append({"op": "move", "from": f"/cards/{a}", "path": f"/cards/{b}"})
        elif kind == "title":
            ops.append({"op": "replace", "path": "/title", "value": f"t{i}"})
        elif kind == "tag":
            ops.append({"op": "add", "path": f"/tags/k{rng.randrange(20)}", "value": i})
        else:
            ops.append(
                {"op": "replace", "path": f"/cards/{rng.randrange(size)}/text", "value": f"x{i}"}
            )
    return ops


WRITE: list[dict[str, Any]] = [
    {"op": "replace", "path": "/cards/150/text", "value": "mine"},
    {"op": "add", "path": "/cards/120", "value": {"id": "new"}},
    {"op": "move", "from": "/cards/3", "path": "/cards/190"},
    {"op": "replace", "path": "/tags/k3", "value": 1},
]
"""A client write of four ops, made on the version before the history."""


def _split() -> Any:
    return pointer.split("/cards/12/text")


def measure_transform(cfg: Config, progress: Progress) -> list[dict[str, Any]]:
    rows = []
    for n in cfg.pick([10, 100, 1_000, 10_000], [10, 100]):
        history = committed_ops(n)

        def call(history: list[dict[str, Any]] = history) -> Any:
            return transform(WRITE, history, _is_list)

        times = interleaved({"transform": call, "split": _split}, cfg.pick(9, 3), 0.01)
        stats = Stats.of(times["transform"])
        split = Stats.of(times["split"]).median
        pairs = len(WRITE) * n
        kept, dropped = call()
        rows.append(
            {
                "committed": n,
                "pairs": pairs,
                "seconds": stats.to_dict(),
                "ns_per_pair": stats.median / pairs * 1e9,
                "splits_per_pair": stats.median / pairs / split,
                "split_ns": split * 1e9,
                "dropped": len(dropped),
                "kept": len(kept),
            }
        )
        progress(f"transform past {n} commits: {stats.median / pairs * 1e9:.0f} ns per op pair")
    return rows


# --------------------------------------------------------------------------- #
# resume


class Items:
    @sync_only("ITEMS", items=...)
    def __init__(self, n: int) -> None:
        self.items = [{"id": i, "text": f"item {i}", "done": False} for i in range(n)]


def measure_resume(cfg: Config, progress: Progress) -> list[dict[str, Any]]:
    rows = []
    for n in cfg.pick([10, 10_000, 100_000], [10, 1_000]):
        obj = Items(n)
        sync = obj.sync
        sync.flush()
        held = (sync.log.epoch, sync.log.version)
        obj.items[n // 2]["done"] = True  # the one change the client missed
        sync.flush()
        resume = sync.resume_frames(held)
        full = sync.set_frame()
        resume_bytes = sum(len(f.encode()) for f in resume)
        rows.append(
            {
                "items": n,
                "resume_bytes": resume_bytes,
                "resume_frames": len(resume),
                "set_bytes": len(full.encode()),
            }
        )
        progress(f"resume at {fmt_count(n)} items: {resume_bytes} B vs _SET {len(full.encode())} B")
    return rows


# --------------------------------------------------------------------------- #
# time to agree (from the browser test)


def read_agree(path: Path = AGREE_REPORT) -> dict[str, Any] | None:
    try:
        report: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return report if report.get("seconds") else None


# --------------------------------------------------------------------------- #


def run(cfg: Config, progress: Progress) -> SectionResult:
    rows = measure_transform(cfg, progress)
    resume = measure_resume(cfg, progress)
    agree = read_agree()
    return _report(cfg, rows, resume, agree)


def _report(
    cfg: Config,
    rows: list[dict[str, Any]],
    resume: list[dict[str, Any]],
    agree: dict[str, Any] | None,
) -> SectionResult:
    largest = resume[-1]
    at_100k = largest["items"] >= 100_000
    targets = [
        Target(
            f"resume after one change, {fmt_count(largest['items'])} items: bytes on the wire",
            f"≤ {RESUME_GOAL // 1000} KB at 100k",
            f"{fmt_bytes(largest['resume_bytes'])} (vs _SET {fmt_bytes(largest['set_bytes'])})",
            largest["resume_bytes"] <= RESUME_GOAL if at_100k else None,
        )
    ]
    headline = [
        (
            "transform, ns per (write op, committed op)",
            " / ".join(f"{r['ns_per_pair']:.0f} @ {fmt_count(r['committed'])}" for r in rows),
        ),
        (
            "resume vs _SET after one change",
            " / ".join(
                f"{fmt_bytes(r['resume_bytes'])} vs {fmt_bytes(r['set_bytes'])}"
                f" @ {fmt_count(r['items'])}"
                for r in resume
            ),
        ),
    ]
    if agree is not None:
        s = Stats.of(agree["seconds"])
        headline.append(
            (
                f"two windows typing into one card: time to agree ({agree['trials']} trials)",
                f"median {fmt_time(s.median)}, max {fmt_time(s.max)}",
            )
        )
    plot = _plot(cfg, rows, resume)
    md = _markdown(rows, resume, agree, plot.name)
    data = {"transform": rows, "resume": resume, "agree": agree}
    return SectionResult(KEY, TITLE, md, targets, [plot], data, headline)


def _markdown(
    rows: list[dict[str, Any]],
    resume: list[dict[str, Any]],
    agree: dict[str, Any] | None,
    plot: str,
) -> str:
    transform_rows = [
        [
            f"{r['committed']:,}",
            f"{r['pairs']:,}",
            fmt_time(r["seconds"]["median"]),
            f"{r['ns_per_pair']:.0f}",
            f"{r['splits_per_pair']:.1f}",
            f"{r['kept']} kept, {r['dropped']} dropped",
        ]
        for r in rows
    ]
    resume_rows = [
        [
            f"{r['items']:,}",
            f"{fmt_bytes(r['resume_bytes'])} ({r['resume_frames']} frame)",
            fmt_bytes(r["set_bytes"]),
            fmt_ratio(r["set_bytes"] / r["resume_bytes"]),
        ]
        for r in resume
    ]
    lines = [
        f"## {TITLE}",
        "",
        f"![versioned]({plot})",
        "",
        "### Transform cost",
        "",
        "A write of 4 ops (a card's text, an insert, a move, a dict key) carried past",
        "a history of mixed commits (card inserts, removes, moves, text edits, title,",
        "dict keys) on a 200-card list: `ws_sync.transform.transform`, median of samples.",
        "",
        "The machine is shared and noisy: each row also times one `pointer.split` of",
        "`/cards/12/text` interleaved with the transform, and gives the cost per pair in those.",
        "",
        md_table(
            ["commits", "op pairs", "transform", "ns / pair", "splits / pair", "write after"],
            transform_rows,
        ),
        "",
        "### Resume after one change",
        "",
        "A client at version n reconnects after one field changed: the `_PATCH` frames",
        "it missed, against the `_SET` a protocol-1 reconnect gets.",
        "",
        md_table(["items", "resume", "_SET", "saved"], resume_rows),
        "",
        "### Time to agree",
        "",
    ]
    if agree is None:
        lines.append(
            "Not measured: run `pytest tests/test_versioned_browser.py` first "
            f"(its report goes to `{AGREE_REPORT.name}` in the temp dir)."
        )
    else:
        s = Stats.of(agree["seconds"])
        lines += [
            f"Two Chromium windows on the board type {agree['keystrokes']} characters each",
            "into one card at once (a keystroke every 5–30 ms); from the last keystroke until both",
            f"windows and the server show the same text, over {agree['trials']} trials "
            f"({agree['measured']}):",
            "",
            md_table(
                ["median", "p25–p75", "max"],
                [[fmt_time(s.median), f"{fmt_time(s.p25)}–{fmt_time(s.p75)}", fmt_time(s.max)]],
            ),
        ]
    return "\n".join(lines) + "\n"


def _plot(cfg: Config, rows: list[dict[str, Any]], resume: list[dict[str, Any]]) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].plot(
        [r["committed"] for r in rows],
        [r["ns_per_pair"] for r in rows],
        marker="o",
        color=COLORS["ours"],
    )
    axes[0].set_xscale("log")
    axes[0].set_xlabel("commits since the write's version")
    axes[0].set_ylabel("ns per op pair")
    axes[0].set_ylim(bottom=0)
    axes[0].set_title("transform cost")
    xs = list(range(len(resume)))
    axes[1].bar(
        [x - 0.2 for x in xs],
        [r["resume_bytes"] for r in resume],
        0.4,
        color=COLORS["ours"],
        label="resume",
    )
    axes[1].bar(
        [x + 0.2 for x in xs],
        [r["set_bytes"] for r in resume],
        0.4,
        color=COLORS["reference"],
        label="_SET",
    )
    axes[1].set_yscale("log")
    axes[1].set_xticks(xs)
    axes[1].set_xticklabels([f"{fmt_count(r['items'])} items" for r in resume])
    axes[1].set_ylabel("bytes")
    axes[1].legend(fontsize=7)
    axes[1].set_title("reconnect after one change")
    fig.tight_layout()
    path = cfg.out_dir / "versioned.png"
    fig.savefig(path)
    plt.close(fig)
    return path
