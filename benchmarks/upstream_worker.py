"""Runs inside a subprocess whose PYTHONPATH is benchmarks/.upstream, so that
`import ws_sync` is upstream ws-sync 0.6.9. Standalone on purpose: it must not
import anything of ours. Usage: upstream_worker.py TASK JSON_ARGS; the last
stdout line is the JSON result; progress goes to stderr.

Upstream's `Sync` needs a `Session` in `session_context` and sends only while
`session.ws` is set; `FakeWS.send_json` does what starlette's `send_json` does
(`json.dumps` with compact separators), so the serialization is billed."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from typing import Any


def log(msg: str) -> None:
    print(f"    [upstream] {msg}", file=sys.stderr, flush=True)


class FakeWS:
    def __init__(self) -> None:
        self.last = ""
        self.count = 0

    async def send_json(self, data: Any) -> None:
        self.last = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        self.count += 1

    async def send_bytes(self, data: bytes) -> None:
        pass


def check_upstream() -> str:
    import ws_sync

    if ".upstream" not in (ws_sync.__file__ or ""):
        raise SystemExit(f"expected upstream ws_sync, got {ws_sync.__file__}")
    from importlib.metadata import version

    return version("ws-sync")


def calibrate(loop: asyncio.AbstractEventLoop, fn: Any, target: float) -> int:
    inner = 1
    while True:
        t0 = time.perf_counter()
        loop.run_until_complete(run_n(fn, inner))
        dt = time.perf_counter() - t0
        if dt >= target or inner >= 100_000:
            return inner
        inner = min(100_000, max(inner * 2, int(inner * target / max(dt, 1e-9) * 1.2) + 1))


async def run_n(fn: Any, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        await fn()
    return time.perf_counter() - t0


def sync_cost(args: dict[str, Any]) -> dict[str, Any]:
    """One-field change + `await obj.sync()` on a list of `n` dict items."""
    from ws_sync import Session, session_context, sync_all

    ws_version = check_upstream()
    session = Session()
    session.ws = FakeWS()
    session_context.set(session)

    class State:
        @sync_all("S")
        def __init__(self, n: int) -> None:
            self.items = [
                {"id": i, "name": f"item {i}", "value": 0, "done": False} for i in range(n)
            ]

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    out: dict[str, Any] = {"version": ws_version, "sizes": {}}
    prev: tuple[int, float] | None = None
    for n in args["sizes"]:
        if prev is not None:
            estimate = prev[1] * n / prev[0]
            if estimate > args["skip_over"]:
                log(f"n={n}: skipped, one sync would take ~{estimate:.0f} s")
                out["sizes"][str(n)] = {"skipped": f"one sync estimated at {estimate:.0f} s"}
                continue
        gc.collect()
        t0 = time.perf_counter()
        state = State(n)
        build = time.perf_counter() - t0
        k = [0]
        stride = 7919 % n or 1

        async def step(
            state: Any = state, n: int = n, stride: int = stride, k: list[int] = k
        ) -> None:
            state.items[k[0]]["value"] += 1
            k[0] = (k[0] + stride) % n
            await state.sync()

        t0 = time.perf_counter()
        loop.run_until_complete(step())
        first = time.perf_counter() - t0
        samples: list[float] = []
        if first < 0.005:
            inner = calibrate(loop, step, args["target"])
            t_start = time.monotonic()
            while len(samples) < args["max_samples"]:
                samples.append(loop.run_until_complete(run_n(step, inner)) / inner)
                if len(samples) >= args["min_samples"] and time.monotonic() - t_start > 2:
                    break
        else:
            t_start = time.monotonic()
            while len(samples) < args["max_samples"]:
                samples.append(loop.run_until_complete(run_n(step, 1)))
                if (
                    len(samples) >= args["min_samples_slow"]
                    and time.monotonic() - t_start > args["budget"]
                ):
                    break
        frame = session.ws.last
        out["sizes"][str(n)] = {
            "samples": samples,
            "build": build,
            "frame_bytes": len(frame.encode()),
            "frame": frame if len(frame) < 2000 else frame[:2000],
        }
        med = sorted(samples)[len(samples) // 2]
        log(f"n={n}: {med * 1e3:.3f} ms/sync over {len(samples)} samples (build {build:.1f} s)")
        prev = (n, med)
        state.sync._deregister()
        del state, step
        gc.collect()
    return out


def main() -> None:
    task = sys.argv[1]
    args = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    if task == "sync_cost":
        result = sync_cost(args)
    elif task == "version":
        result = {"version": check_upstream()}
    elif task == "serve":
        from upstream_server import serve  # type: ignore[import-not-found]

        serve(args)
        return
    else:
        raise SystemExit(f"unknown task {task}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
