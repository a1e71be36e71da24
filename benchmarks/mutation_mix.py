# ruff: noqa: RUF001
"""Section 2: different kinds of mutation on a 100k-item state, ours vs the
full-diff reference; plus probes of cases whose cost should follow the change."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonpatch

from .common import (
    Config,
    Progress,
    SectionResult,
    Stats,
    Target,
    fmt_bytes,
    fmt_count,
    fmt_ratio,
    fmt_stats_time,
    fmt_time,
    md_table,
    settle,
)
from .plots import COLORS, pyplot
from .subjects import MixItem, MixRef, RefMixItem, ours_mix

KEY = "mutation_mix"
TITLE = "2. Mutation mix"


@dataclass
class Mutation:
    name: str
    code: str
    do: Callable[[Any, int], Any]  # (items, sample index) -> token for undo
    undo: Callable[[Any, Any], None] | None = None


def _new(cls: type, i: int) -> Any:
    return cls(id=-1 - i, name=f"new {i}", attrs={"a": 1})


def mutations(item_cls: type, n: int) -> list[Mutation]:
    mid = n // 2

    def append(items: Any, i: int) -> None:
        items.append(_new(item_cls, i))

    def insert_front(items: Any, i: int) -> None:
        items.insert(0, _new(item_cls, i))

    def delete(items: Any, i: int) -> Any:
        removed = items[mid]
        del items[mid]
        return removed

    def field(items: Any, i: int) -> None:
        items[(i * 7919) % len(items)].value += 1

    def dict_update(items: Any, i: int) -> None:
        items[(i * 7919) % len(items)].attrs.update({"a": i, "c": i})

    def sort(items: Any, i: int) -> None:
        items.sort(key=lambda m: m.id, reverse=i % 2 == 0)

    return [
        Mutation("append", "items.append(Item(...))", append, lambda it, _: it.pop()),
        Mutation(
            "insert at front", "items.insert(0, Item(...))", insert_front, lambda it, _: it.pop(0)
        ),
        Mutation(
            "delete (middle)", f"del items[{mid}]", delete, lambda it, tok: it.insert(mid, tok)
        ),
        Mutation("nested model field", "items[k].value += 1", field),
        Mutation("dict update", 'items[k].attrs.update({"a": i, "c": i})', dict_update),
        Mutation("sort (reverses order)", "items.sort(key=id, reverse=...)", sort),
    ]


class OursClient:
    """Our state plus the client's copy, kept by applying every frame we send."""

    def __init__(self, n: int) -> None:
        self.state, self.sub = ours_mix(n)
        self.sync = self.state.sync  # type: ignore[attr-defined]
        self.client = self.sync.state()
        self.seen = self.sub.count

    def flush(self) -> None:
        self.sync.flush()

    def catch_up(self) -> int:
        """Apply the frame sent since the last call; returns its size in bytes."""
        if self.sub.count == self.seen:
            return 0
        self.seen = self.sub.count
        frame = self.sub.last
        jsonpatch.apply_patch(self.client, json.loads(frame)["data"], in_place=True)
        return len(frame.encode())

    def correct(self) -> bool:
        return bool(self.client == self.sync.state())


def _time_ours(
    oc: OursClient, m: Mutation, samples: int, budget: float
) -> tuple[list[float], list[int], list[int]]:
    items = oc.state.items
    times: list[float] = []
    sizes: list[int] = []
    nops: list[int] = []
    t_start = time.monotonic()
    for i in range(samples):
        t0 = time.perf_counter()
        token = m.do(items, i)
        ops = oc.sync.flush()
        times.append(time.perf_counter() - t0)
        nops.append(len(ops))
        sizes.append(oc.catch_up())
        if m.undo is not None:
            m.undo(items, token)
            oc.flush()
            oc.catch_up()
        if i >= 4 and time.monotonic() - t_start > budget:
            break
    return times, sizes, nops


def _time_ref(
    ref: MixRef, m: Mutation, samples: int, budget: float
) -> tuple[list[float], list[int], list[int]]:
    times: list[float] = []
    sizes: list[int] = []
    nops: list[int] = []
    t_start = time.monotonic()
    for i in range(samples):
        t0 = time.perf_counter()
        token = m.do(ref.items, i)
        frame = ref.sync.sync()
        times.append(time.perf_counter() - t0)
        sizes.append(len(frame.encode()))
        nops.append(len(ref.sync.last_ops))
        if m.undo is not None:
            m.undo(ref.items, token)
            ref.sync.resnapshot()
        if time.monotonic() - t_start > budget and len(times) >= 3:
            break
    return times, sizes, nops


