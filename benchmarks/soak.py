"""Soak: many clients for minutes against one uvicorn server, some of them hostile.

``python -m benchmarks.soak --clients 200 --minutes 5 --hostile 0.1``

The server is the fuzzer's app (`tests/fuzz_app.py`) in its own process,
with the default `Limits`; each client comes from its own address
(``X-Forwarded-For``, which uvicorn believes from 127.0.0.1), so per-address
limits apply per client as they would behind a proxy. Honest clients run in
this process: at random (Poisson) times each sends one honest unit of the
fuzz grammar (mostly actions with ``$id``, whose round trip is timed; valid
patches; ``_GET``) and checks every answer. Hostile clients run in a second
process: the fuzzer's clients, paced, reconnecting when closed. Every few
seconds the server's RSS and event-loop lag are sampled.

Writes ``soak.md``, ``soak.json`` and ``soak.png`` to ``--out``
(default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import BENCH_DIR, REPO_DIR, environment, fmt_bytes, fmt_time, md_table, quantile
from .plots import COLORS, pyplot

sys.path.insert(0, str(REPO_DIR / "tests"))

import fuzz_grammar
from fuzz_client import (
    CLOSED,
    Findings,
    FuzzClient,
    Reader,
    ServerProcess,
    dial,
)
from fuzz_grammar import FUZZ, Grammar, id_key, wire_state

SAMPLE_EVERY = 5.0
STATE_NODES, STATE_CHARS = 300, 20_000
"""Each client's state stays this small (JSON values, characters), so that the
server's memory can be flat: growth of the apps' data is not a leak."""
fuzz_grammar.MAX_STATE_NODES, fuzz_grammar.MAX_STATE_CHARS = STATE_NODES, STATE_CHARS
WINDOW = 10.0


# --------------------------------------------------------------------------- #
# honest clients


@dataclass
class Honest:
    """What the honest clients saw, all together."""

    rtts: list[tuple[float, float]] = field(default_factory=list)
    """(seconds since the start, round trip) of every action with ``$id``."""
    errors: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    sent: int = 0
    finished: int = 0

    def error(self, kind: str, example: str) -> None:
        self.errors[kind] += 1
        if len(self.examples) < 10:
            self.examples.append(f"{kind}: {example[:400]}")


async def honest_client(
    url: str, index: int, seed: int, interval: float, deadline: float, t0: float, out: Honest
) -> None:
    """One honest client until `deadline`; every surprise is an error."""
    try:
        await _honest(url, index, seed, interval, deadline, t0, out)
    except Exception as e:  # a reset, a refused handshake: an error all the same
        out.error(type(e).__name__, str(e))


async def _honest(
    url: str, index: int, seed: int, interval: float, deadline: float, t0: float, out: Honest
) -> None:
    rng = random.Random(seed * 7919 + index)
    findings = Findings()
    loop = asyncio.get_running_loop()
    await asyncio.sleep(rng.random() * interval)  # spread the starts
    async with dial(url, f"10.2.{index // 250}.{index % 250 + 1}") as ws:
        reader = Reader(ws, findings)
        first = await _initial(reader, out)
        if first is None:
            return
        grammar = Grammar(rng, index, first["ident"])
        while loop.time() < deadline:
            await asyncio.sleep(rng.expovariate(1 / interval))
            unit = grammar.honest_only()
            started = loop.time()
            for frame in unit.frames:
                await ws.send(frame)
            out.sent += 1
            for rid, answer in unit.answers:
                result = await _result(reader, id_key(rid), out)
                if result is None:
                    return
                out.rtts.append((started - t0, loop.time() - started))
                if not result.get("ok") or result.get("result") != answer.value:
                    out.error("wrong result", json.dumps(result))
        await _final(ws, reader, grammar, out)
    for kind, n in findings.counts.items():
        out.errors[kind] += n


async def _initial(reader: Reader, out: Honest) -> dict[str, Any] | None:
    seen: dict[str, Any] = {}
    while len(seen) < 2:
        item = await reader.inbox.get()
        if item is CLOSED:
            out.error("closed", f"before the initial state ({reader.close_code})")
            return None
        seen[item["type"]] = item["data"]
    return seen.get(f"_SET:{FUZZ}")


def _is_end(item: Any) -> bool:
    """The `_ERROR` about the final barrier."""
    return (
        isinstance(item, dict)
        and item["type"] == "_ERROR"
        and item["data"].get("event") == "_BARRIER:END"
    )


def _note(item: Any, out: Honest) -> None:
    """Anything an honest client did not ask for that means trouble."""
    if isinstance(item, dict) and item["type"] == "_ERROR":
        out.error("_ERROR", json.dumps(item["data"]))


async def _result(reader: Reader, key: str, out: Honest) -> dict[str, Any] | None:
    """The `_ACTION_RESULT` for ``$id`` `key`; None if the connection closed."""
    while True:
        item = await reader.inbox.get()
        if item is CLOSED:
            out.error("closed", f"waiting for a result ({reader.close_code})")
            return None
        if isinstance(item, dict) and item["type"] == f"_ACTION_RESULT:{FUZZ}":
            data = item["data"]
            if id_key(data.get("id")) == key:
                result: dict[str, Any] = data
                return result
            out.error("unexpected result", json.dumps(data))
        _note(item, out)


async def _final(ws: Any, reader: Reader, grammar: Grammar, out: Honest) -> None:
    """A last `_GET`, then a barrier: the state must be the model's."""
    await ws.send(json.dumps({"type": f"_GET:{FUZZ}", "data": {}}))
    await ws.send(json.dumps({"type": "_BARRIER:END", "data": None}))
    last = None
    while True:
        item = await reader.inbox.get()
        if item is CLOSED:
            out.error("closed", f"before the final state ({reader.close_code})")
            return
        if _is_end(item):
            break
        if isinstance(item, dict) and item["type"] == f"_SET:{FUZZ}":
            last = item["data"]
        _note(item, out)
    if last != wire_state(grammar.state):
        out.error("state", f"final {json.dumps(last)[:300]}")
    out.finished += 1


