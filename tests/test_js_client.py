"""Runs the browser client's Node test suite (tests/js) from pytest.

The JS client (ws_sync/static) is tested with `node --test`; this wrapper makes
it part of the Python test run. It fails, never skips, when Node or the npm
dev dependencies are missing: a missing toolchain must not pass as green.
"""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_js_client_node_suite():
    node = shutil.which("node")
    assert node, "node is not on PATH; the JS client tests need Node >= 20"
    for package in ("react", "react-dom", "jsdom"):
        assert (ROOT / "node_modules" / package).is_dir(), (
            f"node_modules/{package} is missing; run `npm ci` at the repo root"
        )
    # Explicit files, not `node --test tests/js/`: a directory argument is
    # searched only by Node 20; Node 21+ take it for a module and fail.
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "js").rglob("*.test.js"))
    assert files, "no tests/js/**/*.test.js files found"
    proc = subprocess.run(
        [node, "--test", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"`node --test {' '.join(files)}` exited with {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )
