"""`python -m benchmarks [--quick] [--only SECTION] [--out DIR | --save]`

Results go to an untracked folder, ``test-artifacts/benchmarks/`` (git-ignored),
unless ``--save`` asks for the tracked ``benchmarks/results/`` (which also
refreshes the summary in ``benchmarks/README.md``) or ``--out`` names one.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

from .common import BENCH_DIR, Config, Progress, SectionResult
from .report import print_summary, update_readme, write_section, write_summary

TRACKED = BENCH_DIR / "results"
UNTRACKED = BENCH_DIR.parent / "test-artifacts" / "benchmarks"

SECTIONS = [
    "sync_cost",
    "mutation_mix",
    "tracking_tax",
    "e2e",
    "fanout",
    "memory",
    "inbound",
    "versioned",
    "redis",
]
ALIASES = {str(i + 1): name for i, name in enumerate(SECTIONS)}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes, a few seconds per section, no upstream (writes to a temp dir "
        "unless --out is given)",
    )
    p.add_argument(
        "--only",
        action="append",
        metavar="SECTION",
        help=f"run only this section (repeatable): {', '.join(SECTIONS)} or 1-{len(SECTIONS)}",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--out", type=Path, help="results directory (default test-artifacts/benchmarks, untracked)"
    )
    where.add_argument(
        "--save",
        action="store_true",
        help="write the tracked benchmarks/results and update benchmarks/README.md",
    )
    p.add_argument(
        "--no-upstream", action="store_true", help="leave upstream 0.6.9 out of the comparisons"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    chosen = SECTIONS
    if args.only:
        chosen = []
        for name in args.only:
            name = ALIASES.get(name, name).replace("-", "_")
            if name not in SECTIONS:
                print(f"unknown section {name!r}; choose from {SECTIONS}", file=sys.stderr)
                return 2
            chosen.append(name)
    if args.save and args.quick:
        print("--save keeps full runs only; --quick results are not tracked", file=sys.stderr)
        return 2
    out = args.out
    if out is None:
        if args.save:
            out = TRACKED
        elif args.quick:
            out = Path(tempfile.mkdtemp(prefix="ws-sync-bench-"))
        else:
            out = UNTRACKED
    out.mkdir(parents=True, exist_ok=True)
    cfg = Config(quick=args.quick, out_dir=out, upstream=not (args.quick or args.no_upstream))
    progress = Progress(cfg)
    progress(f"sections {', '.join(chosen)}; results in {out}")

    results: list[SectionResult] = []
    for name in chosen:
        module = importlib.import_module(f"benchmarks.{name}")
        sub = progress.sub(name)
        sub("start")
        t0 = time.monotonic()
        result: SectionResult = module.run(cfg, sub)
        result.seconds = time.monotonic() - t0
        result.finished = time.strftime("%Y-%m-%d %H:%M:%S")
        write_section(cfg, result)
        results.append(result)
        sub(f"done in {result.seconds:.0f} s")
        summary = write_summary(cfg, results, SECTIONS)
        if args.save:
            update_readme(BENCH_DIR / "README.md", summary)
    print_summary(results)
    total = time.monotonic() - cfg.started
    print(f"total {total:.0f} s; results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