# --------------------------------------------------------------------------- #
# hostile clients (their own process)


async def hostile_clients(
    url: str, count: int, seed: int, seconds: float, per_unit: float, skip: tuple[str, ...]
) -> dict:
    """`count` fuzzing clients, each reconnecting when closed, until the end."""
    findings = Findings()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    units: Counter[str] = Counter()
    connections = 0
    closes: Counter[str] = Counter()

    async def one(index: int) -> None:
        nonlocal connections
        generation = 0
        while loop.time() < deadline - 1:
            client = FuzzClient(url, index, seed + generation * 1000, findings, skip)
            connections += 1
            try:
                report = await client.run(deadline, per_unit=per_unit)
            except Exception as e:  # a refused handshake, a reset: try again
                closes[type(e).__name__] += 1
                await asyncio.sleep(1)
                continue
            units.update(report.units)
            if not report.ended_open:
                closes[str(report.close_code)] += 1
            generation += 1

    await asyncio.gather(*(one(1000 + i) for i in range(count)))
    return {
        "units": sum(units.values()),
        "connections": connections,
        "closes": dict(closes),
        "findings": dict(findings.counts),
        "examples": {k: v[:2] for k, v in findings.examples.items()},
    }


# --------------------------------------------------------------------------- #
# the run


@dataclass
class Soak:
    clients: int
    minutes: float
    hostile: int
    interval: float
    per_unit: float
    seed: int
    skip: tuple[str, ...] = ()
    honest: Honest = field(default_factory=Honest)
    samples: list[dict[str, float]] = field(default_factory=list)
    hostile_report: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)


async def sample(
    server: ServerProcess, pid: int, t0: float, soak: Soak, stop: asyncio.Event
) -> None:
    """RSS and the worst loop lag of each interval, until `stop`."""
    from .common import rss_bytes

    while not stop.is_set():
        stats = await asyncio.to_thread(server.stats, False, True, True)
        soak.samples.append(
            {
                "t": time.monotonic() - t0,
                "rss": rss_bytes(pid),
                "lag": stats["lag"]["window"],
                "sessions": stats["sessions"],
                "state": stats["state_bytes"],
            }
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)


