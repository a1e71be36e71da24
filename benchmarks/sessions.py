"""In-process sessions for the fan-out and memory sections: our real `Session`
and `Connection` (outbound queue, writer task) on a fake Starlette WebSocket
whose `send` only counts frames."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocketState

from .common import Config, Progress, Target


class FakeWebSocket:
    """What `ws_sync.connection.Connection` uses of a Starlette WebSocket. An
    already-accepted socket: `send` records, `receive` waits forever."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}
        self.application_state = WebSocketState.CONNECTED
        self.client_state = WebSocketState.CONNECTED
        self.sent = 0
        self.last: Any = None
        self._never = asyncio.Event()

    async def accept(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def send(self, message: dict[str, Any]) -> None:
        self.sent += 1
        self.last = message

    async def receive(self) -> dict[str, Any]:
        await self._never.wait()
        return {"type": "websocket.disconnect"}

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.application_state = WebSocketState.DISCONNECTED
        self._never.set()


async def connected_session(**kwargs: Any) -> tuple[Any, FakeWebSocket]:
    """A `Session` connected to a `FakeWebSocket` (its writer task running)."""
    from ws_sync import Session

    ws = FakeWebSocket()
    session = Session(**kwargs)
    await session.new_connection(ws)  # type: ignore[arg-type]
    return session, ws


async def drain(sockets: list[FakeWebSocket], expected: list[int], spins: int = 10_000) -> None:
    """Let the writer tasks run until every socket has received its frames."""
    for _ in range(spins):
        if all(ws.sent >= n for ws, n in zip(sockets, expected, strict=True)):
            return
        await asyncio.sleep(0)
    raise RuntimeError("writers did not drain")


# --------------------------------------------------------------------------- #
# memory


async def _idle_sessions(n: int, connected: bool) -> tuple[int, list[Any]]:
    """tracemalloc bytes of `n` sessions (connected to fake sockets or not)."""
    import gc
    import tracemalloc

    from ws_sync import Session

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept: list[Any] = []
        for _ in range(n):
            if connected:
                kept.append(await connected_session())
            else:
                kept.append(Session())
        await asyncio.sleep(0)
        gc.collect()
        size = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return size, kept


async def _close_all(kept: list[Any]) -> None:
    for item in kept:
        session = item[0] if isinstance(item, tuple) else item
        await session.close()


def in_process_idle(n: int) -> dict[str, float]:
    async def go() -> dict[str, float]:
        size_idle, kept = await _idle_sessions(n, connected=False)
        await _close_all(kept)
        size_conn, kept = await _idle_sessions(n, connected=True)
        await _close_all(kept)
        return {"session": size_idle / n, "connected": size_conn / n}

    return asyncio.run(go())


def server_idle(n: int) -> dict[str, dict[str, float]]:
    """Per idle connection in a real server process (uvicorn, real sockets):
    ours without objects, and the echo endpoint as the baseline."""
    from .e2e import Server, client, running

    out: dict[str, dict[str, float]] = {}
    for srv in (Server("ours (no object)", "bare", 0), Server("echo", "echo", 0)):
        with running([srv], trace=True):
            res = client(
                {
                    "mode": "idle",
                    "uri": srv.uri,
                    "initial": srv.initial,
                    "mem": srv.mem_url,
                    "clients": n,
                    "settle": 1.0,
                }
            )
        out[srv.kind] = {
            "traced": (res["after"]["traced"] - res["before"]["traced"]) / n,
            "rss": (res["after"]["rss"] - res["before"]["rss"]) / n,
            "traced_after_close": (res["closed"]["traced"] - res["before"]["traced"]) / n,
        }
    return out


class _Counter:
    """Counts the records a logger emits (registration warnings)."""

    def __init__(self) -> None:
        import logging

        self.count = 0
        outer = self

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                outer.count += 1

        self.handler = Handler(logging.WARNING)


def cycles_in_session(cycles: int, warmup: int, fn: Any) -> tuple[dict[str, Any], int]:
    """`fn(i)` repeated inside one long-lived connected session (a fake socket
    whose writer drains every 100 cycles). Returns growth and the number of
    warnings logged by ws_sync meanwhile."""
    import gc
    import logging
    import time
    import tracemalloc

    from .common import rss_bytes

    counter = _Counter()
    log = logging.getLogger("ws_sync")
    log.addHandler(counter.handler)
    propagate = log.propagate
    log.propagate = False

    async def go() -> dict[str, Any]:
        session, ws = await connected_session()
        with session:
            for i in range(warmup):
                fn(i)
                if i % 100 == 0:
                    await asyncio.sleep(0)
            await asyncio.sleep(0)
            gc.collect()
            rss0 = rss_bytes()
            tracemalloc.start()
            t0 = time.perf_counter()
            try:
                base = tracemalloc.get_traced_memory()[0]
                for i in range(cycles):
                    fn(i)
                    if i % 100 == 0:
                        await asyncio.sleep(0)
                for _ in range(10):
                    await asyncio.sleep(0)
                gc.collect()
                grown = tracemalloc.get_traced_memory()[0] - base
                peak = tracemalloc.get_traced_memory()[1] - base
            finally:
                tracemalloc.stop()
            seconds = time.perf_counter() - t0
        registered = len(session.syncs)
        frames = ws.sent
        await session.close()
        gc.collect()
        return {
            "cycles": cycles,
            "traced_growth": grown,
            "traced_peak": peak,
            "rss_growth": rss_bytes() - rss0,
            "seconds": seconds,
            "still_registered": registered,
            "frames_sent": frames,
        }

    try:
        result = asyncio.run(go())
    finally:
        log.removeHandler(counter.handler)
        log.propagate = propagate
    return result, counter.count


def memory_part(
    cfg: Config,
    progress: Progress,
    cycles: int,
    warmup: int,
    growth: Callable[[int, Callable[[int], None], int], dict[str, Any]],
    one_cycle: Callable[[int], None],
) -> dict[str, Any]:
    """Per idle session, and create/destroy cycles inside one long-lived session."""
    from .common import fmt_bytes, fmt_count, md_table

    n_in = cfg.pick(1_000, 50)
    progress(f"{n_in} idle sessions in-process")
    inproc = in_process_idle(n_in)
    n_srv = cfg.pick(200, 10)
    progress(f"{n_srv} idle connections to a real server (ours without objects, and echo)")
    srv = server_idle(n_srv)
    ours_only = srv["bare"]["traced"] - srv["echo"]["traced"]
    progress(
        f"idle session: {fmt_bytes(inproc['connected'])} in-process; server: "
        f"{fmt_bytes(srv['bare']['traced'])} per connection vs echo "
        f"{fmt_bytes(srv['echo']['traced'])}"
    )
    progress(f"{fmt_count(cycles)} create/flush/drop cycles inside one connected session")
    g, warnings = cycles_in_session(cycles, warmup, one_cycle)
    g["warnings"] = warnings
    progress(
        f"in session: grew {fmt_bytes(g['traced_growth'])}, {warnings} warnings, "
        f"{g['still_registered']} objects still registered"
    )
    rows = [
        ["`Session()`, never connected (in-process)", fmt_bytes(inproc["session"]), ""],
        [
            "`Session` connected: + `Connection`, writer task (in-process, fake socket)",
            fmt_bytes(inproc["connected"]),
            "",
        ],
        [
            "server process, ours (`sync_endpoint`, no object), per idle connection",
            fmt_bytes(srv["bare"]["traced"]),
            f"RSS {fmt_bytes(srv['bare']['rss'])}",
        ],
        [
            "server process, echo endpoint, per idle connection",
            fmt_bytes(srv["echo"]["traced"]),
            f"RSS {fmt_bytes(srv['echo']['rss'])}",
        ],
        ["ours minus echo: what our session layer adds per connection", fmt_bytes(ours_only), ""],
    ]
    judged = max(inproc["connected"], ours_only)
    target = Target(
        "memory per idle session",
        "≤10 KB",
        f"{fmt_bytes(inproc['connected'])} in-process, {fmt_bytes(ours_only)} over echo in "
        f"the server ({fmt_bytes(srv['bare']['traced'])} per connection in all)",
        judged <= 10_000 if not cfg.quick else None,
        "" if judged <= 10_000 else "see the table in the memory section",
    )
    warn_note = ""
    if warnings:
        warn_note = (
            f"While cycling, ws_sync logged {warnings:,} warnings: every object uses the same "
            "key, and a dropped object's `Sync` stays registered in the session (weakly) "
            "until the garbage collector breaks the `Sync` ↔ node reference cycle, so the "
            "next object's registration finds it and warns that the key was registered twice."
        )
    markdown = [
        "### Per idle session",
        "",
        f"In-process: {n_in:,} sessions kept alive together. Server: {n_srv} idle "
        "`websockets` clients connect to a uvicorn process running tracemalloc; "
        "`GET /mem` (after `gc.collect()`) before and after they connected.",
        "",
        md_table(["what", "traced bytes per session", ""], rows),
        "",
        "### Create/destroy inside one long-lived session",
        "",
        "The same cycle as above, inside a connected session (our `Session` on a fake "
        "socket; every new object registers with it and is sent `_SET`, every flush a "
        "`_PATCH`; the writer drains every 100 cycles).",
        "",
        md_table(
            [
                "cycles",
                "traced growth",
                "traced peak",
                "RSS growth",
                "still registered",
                "frames sent",
            ],
            [
                [
                    fmt_count(g["cycles"]),
                    fmt_bytes(g["traced_growth"]),
                    fmt_bytes(g["traced_peak"]),
                    fmt_bytes(g["rss_growth"]),
                    str(g["still_registered"]),
                    f"{g['frames_sent']:,}",
                ]
            ],
        ),
        "",
        warn_note,
        "",
    ]
    return {
        "cycles": [("create, mutate, flush, drop; inside one connected session", g)],
        "targets": [target],
        "markdown": markdown,
        "headline": [
            (
                "memory per idle session (in-process / ours over echo in a server)",
                f"{fmt_bytes(inproc['connected'])} / {fmt_bytes(ours_only)}",
            ),
        ],
        "data": {"in_process": inproc, "server": srv, "in_session_cycles": g},
    }