def _probes(cfg: Config, n: int, progress: Progress) -> list[dict[str, Any]]:
    """Cases whose cost should follow the change but may not."""
    out: list[dict[str, Any]] = []
    oc = OursClient(n)
    items = oc.state.items

    # many appends in one sync
    batches = cfg.pick([100, 1_000, 4_000, 16_000], [10, 100, 400])
    for k in batches:
        t0 = time.perf_counter()
        for j in range(k):
            items.append(_new(MixItem, j))
        t1 = time.perf_counter()
        oc.flush()
        t2 = time.perf_counter()
        oc.catch_up()
        del items[n:]
        oc.flush()
        oc.catch_up()
        out.append(
            {
                "probe": f"append {fmt_count(k)} items, then one sync",
                "mutate": t1 - t0,
                "sync": t2 - t1,
                "per_item": (t2 - t1) / k,
            }
        )
        progress(f"probe: {k} appends in one sync: sync {fmt_time(t2 - t1)}")

    # nested field change while the list is shifted by one front insert
    reps = cfg.pick(10, 3)
    base: list[float] = []
    shifted: list[float] = []
    for r in range(reps):
        k = (r * 7919 + 11) % n
        t0 = time.perf_counter()
        items[k].value += 1
        oc.flush()
        base.append(time.perf_counter() - t0)
        oc.catch_up()
    items.insert(0, _new(MixItem, 0))
    oc.flush()
    oc.catch_up()
    for r in range(reps):
        k = (r * 7919 + 13) % n
        t0 = time.perf_counter()
        items[k].value += 1
        oc.flush()
        shifted.append(time.perf_counter() - t0)
        oc.catch_up()
    items.pop(0)
    oc.flush()
    oc.catch_up()
    out.append(
        {
            "probe": "nested field change + sync, list not shifted",
            "sync": Stats.of(base).median,
            "per_item": None,
        }
    )
    out.append(
        {
            "probe": "same, after one items.insert(0, ...) was synced",
            "sync": Stats.of(shifted).median,
            "per_item": None,
        }
    )
    progress(
        f"probe: field change {fmt_time(Stats.of(base).median)}, after a front insert "
        f"{fmt_time(Stats.of(shifted).median)}"
    )
    ok = oc.correct()
    for o in out:
        o["correct"] = ok
    return out


def run(cfg: Config, progress: Progress) -> SectionResult:
    n = cfg.pick(100_000, 1_000)
    progress(f"building our state and the reference, n={fmt_count(n)}")
    oc = OursClient(n)
    ref = MixRef(n)
    results: list[dict[str, Any]] = []
    for m_ours, m_ref in zip(mutations(MixItem, n), mutations(RefMixItem, n), strict=True):
        slow = m_ours.name.startswith("sort")
        times, sizes, nops = _time_ours(
            oc, m_ours, cfg.pick(12 if slow else 300, 5), cfg.pick(10.0, 1.0)
        )
        correct = oc.correct()
        progress(
            f"{m_ours.name}: ours {fmt_time(Stats.of(times).median)}, "
            f"{fmt_bytes(Stats.of(sizes).median)}, client copy correct: {correct}"
        )
        rtimes, rsizes, rnops = _time_ref(ref, m_ref, cfg.pick(8, 3), cfg.pick(12.0, 1.0))
        progress(
            f"{m_ours.name}: reference {fmt_time(Stats.of(rtimes).median)}, "
            f"{fmt_bytes(Stats.of(rsizes).median)}"
        )
        results.append(
            {
                "name": m_ours.name,
                "code": m_ours.code,
                "ours": Stats.of(times),
                "ours_bytes": Stats.of(sizes).median,
                "ours_ops": Stats.of(nops).median,
                "ref": Stats.of(rtimes),
                "ref_bytes": Stats.of(rsizes).median,
                "ref_ops": Stats.of(rnops).median,
                "correct": correct,
            }
        )
        settle()
    del oc, ref
    settle()
    probes = _probes(cfg, n, progress)
    return _report(cfg, n, results, probes)