async def run(soak: Soak) -> None:
    seconds = soak.minutes * 60
    honest = soak.clients - soak.hostile
    with ServerProcess(seconds + 300) as server:
        assert server.proc is not None
        hostile = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.soak",
                "--role",
                "hostile",
                "--url",
                server.url(),
                "--clients",
                str(soak.hostile),
                "--seconds",
                str(seconds),
                "--per-unit",
                str(soak.per_unit),
                "--seed",
                str(soak.seed),
                *(f"--skip={kind}" for kind in soak.skip),
            ],
            cwd=REPO_DIR,
            stdout=subprocess.PIPE,
            text=True,
        )
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample(server, server.proc.pid, t0, soak, stop))
        deadline = loop.time() + seconds
        url = server.url()
        await asyncio.gather(
            *(
                honest_client(url, i, soak.seed, soak.interval, deadline, loop.time(), soak.honest)
                for i in range(honest)
            ),
            return_exceptions=False,
        )
        out, _ = await asyncio.to_thread(hostile.communicate, timeout=seconds + 120)
        stop.set()
        await sampler
        soak.hostile_report = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        soak.server = await asyncio.to_thread(server.stats, False)


# --------------------------------------------------------------------------- #
# report


def summarize(soak: Soak) -> dict[str, Any]:
    rtts = sorted(r for _, r in soak.honest.rtts)
    rss = [s["rss"] for s in soak.samples]
    warm = [s for s in soak.samples if s["t"] >= 30] or soak.samples
    half = [s for s in soak.samples if s["t"] >= soak.minutes * 30] or soak.samples
    slope = _slope([(s["t"] / 60, s["rss"]) for s in half])
    lag = soak.server.get("lag", {})
    return {
        "clients": soak.clients,
        "hostile": soak.hostile,
        "minutes": soak.minutes,
        "interval": soak.interval,
        "per_unit": soak.per_unit,
        "seed": soak.seed,
        "skip": list(soak.skip),
        "actions": len(rtts),
        "units": soak.honest.sent,
        "p50": quantile(rtts, 0.5) if rtts else None,
        "p99": quantile(rtts, 0.99) if rtts else None,
        "p999": quantile(rtts, 0.999) if rtts else None,
        "max": rtts[-1] if rtts else None,
        "honest_errors": dict(soak.honest.errors),
        "honest_examples": soak.honest.examples,
        "honest_finished": soak.honest.finished,
        "rss_start": warm[0]["rss"] if warm else None,
        "rss_end": rss[-1] if rss else None,
        "rss_max": max(rss) if rss else None,
        "rss_slope_per_min_second_half": slope,
        "lag": lag,
        "sessions": soak.server.get("sessions"),
        "hostile_report": soak.hostile_report,
        "samples": soak.samples,
        "windows": _windows(soak),
        "environment": environment(),
    }


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope (bytes per minute)."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else None


