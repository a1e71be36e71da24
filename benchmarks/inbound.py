# ruff: noqa: RUF001
"""Section 7: what the inbound hardening costs, and what it holds.

- The checks that run before a frame is parsed (size, then `limits.too_deep`),
  on adversarial 1 MiB frames, in ms per MiB, next to the parse itself.
- Backpressure on a real uvicorn: one client floods actions with ``$id``;
  answered actions per second with the rate limits off, on but never reached,
  and at the defaults (`Limits.rate` 200/s after a burst of 400).
- What the fuzzer (`tests/test_fuzz.py`) and the soak (`benchmarks/soak.py`)
  last measured, when their reports are there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic_core import from_json

from ws_sync.limits import Limits, too_deep

from .common import (
    BENCH_DIR,
    REPO_DIR,
    Config,
    Progress,
    SectionResult,
    Stats,
    Target,
    fmt_bytes,
    fmt_ratio,
    fmt_time,
    interleaved,
    md_table,
)
from .plots import COLORS, pyplot

KEY = "inbound"
TITLE = "7. Inbound hardening"
MIB = 1 << 20
DEPTH = Limits().max_depth
GOAL_MS_PER_MIB = 50.0
FUZZ_REPORT = Path(
    os.environ.get("WS_SYNC_FUZZ_REPORT", Path(tempfile.gettempdir()) / "ws-sync-fuzz.json")
)
SOAK_REPORT = BENCH_DIR / "results" / "soak.json"


# --------------------------------------------------------------------------- #
# pre-parse checks


def payloads(n: int = MIB) -> dict[str, str]:
    """Adversarial frames of about `n` characters (and an honest one)."""
    head = '{"type":"_GET:X","data":"'
    nest = "[" * (DEPTH - 1) + "]" * (DEPTH - 1)
    note = '{"text":"buy milk and eggs","done":false},'
    honest = '{"type":"_SET:NOTES","data":{"notes":[' + note * (n // len(note))
    return {
        "escaped-quote run, unterminated": '"' + '\\"' * ((n - 1) // 2),
        "escaped-quote run inside a string": head + '\\"' * ((n - len(head) - 2) // 2) + '"}',
        "`[]` pairs": "[]" * (n // 2),
        f"nesting {DEPTH - 1} deep (just under the limit), repeated": nest * (n // len(nest)),
        "1 MiB of `[`": "[" * n,
        '`{"a":` repeated (objects, unterminated)': '{"a":' * (n // 5),
        "brackets inside strings": '["' + "[{" * ((n - 4) // 2) + '"]',
        "plain large JSON (a `_SET` of notes)": honest[:-1] + "]}}",
    }


def measure_checks(cfg: Config, progress: Progress) -> list[dict[str, Any]]:
    """ms per MiB of the size and depth checks, and of the parse, per payload."""
    samples = cfg.pick(11, 3)
    limit = Limits().max_frame_size

    def check(text: str) -> bool:
        return len(text) > limit * 4 or too_deep(text, DEPTH)  # never short-circuits here

    def parse(text: str) -> None:
        with contextlib.suppress(ValueError):
            from_json(text, allow_inf_nan=False)

    rows = []
    for name, text in payloads().items():
        got = interleaved(
            {"check": lambda t=text: check(t), "parse": lambda t=text: parse(t)}, samples
        )
        per_mib = MIB / len(text)
        row = {
            "name": name,
            "chars": len(text),
            "too_deep": too_deep(text, DEPTH),
            "check": Stats.of(got["check"]).scaled(per_mib),
            "parse": Stats.of(got["parse"]).scaled(per_mib),
        }
        progress(
            f"{name}: check {row['check'].median * 1e3:.1f} ms/MiB, "
            f"parse {row['parse'].median * 1e3:.1f} ms/MiB"
        )
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- #
# backpressure on a real server

MODES = {
    "off": ["--rate", "0", "--address-rate", "0"],
    "on, never reached": ["--rate", "1e9", "--burst", "1000000000", "--address-rate", "0"],
    "defaults (200/s, burst 400)": [
        "--rate",
        str(Limits().rate),
        "--burst",
        str(Limits().burst),
        "--address-rate",
        str(Limits().address_rate),
        "--address-burst",
        str(Limits().address_burst),
    ],
}


async def flood(url: str, count: int) -> dict[str, Any]:
    """`count` back-to-back actions with ``$id`` on one connection; when each
    answer came, and whether all came, in order."""
    from fuzz_client import dial

    async with dial(url, "10.9.0.1") as ws:
        for _ in range(2):
            await ws.recv()  # the initial _SET of each object
        action = '{{"type":"_ACTION:FUZZ","data":{{"type":"INC","$id":{}}}}}'

        async def send_all() -> None:
            for i in range(count):
                await ws.send(action.format(i))

        start = time.perf_counter()
        sender = asyncio.create_task(send_all())
        ids: list[int] = []
        stamps: list[float] = []
        async with asyncio.timeout(120):
            while len(ids) < count:
                frame = json.loads(await ws.recv())
                if frame["type"] == "_ACTION_RESULT:FUZZ" and frame["data"]["ok"]:
                    ids.append(frame["data"]["id"])
                    stamps.append(time.perf_counter() - start)
        await sender
    return {"in_order": ids == list(range(count)), "stamps": stamps}


def measure_backpressure(cfg: Config, progress: Progress) -> dict[str, Any]:
    """Rounds of one flood per mode, the servers interleaved round by round."""
    sys.path.insert(0, str(REPO_DIR / "tests"))
    from fuzz_client import ServerProcess

    count = cfg.pick(3000, 600)
    rounds = cfg.pick(3, 1)
    # past the burst, and past what the bucket refilled while the burst was answered
    settled = Limits().burst * 5 // 4
    servers = {mode: ServerProcess(600, *args) for mode, args in MODES.items()}
    out: dict[str, Any] = {mode: {"rates": [], "sustained": [], "in_order": True} for mode in MODES}
    try:
        for server in servers.values():
            server.start()
        for r in range(rounds):
            for mode, server in servers.items():
                got = asyncio.run(flood(server.url(), count))
                stamps = got["stamps"]
                rate = count / stamps[-1]
                after = stamps[settled:]
                sustained = (len(after) - 1) / (after[-1] - after[0])
                out[mode]["rates"].append(rate)
                out[mode]["sustained"].append(sustained)
                out[mode]["in_order"] &= got["in_order"] and len(stamps) == count
                progress(
                    f"round {r + 1}, {mode}: {count} actions in {stamps[-1]:.2f} s "
                    f"({rate:,.0f}/s; {sustained:,.0f}/s sustained)"
                )
    finally:
        for server in servers.values():
            server.stop()
    return {"count": count, "rounds": rounds, "modes": out}


# --------------------------------------------------------------------------- #
# the fuzzer's and the soak's last reports


def read_report(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- #
# report


def run(cfg: Config, progress: Progress) -> SectionResult:
    checks = measure_checks(cfg, progress)
    back = measure_backpressure(cfg, progress)
    fuzz = read_report(FUZZ_REPORT)
    soak = read_report(SOAK_REPORT)
    return _report(cfg, checks, back, fuzz, soak)


def _median(xs: list[float]) -> float:
    return Stats.of(xs).median


def _report(
    cfg: Config,
    checks: list[dict[str, Any]],
    back: dict[str, Any],
    fuzz: dict[str, Any] | None,
    soak: dict[str, Any] | None,
) -> SectionResult:
    targets = [_check_target(checks)]
    modes = back["modes"]
    rate = Limits().rate or 0.0
    off = _median(modes["off"]["rates"])
    unbound = _median(modes["on, never reached"]["rates"])
    default_key = next(m for m in modes if m.startswith("defaults"))
    sustained = _median(modes[default_key]["sustained"])
    every = all(m["in_order"] for m in modes.values())
    targets += [
        Target(
            f"backpressure: {back['count']:,} back-to-back actions, every mode",
            "all answered, in order",
            "yes" if every else "no",
            every,
        ),
        Target(
            "backpressure holds the rate: sustained answers at the default limits",
            f"{0.9 * rate:.0f}–{1.1 * rate:.0f}/s",
            f"{sustained:.0f}/s",
            0.9 * rate <= sustained <= 1.1 * rate,
        ),
        Target(
            "rate limiter's own cost: flood throughput, limits never reached vs off",
            "≥0.9×",
            f"{fmt_ratio(unbound / off)} ({unbound:,.0f}/s vs {off:,.0f}/s)",
            unbound / off >= 0.9,
        ),
        _fuzz_target(fuzz),
        *_soak_targets(soak),
    ]
    plot = _plot(cfg, checks, modes)
    worst = max(checks, key=lambda c: c["check"].median)
    headline = [
        (
            "pre-parse checks, worst adversarial 1 MiB frame",
            f"{worst['check'].median * 1e3:.1f} ms/MiB ({worst['name']})",
        ),
        (
            "one client flooding actions: answered per second (off / never reached / defaults)",
            f"{off:,.0f} / {unbound:,.0f} / {sustained:,.0f}",
        ),
    ]
    if fuzz is not None:
        lag = fuzz.get("lag", {})
        headline.append(
            (
                "fuzzer: worst / p99 event-loop lag",
                f"{fmt_time(lag.get('worst', 0))} / {fmt_time(lag.get('p99', 0))}",
            )
        )
    if soak is not None:
        headline.append(
            (
                f"soak ({soak['clients']} clients, {soak['minutes']:g} min): honest p50 / p99",
                f"{fmt_time(soak['p50'])} / {fmt_time(soak['p99'])}",
            )
        )
    md = _markdown(checks, back, fuzz, soak, plot.name)
    data = {
        "checks": [
            {**c, "check": c["check"].to_dict(), "parse": c["parse"].to_dict()} for c in checks
        ],
        "backpressure": back,
        "fuzz": fuzz and {k: v for k, v in fuzz.items() if k != "examples"},
        "soak": soak and {k: v for k, v in soak.items() if k not in ("samples", "windows")},
    }
    return SectionResult(KEY, TITLE, md, targets, [plot], data, headline)


def _check_target(checks: list[dict[str, Any]]) -> Target:
    worst = max(checks, key=lambda c: c["check"].median)
    ms = worst["check"].median * 1e3
    return Target(
        "pre-parse checks (size and depth) on adversarial 1 MiB frames",
        f"≤{GOAL_MS_PER_MIB:g} ms per MiB",
        f"worst {ms:.1f} ms/MiB ({worst['name']})",
        ms <= GOAL_MS_PER_MIB,
        ""
        if ms <= GOAL_MS_PER_MIB
        else "frames dense in short strings: `too_deep` cuts every string out with one regex "
        "substitution each, and that dominates; the other frames take a fraction of the goal",
    )


def _fuzz_target(fuzz: dict[str, Any] | None) -> Target:
    name, goal = "fuzzer: worst event-loop lag of the server", "<1 s"
    if fuzz is None:
        return Target(name, goal, "–", None, "no fuzz report: run tests/test_fuzz.py first")
    lag = fuzz.get("lag", {}).get("worst", 0.0)
    note = f"{fuzz['units']:,} units in {fuzz['seconds']:g} s, run {fuzz['when']}"
    if lag >= 1.0:
        note += "; see README, findings"
    return Target(name, goal, fmt_time(lag), lag < 1.0, note)


def _soak_targets(soak: dict[str, Any] | None) -> list[Target]:
    if soak is None:
        return []
    errors = sum(soak["honest_errors"].values())
    slope = soak["rss_slope_per_min_second_half"] or 0.0
    where = f"soak, {soak['clients']} clients × {soak['minutes']:g} min"
    return [
        Target(f"{where}: errors seen by honest clients", "none", str(errors), errors == 0),
        Target(
            f"{where}: server RSS over the second half",
            "flat (≤1 MiB/min)",
            f"{fmt_bytes(slope)}/min",
            abs(slope) <= MIB,
            "" if abs(slope) <= MIB else "see the README's soak section: what the growth is",
        ),
    ]


def _markdown(
    checks: list[dict[str, Any]],
    back: dict[str, Any],
    fuzz: dict[str, Any] | None,
    soak: dict[str, Any] | None,
    plot: str,
) -> str:
    check_rows = [
        [
            c["name"],
            f"{c['chars']:,}",
            "yes" if c["too_deep"] else "no",
            _ms(c["check"]),
            f"{c['parse'].median * 1e3:.1f}",
        ]
        for c in checks
    ]
    modes = back["modes"]
    flood_rows = [
        [
            mode,
            f"{_median(m['rates']):,.0f}",
            f"{_median(m['sustained']):,.0f}",
            "yes" if m["in_order"] else "**no**",
        ]
        for mode, m in modes.items()
    ]
    lines = [
        f"## {TITLE}",
        "",
        "### Checks before parsing",
        "",
        "Every text frame is checked for size (O(1)) and nesting depth "
        f"(`limits.too_deep`, max depth {DEPTH}) before `pydantic_core` parses it. Each row is "
        "one adversarial frame of about 1 MiB; times are ms per MiB, median (p25–p75) of "
        "samples taken round-robin with the parse of the same frame.",
        "",
        md_table(
            ["frame", "characters", "refused as too deep", "checks, ms/MiB", "parse, ms/MiB"],
            check_rows,
        ),
        "",
        "### Backpressure on a real server",
        "",
        f"`tests/fuzz_app.py` under uvicorn in its own process; one `websockets` client sends "
        f"{back['count']:,} `INC` actions with `$id` back to back and reads every answer. "
        f"{back['rounds']} round(s), the three servers interleaved round by round; medians. "
        f"*Sustained* is the rate of the answers after the first {Limits().burst * 5 // 4} "
        "(the burst, and what the bucket refilled while it was answered).",
        "",
        md_table(
            ["rate limits", "answered/s", "sustained/s", "all answered, in order"], flood_rows
        ),
        "",
    ]
    lines += _fuzz_lines(fuzz) + _soak_lines(soak) + [f"![inbound]({plot})", ""]
    return "\n".join(lines)


def _ms(s: Stats) -> str:
    return f"{s.median * 1e3:.1f} ({s.p25 * 1e3:.1f}–{s.p75 * 1e3:.1f})"


def _fuzz_lines(fuzz: dict[str, Any] | None) -> list[str]:
    if fuzz is None:
        return ["No fuzz report found (run `pytest tests/test_fuzz.py`).", ""]
    lag = fuzz.get("lag", {})
    probes = ", ".join(f"{p['name']}: {p['got']}" for p in fuzz.get("probes", []))
    return [
        "### The fuzzer's last run",
        "",
        f"{fuzz['clients']} clients, {fuzz['units']:,} units ({fuzz['frames_sent']:,} frames, "
        f"{fmt_bytes(fuzz['bytes_sent'])}) in {fuzz['seconds']:g} s, seed {fuzz['seed']}, run "
        f"{fuzz['when']}. Server loop lag: worst {fmt_time(lag.get('worst', 0))}, "
        f"p99 {fmt_time(lag.get('p99', 0))}, p99.9 {fmt_time(lag.get('p999', 0))}. "
        f"Closes: {probes}. Invariants broken: {json.dumps(fuzz.get('findings', {})) or 'none'}.",
        "",
    ]


def _soak_lines(soak: dict[str, Any] | None) -> list[str]:
    if soak is None:
        return []
    return [
        "### The soak's last run",
        "",
        f"{soak['clients']} clients ({soak['hostile']} hostile) for {soak['minutes']:g} min: "
        f"honest round trip p50 {fmt_time(soak['p50'])}, p99 {fmt_time(soak['p99'])}; "
        f"server RSS {fmt_bytes(soak['rss_start'])} → {fmt_bytes(soak['rss_end'])}; "
        f"errors seen by honest clients: {sum(soak['honest_errors'].values())}. "
        "See [soak.md](soak.md).",
        "",
    ]


def _plot(cfg: Config, checks: list[dict[str, Any]], modes: dict[str, Any]) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 1.3]})
    ys = list(range(len(checks)))
    axes[0].barh(
        [y - 0.2 for y in ys],
        [c["check"].median * 1e3 for c in checks],
        0.4,
        color=COLORS["ours"],
        label="size + depth checks",
    )
    axes[0].barh(
        [y + 0.2 for y in ys],
        [c["parse"].median * 1e3 for c in checks],
        0.4,
        color=COLORS["plain"],
        label="parse (pydantic_core)",
    )
    axes[0].axvline(GOAL_MS_PER_MIB, color=COLORS["reference"], linestyle="--", label="goal")
    axes[0].set_yticks(ys)
    axes[0].set_yticklabels([c["name"].replace("`", "") for c in checks], fontsize=7)
    axes[0].invert_yaxis()
    axes[0].set_xlabel("ms per MiB")
    axes[0].legend(fontsize=7)
    axes[0].set_title("before parsing: 1 MiB adversarial frames")
    names = list(modes)
    axes[1].bar(
        range(len(names)),
        [_median(modes[n]["sustained"]) for n in names],
        color=[COLORS["floor"], COLORS["ours"], COLORS["reference"]],
    )
    axes[1].set_yscale("log")
    axes[1].set_xticks(range(len(names)))
    axes[1].set_xticklabels([n.replace(" (", "\n(") for n in names], fontsize=7)
    axes[1].set_ylabel("answered actions / s (sustained)")
    axes[1].set_title("one client flooding")
    fig.tight_layout()
    path = cfg.out_dir / "inbound.png"
    fig.savefig(path)
    plt.close(fig)
    return path