def _report(
    cfg: Config, n: int, results: list[dict[str, Any]], probes: list[dict[str, Any]]
) -> SectionResult:
    rows = []
    for r in results:
        rows.append(
            [
                r["name"],
                f"`{r['code']}`",
                fmt_stats_time(r["ours"]),
                fmt_stats_time(r["ref"]),
                fmt_ratio(r["ref"].median / r["ours"].median),
                f"{fmt_bytes(r['ours_bytes'])} ({r['ours_ops']:.0f} ops)",
                f"{fmt_bytes(r['ref_bytes'])} ({r['ref_ops']:.0f} ops)",
                "yes" if r["correct"] else "**NO**",
            ]
        )
    probe_rows = []
    for p in probes:
        probe_rows.append(
            [
                p["probe"],
                fmt_time(p["sync"]),
                fmt_time(p["per_item"]) if p.get("per_item") else "–",
                "yes" if p["correct"] else "**NO**",
            ]
        )
    plot = _plot(cfg, n, results)
    appends = [p for p in probes if p["probe"].startswith("append")]
    quad = ""
    if len(appends) >= 2:
        a, b = appends[0], appends[-1]
        growth = b["per_item"] / a["per_item"]
        verdict = (
            "superlinear: the cost of one sync grows faster than the number of list ops it "
            "carries (see the findings in benchmarks/README.md)"
            if growth > 2
            else "roughly linear in the number of appended items"
        )
        quad = (
            f"Sync cost per appended item: {fmt_time(a['per_item'])} with "
            f"{a['probe'].split(',')[0][7:]}, {fmt_time(b['per_item'])} with "
            f"{b['probe'].split(',')[0][7:]} ({fmt_ratio(growth)}): {verdict}."
        )
    shifted = [p for p in probes if "insert" in p["probe"]]
    unshifted = [p for p in probes if "not shifted" in p["probe"]]
    shift_note = ""
    if shifted and unshifted:
        factor = shifted[0]["sync"] / unshifted[0]["sync"]
        shift_note = (
            f"A nested change after a front insert costs {fmt_ratio(factor)} the unshifted "
            "case"
            + (
                ": the changed child's stored index hint is stale, so its position is "
                "re-found by scanning the whole list (`patch.list_positions`), once per "
                "changed child."
                if factor > 2
                else "."
            )
        )
    md = [
        f"## {TITLE}",
        "",
        f"A pydantic state of n={fmt_count(n)} items `{{id, name, value, done, attrs: dict}}`. "
        "Each sample applies one mutation and syncs; time is mutation + sync. Mutations "
        "that change the length are undone after each sample (outside the timing) so every "
        "sample sees the same state. Ours: `flush()` to a fake subscriber; the reference: "
        "`model_dump()` snapshot of every item + `jsonpatch.make_patch` + `json.dumps` "
        "(untracked models of a class of their own). After each kind, the client copy kept "
        "by applying our frames with `jsonpatch` is compared to `state()` (column "
        "*correct*). Median (p25–p75).",
        "",
        md_table(
            [
                "mutation",
                "code",
                "ours",
                "reference",
                "reference / ours",
                "ours bytes",
                "reference bytes",
                "correct",
            ],
            rows,
        ),
        "",
        "Sort has no incremental form in our change log: it resends the list whole "
        "(one `replace`), so its cost is the serialization of the list.",
        "",
        "### Proportionality probes (ours)",
        "",
        md_table(["probe", "sync", "sync per item", "correct"], probe_rows),
        "",
        quad,
        "",
        shift_note,
        "",
        f"![mutation mix]({plot.name})",
        "",
    ]
    headline = [
        (
            f"mutation mix n={fmt_count(n)}: {r['name']}",
            f"ours {fmt_time(r['ours'].median)} vs reference {fmt_time(r['ref'].median)} "
            f"({fmt_ratio(r['ref'].median / r['ours'].median)})",
        )
        for r in results
    ]
    targets = [
        Target(
            "mutation mix: patches replay to the exact state",
            "all correct",
            f"{sum(r['correct'] for r in results)}/{len(results)} mutations",
            all(r["correct"] for r in results) and all(p["correct"] for p in probes),
        )
    ]
    data = {
        "n": n,
        "mutations": [
            {
                **{k: v for k, v in r.items() if k not in ("ours", "ref")},
                "ours": r["ours"].to_dict(),
                "ref": r["ref"].to_dict(),
            }
            for r in results
        ],
        "probes": probes,
    }
    return SectionResult(KEY, TITLE, "\n".join(md), targets, [plot], data, headline)


def _plot(cfg: Config, n: int, results: list[dict[str, Any]]) -> Any:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4))
    xs = range(len(results))
    width = 0.38
    ours = [r["ours"].median * 1e6 for r in results]
    ref = [r["ref"].median * 1e6 for r in results]
    ax.bar([x - width / 2 for x in xs], ours, width, label="ours", color=COLORS["ours"])
    ax.bar(
        [x + width / 2 for x in xs],
        ref,
        width,
        label="full-diff reference",
        color=COLORS["reference"],
    )
    ax.set_yscale("log")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([r["name"] for r in results], rotation=15, fontsize=8)
    ax.set_ylabel("µs per mutation + sync (median)")
    ax.set_title(f"Mutation mix on {fmt_count(n)} pydantic items")
    ax.legend()
    fig.tight_layout()
    path = cfg.out_dir / "mutation_mix.png"
    fig.savefig(path)
    plt.close(fig)
    return path
