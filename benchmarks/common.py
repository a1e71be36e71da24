# ruff: noqa: RUF001, RUF002
"""Shared pieces: statistics, timing loops, fake subscribers, result records."""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
UPSTREAM_DIR = BENCH_DIR / ".upstream"

# --------------------------------------------------------------------------- #
# configuration and progress


@dataclass
class Config:
    """What to run and where to write it."""

    quick: bool = False
    out_dir: Path = BENCH_DIR / "results"
    upstream: bool = True  # quick mode never touches upstream
    started: float = field(default_factory=time.monotonic)

    def pick(self, full: Any, quick: Any) -> Any:
        return quick if self.quick else full


class Progress:
    """One line per step on stderr, with the time since the run started."""

    def __init__(self, cfg: Config, section: str = "") -> None:
        self.cfg = cfg
        self.section = section

    def __call__(self, message: str) -> None:
        elapsed = time.monotonic() - self.cfg.started
        prefix = f"[{elapsed:7.1f}s]"
        where = f" {self.section}:" if self.section else ""
        print(f"{prefix}{where} {message}", file=sys.stderr, flush=True)

    def sub(self, section: str) -> Progress:
        return Progress(self.cfg, section)


# --------------------------------------------------------------------------- #
# statistics


@dataclass
class Stats:
    """Order statistics of samples (seconds, bytes, whatever was measured)."""

    median: float
    p25: float
    p75: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, samples: Iterable[float]) -> Stats:
        xs = sorted(samples)
        if not xs:
            raise ValueError("no samples")
        return cls(
            median=statistics.median(xs),
            p25=quantile(xs, 0.25),
            p75=quantile(xs, 0.75),
            min=xs[0],
            max=xs[-1],
            n=len(xs),
        )

    def scaled(self, factor: float) -> Stats:
        return Stats(
            self.median * factor,
            self.p25 * factor,
            self.p75 * factor,
            self.min * factor,
            self.max * factor,
            self.n,
        )

    def to_dict(self) -> dict[str, float]:
        return {
            "median": self.median,
            "p25": self.p25,
            "p75": self.p75,
            "min": self.min,
            "max": self.max,
            "n": self.n,
        }


def quantile(sorted_xs: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if len(sorted_xs) == 1:
        return sorted_xs[0]
    pos = q * (len(sorted_xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    frac = pos - lo
    return sorted_xs[lo] * (1 - frac) + sorted_xs[hi] * frac


def fmt_time(seconds: float) -> str:
    """A duration with a unit that keeps 3 significant figures readable."""
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def fmt_stats_time(s: Stats) -> str:
    """`median (p25–p75)`."""
    return f"{fmt_time(s.median)} ({fmt_time(s.p25)}–{fmt_time(s.p75)})"


def fmt_bytes(n: float) -> str:
    if abs(n) < 1024:
        return f"{n:.0f} B"
    if abs(n) < 1024**2:
        return f"{n / 1024:.1f} KiB"
    if abs(n) < 1024**3:
        return f"{n / 1024**2:.1f} MiB"
    return f"{n / 1024**3:.2f} GiB"


def fmt_ratio(r: float) -> str:
    if r >= 1000:
        return f"{r:,.0f}×"
    if r >= 10:
        return f"{r:.0f}×"
    return f"{r:.2f}×"


def fmt_count(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


# --------------------------------------------------------------------------- #
# timing


def calibrate(fn: Callable[[], Any], target: float = 0.005, cap: int = 100_000) -> int:
    """How many calls of `fn` make one sample of at least `target` seconds."""
    inner = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        dt = time.perf_counter() - t0
        if dt >= target or inner >= cap:
            return inner
        if dt <= 0:
            inner *= 10
        else:
            inner = min(cap, max(inner * 2, int(inner * target / dt * 1.2) + 1))


def time_calls(fn: Callable[[], Any], inner: int) -> float:
    """Seconds per call, averaged over `inner` back-to-back calls."""
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def interleaved(
    fns: dict[str, Callable[[], Any]],
    samples: int,
    target: float = 0.005,
    budget: float | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each fn, sampled round-robin so that machine noise
    (another process, frequency changes) hits every subject alike."""
    inners = {name: calibrate(fn, target) for name, fn in fns.items()}
    out: dict[str, list[float]] = {name: [] for name in fns}
    t_start = time.monotonic()
    for i in range(samples):
        for name, fn in fns.items():
            out[name].append(time_calls(fn, inners[name]))
        if budget is not None and i >= 4 and time.monotonic() - t_start > budget:
            break
    return out


def timed_samples(
    fn: Callable[[], Any],
    min_samples: int,
    max_samples: int,
    budget: float,
    setup: Callable[[], Any] | None = None,
) -> list[float]:
    """Seconds of single calls of a slow `fn` (one call per sample), as many as
    fit in `budget` seconds, at least `min_samples`. `setup` runs untimed first."""
    out: list[float] = []
    t_start = time.monotonic()
    while len(out) < max_samples:
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
        if len(out) >= min_samples and time.monotonic() - t_start > budget:
            break
    return out


def settle() -> None:
    """Collect garbage so one subject's leftovers are not billed to the next."""
    gc.collect()
    gc.collect()


# --------------------------------------------------------------------------- #
# fake subscribers (the Sync's view of a session: see Sync.attach / flush)


class FakeSubscriber:
    """Stands in for a connected session: keeps the last frame it was sent."""

    is_connected = True

    def __init__(self) -> None:
        self.last: str = ""
        self.count = 0
        self.syncs: list[Any] = []

    def send_frame(self, frame: str) -> None:
        self.last = frame
        self.count += 1

    def send_frames(self, frames: list[Any]) -> None:
        for f in frames:
            self.send_frame(f)

    def register(self, sync: Any) -> None:
        self.syncs.append(sync)

    def unregister(self, sync: Any) -> None:
        self.syncs = [s for s in self.syncs if s is not sync]


# --------------------------------------------------------------------------- #
# results


@dataclass
class Target:
    """One claim checked against a measured number."""

    name: str
    goal: str
    measured: str
    met: bool | None  # None: could not be measured in this run
    note: str = ""

    @property
    def verdict(self) -> str:
        return {True: "met", False: "missed", None: "not measured"}[self.met]


@dataclass
class SectionResult:
    key: str
    title: str
    markdown: str
    targets: list[Target] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    headline: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    finished: str = ""


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    import pydantic
    import pydantic_core

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "pydantic": pydantic.VERSION,
        "pydantic_core": pydantic_core.__version__,
    }
    try:
        from importlib.metadata import version

        info["jsonpatch"] = version("jsonpatch")
        info["ws_sync"] = version("ws-sync")
    except Exception:
        pass
    try:
        import subprocess

        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        info["commit"] = rev
    except Exception:
        pass
    return info


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def dump_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=str))
