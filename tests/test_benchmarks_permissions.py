"""The permission benchmark runs end to end at a small size and reports the
check's share of the action round trip."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_run_reports_each_measure_and_the_verdict() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.permissions", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = dict(re.findall(r"^\| ([^|]+?) \| ([^|]+?) \|", proc.stdout, re.M))
    for measure in (
        "action round trip (uvicorn, another process)",
        "allow check alone",
        "can_write check alone, one op",
        "check when no policy is defined",
    ):
        assert re.fullmatch(r"[\d.]+ (ns|µs|ms|s)", rows[measure]), (measure, rows)
    pattern = r"allow check / round trip: ([\d.]+)% \(goal <= 5%\): (met|missed)"
    verdict = re.search(pattern, proc.stdout)
    assert verdict is not None, proc.stdout
