"""ws-sync 0.6.9 from PyPI, installed into ``benchmarks/.upstream`` and run in
subprocesses whose ``PYTHONPATH`` makes ``import ws_sync`` resolve to it (its
import name is the same as ours)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from .common import UPSTREAM_DIR

UPSTREAM_VERSION = "0.6.9"
WORKER = Path(__file__).resolve().parent / "upstream_worker.py"


def installed() -> bool:
    return (UPSTREAM_DIR / "ws_sync" / "sync.py").exists() and any(
        UPSTREAM_DIR.glob(f"ws_sync-{UPSTREAM_VERSION}.dist-info")
    )


def ensure_installed(log: Any = print) -> None:
    """`pip install --target benchmarks/.upstream ws-sync==0.6.9` with its
    dependencies. jsonpatch is pinned to the version our reference uses, so the
    reference and upstream run the same diff code."""
    if installed():
        return
    pins = [f"ws-sync=={UPSTREAM_VERSION}"]
    for dep in ("jsonpatch", "jsonpointer"):
        with contextlib.suppress(Exception):
            pins.append(f"{dep}=={version(dep)}")
    log(f"installing upstream {' '.join(pins)} into {UPSTREAM_DIR}")
    UPSTREAM_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(UPSTREAM_DIR),
            *pins,
        ],
        check=True,
    )
    if not installed():
        raise RuntimeError(f"upstream ws-sync {UPSTREAM_VERSION} did not install")


def env() -> dict[str, str]:
    """Environment for a process that must import upstream's `ws_sync`."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(UPSTREAM_DIR)
    e.pop("PYTHONSTARTUP", None)
    return e


def command(task: str, args: dict[str, Any]) -> list[str]:
    return [sys.executable, str(WORKER), task, json.dumps(args)]


def run(task: str, args: dict[str, Any], timeout: float = 900) -> dict[str, Any]:
    """Run one worker task to completion; its last stdout line is its JSON result.
    Its stderr (progress) goes straight through."""
    proc = subprocess.run(
        command(task, args),
        env=env(),
        cwd=str(UPSTREAM_DIR),  # never the repo root, where our ws_sync lives
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"upstream worker {task} failed with exit code {proc.returncode}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


def start(task: str, args: dict[str, Any]) -> subprocess.Popen[str]:
    """Start a long-running worker task (a server); the caller stops it."""
    return subprocess.Popen(
        command(task, args),
        env=env(),
        cwd=str(UPSTREAM_DIR),
        stdout=subprocess.PIPE,
        text=True,
    )
