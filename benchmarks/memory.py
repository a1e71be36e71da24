"""Section 6: memory: per synced object, per tracked container, a 10k-item
state, growth over many create/destroy cycles, and per idle session."""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from ws_sync import sync_all

from . import sessions
from .common import (
    Config,
    Progress,
    SectionResult,
    Target,
    fmt_bytes,
    fmt_count,
    fmt_ratio,
    md_table,
    rss_bytes,
)
from .plots import COLORS, pyplot
from .subjects import dict_item

KEY = "memory"
TITLE = "6. Memory"


# --------------------------------------------------------------------------- #
# subjects


class SyncedSmall:
    @sync_all("SMALL")
    def __init__(self) -> None:
        self.title = "hello"
        self.count = 0
        self.done = False


class PlainSmall:
    def __init__(self) -> None:
        self.title = "hello"
        self.count = 0
        self.done = False


class MemItem(BaseModel):
    id: int
    name: str
    value: int = 0
    done: bool = False


class PlainMemItem(BaseModel):
    id: int
    name: str
    value: int = 0
    done: bool = False


class SyncedModelSmall(BaseModel):
    title: str = "hello"
    count: int = 0
    done: bool = False

    @sync_all("SMALLM")
    def model_post_init(self, context: Any, /) -> None:
        pass


class PlainModelSmall(BaseModel):
    title: str = "hello"
    count: int = 0
    done: bool = False


class Holder:
    """A synced object whose one attribute holds the containers being measured."""

    @sync_all("HOLD")
    def __init__(self, things: list[Any]) -> None:
        self.things = things


class Cycle:
    """What the create/destroy loop makes: a small synced object with a list."""

    @sync_all("CYCLE")
    def __init__(self, i: int) -> None:
        self.title = f"object {i}"
        self.items = [{"id": j, "v": j} for j in range(3)]


class StateModel(BaseModel):
    items: list[MemItem]

    @sync_all("STATEM")
    def model_post_init(self, context: Any, /) -> None:
        pass


class PlainStateModel(BaseModel):
    items: list[PlainMemItem]


# --------------------------------------------------------------------------- #
# measuring


def traced(build: Callable[[], Any]) -> tuple[int, Any]:
    """Bytes still allocated after `build()` (its result kept alive)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        obj = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before, obj


def per_unit(build: Callable[[int], Any], n: int) -> float:
    size, obj = traced(lambda: build(n))
    del obj
    gc.collect()
    return size / n


def _wrapped(n: int, make: Callable[[int], Any]) -> Any:
    """`n` containers inside a synced object (each one tracked and linked)."""
    return Holder([make(i) for i in range(n)])


def _plain(n: int, make: Callable[[int], Any]) -> Any:
    return [make(i) for i in range(n)]


def object_rows(n: int) -> list[dict[str, Any]]:
    rows = []
    pairs: list[tuple[str, str, Callable[[int], Any], Callable[[int], Any]]] = [
        (
            "synced object (plain class, 3 atomic attrs)",
            "same class unsynced",
            lambda k: [SyncedSmall() for _ in range(k)],
            lambda k: [PlainSmall() for _ in range(k)],
        ),
        (
            "synced pydantic model (3 fields)",
            "plain pydantic model",
            lambda k: [SyncedModelSmall() for _ in range(k)],
            lambda k: [PlainModelSmall() for _ in range(k)],
        ),
        (
            "tracked list (empty) in a synced state",
            "list",
            lambda k: _wrapped(k, lambda i: []),
            lambda k: _plain(k, lambda i: []),
        ),
        (
            "tracked list (10 ints) in a synced state",
            "list",
            lambda k: _wrapped(k, lambda i: list(range(10))),
            lambda k: _plain(k, lambda i: list(range(10))),
        ),
        (
            "tracked dict (4 keys) in a synced state",
            "dict",
            lambda k: _wrapped(k, dict_item),
            lambda k: _plain(k, dict_item),
        ),
        (
            "tracked pydantic model (4 fields) in a synced state",
            "pydantic model",
            lambda k: _wrapped(k, lambda i: MemItem(id=i, name=f"item {i}")),
            lambda k: _plain(k, lambda i: PlainMemItem(id=i, name=f"item {i}")),
        ),
    ]
    for name, plain_name, ours, plain in pairs:
        b_ours = per_unit(ours, n)
        b_plain = per_unit(plain, n)
        rows.append({"name": name, "plain": plain_name, "ours": b_ours, "base": b_plain})
    return rows


def state_rows(n: int) -> list[dict[str, Any]]:
    class PlainState:
        @sync_all("MEMS")
        def __init__(self, n: int) -> None:
            self.items = [dict_item(i) for i in range(n)]

    rows = []
    b_ours, _ = traced(lambda: PlainState(n))
    b_plain, _ = traced(lambda: [dict_item(i) for i in range(n)])
    rows.append(
        {"name": f"{fmt_count(n)} dict items, plain class", "ours": b_ours, "base": b_plain}
    )
    b_ours, _ = traced(
        lambda: StateModel(items=[MemItem(id=i, name=f"item {i}") for i in range(n)])
    )
    b_plain, _ = traced(
        lambda: PlainStateModel(items=[PlainMemItem(id=i, name=f"item {i}") for i in range(n)])
    )
    rows.append(
        {"name": f"{fmt_count(n)} pydantic items, pydantic state", "ours": b_ours, "base": b_plain}
    )
    gc.collect()
    return rows


def one_cycle(i: int) -> None:
    obj = Cycle(i)
    obj.items.append({"id": 99, "v": i})
    obj.items[0]["v"] = i
    obj.title = f"changed {i}"
    obj.sync.flush()  # type: ignore[attr-defined]
    obj.sync.close()  # type: ignore[attr-defined]


def one_cycle_no_close(i: int) -> None:
    obj = Cycle(i)
    obj.items.append({"id": 99, "v": i})
    obj.items[0]["v"] = i
    obj.sync.flush()  # type: ignore[attr-defined]


def growth(cycles: int, fn: Callable[[int], None], warmup: int) -> dict[str, Any]:
    """Memory left behind by `cycles` calls of `fn` (after a warm-up)."""
    for i in range(warmup):
        fn(i)
    gc.collect()
    rss0 = rss_bytes()
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(cycles):
            fn(i)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    seconds = time.perf_counter() - t0
    gc.collect()
    return {
        "cycles": cycles,
        "traced_growth": grown,
        "traced_peak": peak,
        "rss_growth": rss_bytes() - rss0,
        "seconds": seconds,
    }


# --------------------------------------------------------------------------- #


def run(cfg: Config, progress: Progress) -> SectionResult:
    n_obj = cfg.pick(10_000, 500)
    progress(f"per object and per container, {fmt_count(n_obj)} of each")
    objects = object_rows(n_obj)
    for r in objects:
        progress(f"{r['name']}: {fmt_bytes(r['ours'])} vs {fmt_bytes(r['base'])}")
    n_state = cfg.pick(10_000, 500)
    progress(f"a {fmt_count(n_state)}-item state")
    states = state_rows(n_state)
    cycles = cfg.pick(100_000, 2_000)
    warmup = cfg.pick(2_000, 100)
    cycle_runs: list[tuple[str, dict[str, Any]]] = []
    progress(f"{fmt_count(cycles)} create/flush/close cycles, no session")
    cycle_runs.append(
        ("create, mutate, flush, `sync.close()`; no session", growth(cycles, one_cycle, warmup))
    )
    progress(f"{fmt_count(cycles)} create/flush/drop cycles, no session, no close()")
    cycle_runs.append(
        (
            "create, mutate, flush, drop the last reference; no session",
            growth(cycles, one_cycle_no_close, warmup),
        )
    )
    session_part = sessions.memory_part(cfg, progress, cycles, warmup, growth, one_cycle_no_close)
    cycle_runs += session_part["cycles"]
    for name, g in cycle_runs:
        progress(
            f"{name}: grew {fmt_bytes(g['traced_growth'])} (traced), "
            f"{fmt_bytes(g['rss_growth'])} RSS, {g['seconds']:.1f} s"
        )
    return _report(cfg, objects, states, cycle_runs, session_part)


def _report(
    cfg: Config,
    objects: list[dict[str, Any]],
    states: list[dict[str, Any]],
    cycle_runs: list[tuple[str, dict[str, Any]]],
    session_part: dict[str, Any],
) -> SectionResult:
    obj_rows = [
        [
            r["name"],
            fmt_bytes(r["ours"]),
            f"{r['plain']}: {fmt_bytes(r['base'])}",
            fmt_bytes(r["ours"] - r["base"]),
            fmt_ratio(r["ours"] / r["base"]),
        ]
        for r in objects
    ]
    st_rows = [
        [
            r["name"],
            fmt_bytes(r["ours"]),
            fmt_bytes(r["base"]),
            fmt_bytes(r["ours"] - r["base"]),
            fmt_ratio(r["ours"] / r["base"]),
        ]
        for r in states
    ]
    cyc_rows = [
        [
            name,
            fmt_count(g["cycles"]),
            fmt_bytes(g["traced_growth"]),
            fmt_bytes(g["traced_peak"]),
            fmt_bytes(g["rss_growth"]),
            f"{g['seconds'] / g['cycles'] * 1e6:.0f} µs",
        ]
        for name, g in cycle_runs
    ]
    targets: list[Target] = []
    for name, g in cycle_runs:
        worst = max(g["traced_growth"], g["rss_growth"])
        targets.append(
            Target(
                f"memory growth over {fmt_count(g['cycles'])} cycles: {name}",
                "≤1 MB",
                f"{fmt_bytes(g['traced_growth'])} traced, {fmt_bytes(g['rss_growth'])} RSS",
                worst <= 1_000_000 if g["cycles"] >= 100_000 else None,
                "" if g["cycles"] >= 100_000 else "quick mode: fewer cycles than the target",
            )
        )
    targets += session_part["targets"]
    plot = _plot(cfg, objects)
    md = [
        f"## {TITLE}",
        "",
        "Bytes from `tracemalloc` (Python allocations still alive after `gc.collect()`), "
        "RSS from `/proc/self/status`. Per-unit numbers divide the memory of N units, "
        "kept alive together, by N.",
        "",
        "### Per synced object and per tracked container",
        "",
        md_table(["ours", "bytes each", "plain", "overhead", "ratio"], obj_rows),
        "",
        "A tracked container inside a synced state carries its tracking slots and one "
        "`Link` (weak reference to its parent, key or index hint); a tracked model also "
        "gets an `ObjNode` (in its `__dict__`) with a weak reference to itself. A synced "
        "object has its `Sync` (options, attribute map, root node) on top.",
        "",
        "### A whole state",
        "",
        md_table(["state", "ours", "plain", "overhead", "ratio"], st_rows),
        "",
        "### Growth over create/destroy cycles",
        "",
        "Each cycle creates a synced object (a string and a list of 3 dicts), mutates it, "
        "flushes and lets it go; growth is measured after a warm-up and `gc.collect()`.",
        "",
        md_table(
            [
                "cycle",
                "cycles",
                "traced growth",
                "traced peak",
                "RSS growth",
                "time per cycle (traced)",
            ],
            cyc_rows,
        ),
        "",
        *session_part["markdown"],
        f"![memory per object]({plot.name})",
        "",
    ]
    headline = [
        (
            f"memory: {objects[0]['name']}",
            f"{fmt_bytes(objects[0]['ours'])} (plain {fmt_bytes(objects[0]['base'])})",
        ),
        (
            f"memory: {states[0]['name']}",
            f"{fmt_bytes(states[0]['ours'])} "
            f"(plain {fmt_bytes(states[0]['base'])}, "
            f"{fmt_ratio(states[0]['ours'] / states[0]['base'])})",
        ),
        *[
            (
                f"memory growth, {fmt_count(g['cycles'])} cycles: {name}",
                f"{fmt_bytes(g['traced_growth'])} traced, {fmt_bytes(g['rss_growth'])} RSS",
            )
            for name, g in cycle_runs
        ],
        *session_part["headline"],
    ]
    data = {
        "objects": objects,
        "states": states,
        "cycles": [{"name": n, **g} for n, g in cycle_runs],
        "sessions": session_part["data"],
    }
    return SectionResult(KEY, TITLE, "\n".join(md), targets, [plot], data, headline)


def _plot(cfg: Config, objects: list[dict[str, Any]]) -> Any:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    ys = list(range(len(objects)))
    ax.barh(
        [y - 0.2 for y in ys], [r["ours"] for r in objects], 0.4, label="ours", color=COLORS["ours"]
    )
    ax.barh(
        [y + 0.2 for y in ys],
        [r["base"] for r in objects],
        0.4,
        label="plain",
        color=COLORS["plain"],
    )
    ax.set_yticks(ys)
    ax.set_yticklabels([r["name"] for r in objects], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("bytes per unit (tracemalloc)")
    ax.set_title("Memory per synced object / tracked container")
    ax.legend()
    fig.tight_layout()
    path = cfg.out_dir / "memory.png"
    fig.savefig(path)
    plt.close(fig)
    return path