def _windows(soak: Soak) -> list[dict[str, float]]:
    """Honest round trips per `WINDOW` seconds: count, p50, p99."""
    by: dict[int, list[float]] = {}
    for t, r in soak.honest.rtts:
        by.setdefault(int(t // WINDOW), []).append(r)
    out = []
    for w in sorted(by):
        xs = sorted(by[w])
        out.append(
            {"t": w * WINDOW, "n": len(xs), "p50": quantile(xs, 0.5), "p99": quantile(xs, 0.99)}
        )
    return out


def plot(summary: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    from matplotlib import ticker

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    samples = summary["samples"]
    axes[0].plot(
        [s["t"] / 60 for s in samples], [s["rss"] / 2**20 for s in samples], color=COLORS["ours"]
    )
    axes[0].set_xlabel("minutes")
    axes[0].set_ylabel("server RSS, MiB")
    axes[0].set_ylim(bottom=0)
    axes[0].set_title("server memory")
    windows = summary["windows"]
    ts = [w["t"] / 60 for w in windows]
    axes[1].plot(ts, [w["p50"] * 1e3 for w in windows], label="p50", color=COLORS["ours"])
    axes[1].plot(ts, [w["p99"] * 1e3 for w in windows], label="p99", color=COLORS["reference"])
    axes[1].set_yscale("log")
    axes[1].yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axes[1].set_xlabel("minutes")
    axes[1].set_ylabel("honest action round trip, ms")
    axes[1].legend(fontsize=7)
    axes[1].set_title(f"honest round trips per {WINDOW:g} s")
    axes[2].plot(
        [s["t"] / 60 for s in samples], [s["lag"] * 1e3 for s in samples], color=COLORS["upstream"]
    )
    axes[2].set_xlabel("minutes")
    axes[2].set_ylabel("worst loop lag per sample, ms")
    axes[2].set_yscale("symlog", linthresh=10)
    axes[2].set_title("server event-loop lag")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def markdown(s: dict[str, Any], name: str) -> str:
    hostile = s["hostile_report"]
    rows = [
        [
            "clients (honest + hostile)",
            f"{s['clients']} ({s['clients'] - s['hostile']} + {s['hostile']})",
        ],
        ["duration", f"{s['minutes']:g} min"],
        ["honest pace", f"one unit per {s['interval']:g} s per client (Poisson)"],
        ["honest actions timed", f"{s['actions']:,} (of {s['units']:,} units sent)"],
        [
            "honest round trip p50 / p99 / p99.9 / max",
            " / ".join(fmt_time(s[k]) for k in ("p50", "p99", "p999", "max")),
        ],
        [
            "errors seen by honest clients",
            str(sum(s["honest_errors"].values()) or "none")
            + (f" {s['honest_errors']}" if s["honest_errors"] else ""),
        ],
        [
            "honest clients ending with the model's state",
            f"{s['honest_finished']} of {s['clients'] - s['hostile']}",
        ],
        [
            "server RSS after 30 s / at the end / max",
            f"{fmt_bytes(s['rss_start'])} / {fmt_bytes(s['rss_end'])} / {fmt_bytes(s['rss_max'])}",
        ],
        [
            "RSS slope over the second half",
            f"{fmt_bytes(s['rss_slope_per_min_second_half'] or 0)}/min",
        ],
        [
            "server loop lag p50 / p99 / worst",
            " / ".join(fmt_time(s["lag"].get(k, 0)) for k in ("p50", "p99", "worst")),
        ],
        [
            "hostile units sent / connections",
            f"{hostile.get('units', 0):,} / {hostile.get('connections', 0):,}",
        ],
        ["hostile connections closed by the server", json.dumps(hostile.get("closes", {}))],
        ["fuzz invariants broken on hostile connections", json.dumps(hostile.get("findings", {}))],
        ["sessions opened", f"{s['sessions']:,}"],
    ]
    env = s["environment"]
    return "\n".join(
        [
            "## Soak: honest and hostile clients for minutes",
            "",
            f"`python -m benchmarks.soak --clients {s['clients']} --minutes {s['minutes']:g} "
            f"--hostile {s['hostile'] / s['clients']:g}"
            + "".join(f" --skip {kind}" for kind in s["skip"])
            + f"`, seed {s['seed']}. Machine: "
            f"{env.get('platform')}, {env.get('cpus')} CPUs, Python {env.get('python')}, "
            f"commit {env.get('commit', '?')}.",
            "",
            md_table(["what", "measured"], rows),
            "",
            f"![soak]({name}.png)",
            "",
        ]
    )


# --------------------------------------------------------------------------- #
# command line


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.soak", description=__doc__.splitlines()[0]
    )
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument(
        "--hostile", type=float, default=0.1, help="share of the clients that are hostile"
    )
    p.add_argument("--interval", type=float, default=1.0, help="mean seconds between honest units")
    p.add_argument("--per-unit", type=float, default=0.25, help="hostile pacing: seconds per unit")
    p.add_argument("--seed", type=int, default=20261129)
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="KIND",
        help="a kind of hostile unit never to send (a method of fuzz_grammar.Grammar)",
    )
    p.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    p.add_argument("--name", default="soak", help="results are NAME.md, NAME.json, NAME.png")
    p.add_argument(
        "--role", choices=["driver", "hostile"], default="driver", help=argparse.SUPPRESS
    )
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.role == "hostile":
        report = asyncio.run(
            hostile_clients(
                args.url,
                int(args.clients),
                args.seed,
                args.seconds,
                args.per_unit,
                tuple(args.skip),
            )
        )
        print(json.dumps(report))
        return 0
    hostile = round(args.clients * args.hostile)
    soak = Soak(
        args.clients,
        args.minutes,
        hostile,
        args.interval,
        args.per_unit,
        args.seed,
        tuple(args.skip),
    )
    print(
        f"soak: {args.clients} clients ({hostile} hostile) for {args.minutes:g} min",
        file=sys.stderr,
    )
    asyncio.run(run(soak))
    summary = summarize(soak)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(summary, indent=1, default=str))
    plot(summary, args.out / f"{args.name}.png")
    text = markdown(summary, args.name)
    (args.out / f"{args.name}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
