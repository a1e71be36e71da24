"""The fuzzer's server, run in its own process: ``python tests/fuzz_app.py --port N``.

Its own process so that what the monitor measures is the server's event
loop alone: a task that sleeps 10 ms and records how late it wakes. Every
connection gets a fresh session (``user_sessions=False``) with two objects,
``FUZZ`` (modelled by the fuzzer) and ``SINK`` (the target of mutated frames).

Routes:

- ``/ws``: the fuzz endpoint; ``/ws-tight`` (rate 50/s, 1.5 s of saturation
  allowed) for the 1008 probe; ``/ws-slow`` (small outbound queue) for the
  1013 probe;
- ``GET /stats``: loop lag, RSS, every ``FUZZ`` object by ``ident``, and the
  errors the server logged.

The process exits by itself after ``--lifetime`` seconds, or when its parent
is gone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import uvicorn
from pydantic import BaseModel, Field
from pydantic_core import to_json
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ws_sync import Limits, remote_action, remote_task, session_context, sync_all
from ws_sync.endpoint import sync_endpoint

WS_MAX_SIZE = 2 << 20
LAG_INTERVAL = 0.01


class Item(BaseModel):
    name: str
    qty: Annotated[int, Field(ge=0)] = 0


class Fuzz(BaseModel):
    """The modelled object: every kind of synced value a client can write."""

    ident: str = ""
    title: str = ""
    count: int = 0
    ratio: float = 0.0
    notes: list[str] = []
    items: list[Item] = []
    data: dict[str, Any] = {}
    uploaded: int = 0

    @sync_all("FUZZ", read_only=["ident", "uploaded"])
    def model_post_init(self, __context: Any) -> None:
        pass

    @property
    def size(self) -> int:
        return len(self.notes) + len(self.items)

    @remote_action("INC")
    async def inc(self, by: Annotated[int, Field(gt=0)] = 1) -> int:
        self.count += by
        await self.sync()
        return self.count

    @remote_action("ADD")
    async def add(self, note: str) -> int:
        self.notes.append(note)
        await self.sync()
        return len(self.notes)

    @remote_action("RENAME")
    async def rename(self, title: str) -> None:
        self.title = title
        await self.sync()

    @remote_action("ECHO")
    async def echo(self, value: Any) -> Any:
        return value

    @remote_action("UPLOAD")
    async def upload(self, data: bytes, name: str = "") -> int:
        self.uploaded += len(data)
        await self.sync()
        return len(data)

    @remote_action("BLOB")
    async def blob(self, n: Annotated[int, Field(ge=0, le=65536)]) -> int:
        await self.sync.send_binary({"n": n}, bytes(n))
        return n

    @remote_action("FAIL")
    async def fail(self) -> None:
        raise RuntimeError("the app failed")

    @remote_action("RETURN_NAN")  # not "NAN": "NaN" folds to it, and is fuzzed as unknown
    async def nan(self) -> float:
        return float("nan")

    @remote_task("COUNT")
    async def count_to(self, to: Annotated[int, Field(ge=0, le=20)]) -> Any:
        for i in range(to):
            await asyncio.sleep(0)
            yield i

    @remote_task("SLOW")
    async def slow(self) -> str:
        await asyncio.sleep(0.05)
        return "done"


class Sink:
    """The unmodelled object: whatever mutated frames do to it is fine, as
    long as the answers are JSON. Its actions never raise."""

    @sync_all("SINK")
    def __init__(self) -> None:
        self.name = ""
        self.values: list[Any] = []
        self.blob: dict[str, Any] = {}

    @remote_action("POKE")
    async def poke(self, x: Any = None, data: bytes = b"") -> int:
        return len(data)

    @remote_action("SPAM")
    async def spam(self, n: Annotated[int, Field(ge=0, le=100_000)], size: int = 1000) -> None:
        """Many frames at once, for the slow-reader probe."""
        text = "s" * max(0, min(size, 1 << 20))
        for _ in range(n):
            await self.sync.toast(text)

    @remote_task("TICK")
    async def tick(self, n: Annotated[int, Field(ge=0, le=10)] = 1) -> Any:
        for i in range(n):
            await asyncio.sleep(0)
            yield i


# --------------------------------------------------------------------------- #
# what the server saw


class Lag:
    """How late the loop wakes a task that sleeps `interval`: the time any
    frame handling held the loop."""

    def __init__(self, interval: float = LAG_INTERVAL) -> None:
        self.interval = interval
        self.worst = 0.0
        self.worst_at = 0.0
        self.window = 0.0
        """The worst since the last `summary(reset=True)`."""
        self.samples: list[float] = []
        self.started = time.monotonic()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await asyncio.sleep(self.interval)
            late = loop.time() - t0 - self.interval
            self.samples.append(late)
            self.window = max(self.window, late)
            if late > self.worst:
                self.worst, self.worst_at = late, time.monotonic() - self.started

    def summary(self, reset: bool = False) -> dict[str, Any]:
        xs = sorted(self.samples) or [0.0]
        window, self.window = self.window, (0.0 if reset else self.window)
        return {
            "window": window,
            "worst": self.worst,
            "worst_at": self.worst_at,
            "p50": xs[len(xs) // 2],
            "p99": xs[min(len(xs) - 1, int(len(xs) * 0.99))],
            "p999": xs[min(len(xs) - 1, int(len(xs) * 0.999))],
            "over_100ms": sum(1 for x in xs if x > 0.1),
            "samples": len(self.samples),
        }


class Logged(logging.Handler):
    """Warnings and errors of ws_sync, kept for /stats."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) < 10_000:
            exc = record.exc_info[1] if record.exc_info else None
            self.records.append(
                {
                    "level": record.levelname,
                    "message": record.getMessage()[:500],
                    "exception": f"{type(exc).__name__}: {exc}"[:500] if exc else None,
                }
            )


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class App:
    """The app and what it keeps for /stats."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.lag = Lag()
        self.logged = Logged()
        self.objects: dict[str, Fuzz] = {}
        self.pings = 0
        self.sessions = 0
        self._idents = itertools.count()

    def factory(self) -> list[Any]:
        ident = f"s{next(self._idents)}"
        fuzz = Fuzz(ident=ident)
        if len(self.objects) < 5000:
            self.objects[ident] = fuzz
        session = session_context.get()
        session.register_event("FUZZ_PING", self.ping)
        session.register_event("FUZZ_BOOM", self.boom)
        self.sessions += 1
        return [fuzz, Sink()]

    async def ping(self, data: Any) -> None:
        self.pings += 1

    async def boom(self, data: Any) -> None:
        raise ValueError("the app's event handler failed")

    async def stats(self, request: Request) -> JSONResponse:
        objects = {}
        size = None
        if request.query_params.get("size") == "1":  # what the apps' state holds, as JSON
            size = sum(len(to_json(o.sync.state())) for o in self.objects.values())
        if request.query_params.get("objects") != "0":
            objects = {
                k: {"dump": o.model_dump(mode="json"), "state": o.sync.state()}
                for k, o in self.objects.items()
            }
        return JSONResponse(
            {
                "lag": self.lag.summary(reset=request.query_params.get("reset") == "1"),
                "rss": rss(),
                "pid": os.getpid(),
                "sessions": self.sessions,
                "pings": self.pings,
                "state_bytes": size,
                "logged": self.logged.records,
                "objects": objects,
            }
        )

    def starlette(self) -> Starlette:
        tight = Limits(
            rate=50.0, burst=20, address_rate=None, throttle_timeout=1.5, close_timeout=2.0
        )
        slow = Limits(
            rate=None,
            address_rate=None,
            outbound_frames=256,
            outbound_bytes=512 << 10,
            send_timeout=3.0,
            close_timeout=10.0,  # long enough to read the queued frames up to the 1013
        )
        routes = [
            sync_endpoint(self.factory, path="/ws", user_sessions=False, limits=self.limits),
            sync_endpoint(self.factory, path="/ws-tight", user_sessions=False, limits=tight),
            sync_endpoint(self.factory, path="/ws-slow", user_sessions=False, limits=slow),
            Route("/stats", self.stats),
        ]
        return Starlette(routes=routes, lifespan=self.lifespan)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        logging.getLogger("ws_sync").addHandler(self.logged)
        monitor = asyncio.create_task(self.lag.run())
        try:
            yield
        finally:
            monitor.cancel()


async def _watch(server: uvicorn.Server, lifetime: float) -> None:
    """Stop after `lifetime` seconds, or as soon as the parent is gone."""
    parent = os.getppid()
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline and os.getppid() == parent:
        await asyncio.sleep(0.5)
    server.should_exit = True


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--lifetime", type=float, default=120.0, help="seconds before it exits")
    p.add_argument("--rate", type=float, default=300.0, help="frames/s per connection (0: off)")
    p.add_argument("--burst", type=int, default=60)
    p.add_argument("--address-rate", type=float, default=0.0, help="frames/s per address (0: off)")
    p.add_argument("--address-burst", type=int, default=2000)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    limits = Limits(
        rate=args.rate or None,
        burst=args.burst,
        address_rate=args.address_rate or None,
        address_burst=args.address_burst,
        close_timeout=2.0,
    )
    app = App(limits)
    config = uvicorn.Config(
        app.starlette(),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        ws_max_size=WS_MAX_SIZE,
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)

    async def run() -> None:
        watcher = asyncio.create_task(_watch(server, args.lifetime))
        await server.serve()
        watcher.cancel()

    asyncio.run(run())
    sys.exit(0)


if __name__ == "__main__":
    main()
