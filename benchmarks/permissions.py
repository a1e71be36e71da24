"""What a permission check costs, against the round trip it guards.

    python -m benchmarks.permissions [--quick]

An editor calls ``_ACTION:DOC {type: EDIT, $id}`` on a server in another
process (uvicorn, a signed-in principal) and waits for its `_ACTION_RESULT`:
the round trip. On its own, in this process, the work the server adds for
`allow` (the params by name, the predicate, a role check) and for
`can_write` on a one-op `_PATCH`. Also in-process: a dispatcher handling the
same action with and without `allow`, and the cost of the checks when no
policy is defined (one attribute test). Prints a markdown table; the numbers
go to README.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from .common import fmt_time
from .e2e import free_port

GOAL = 0.05


def role_is_editor(session: Any, params: dict[str, Any]) -> bool:
    return getattr(session.user, "role", None) == "editor"


def doc_classes() -> tuple[type, type]:
    """The guarded object, and the same object without any policy."""
    from ws_sync import remote_action, sync_all

    class Doc:
        @sync_all("DOC")
        def __init__(self) -> None:
            self.title = ""
            self.n = 0

        def can_write(self, session: Any, path: str, op: str) -> bool:
            return getattr(session.user, "role", None) == "editor"

        @remote_action("EDIT", allow=role_is_editor)
        async def edit(self, title: str = "x") -> int:
            self.n += 1
            return self.n

    class Open:
        @sync_all("DOC")
        def __init__(self) -> None:
            self.title = ""
            self.n = 0

        @remote_action("EDIT")
        async def edit(self, title: str = "x") -> int:
            self.n += 1
            return self.n

    return Doc, Open


class Member:
    identity = "ed"
    role = "editor"


def server_app() -> Any:
    from starlette.applications import Starlette

    from ws_sync import Limits, sync_endpoint

    doc, _ = doc_classes()
    limits = Limits(rate=1e9, burst=10**9, address_rate=1e9, address_burst=10**9)
    route = sync_endpoint(doc, user_sessions=False, authenticate=lambda ws: Member(), limits=limits)
    return Starlette(routes=[route])


async def round_trips(port: int, n: int) -> list[float]:
    from websockets.asyncio.client import connect

    out: list[float] = []
    async with connect(f"ws://127.0.0.1:{port}/ws", proxy=None) as ws:
        await ws.recv()  # _SET:DOC
        for i in range(n):
            frame = json.dumps({"type": "_ACTION:DOC", "data": {"type": "EDIT", "$id": i}})
            t0 = time.perf_counter()
            await ws.send(frame)
            while '"_ACTION_RESULT:DOC"' not in await ws.recv():
                pass
            out.append(time.perf_counter() - t0)
    return out


def in_process(samples: int) -> dict[str, list[float]]:
    """Seconds per call of the checks alone and of a dispatched action, each
    timed over a batch inside one coroutine, the subjects taking turns in
    alternating order (whichever runs first in a round pays more)."""
    return asyncio.run(_in_process(samples))


async def _in_process(samples: int) -> dict[str, list[float]]:
    from ws_sync import Session
    from ws_sync.dispatch import Dispatcher
    from ws_sync.permissions import allowed, check_write, named
    from ws_sync.remote import remote_table

    doc_cls, open_cls = doc_classes()

    class Conn:
        protocol = 1
        closing = False

        def push(self, frame: str) -> None:
            pass

    guarded, unguarded = Session(user=Member()), Session(user=Member())
    with guarded:
        doc = doc_cls()
    with unguarded:
        plain = open_cls()
    method = remote_table(doc_cls).find("action", "EDIT")
    assert method is not None and method.allow is not None
    allow = method.allow
    params = method.params(False)
    args, kwargs = params.bind({"type": "EDIT", "title": "t"})
    ops = [{"op": "replace", "path": "/title", "value": "t"}]
    to_doc = Dispatcher(guarded, Conn())  # type: ignore[arg-type]
    to_plain = Dispatcher(unguarded, Conn())  # type: ignore[arg-type]
    call = {"type": "EDIT", "title": "t", "$id": 1}

    async def allow_check(n: int) -> None:
        for _ in range(n):
            await allowed(allow, guarded, named(params, args, kwargs))

    async def write_check(n: int) -> None:
        for _ in range(n):
            check_write(doc.sync, guarded, ops)

    async def unused(n: int) -> None:
        sync = plain.sync
        for _ in range(n):
            if sync._write_policy or method is None:
                pass

    async def empty(n: int) -> None:
        for _ in range(n):
            if method is None:
                pass

    async def with_allow(n: int) -> None:
        for _ in range(n):
            await to_doc.event("_ACTION:DOC", call)

    async def without(n: int) -> None:
        for _ in range(n):
            await to_plain.event("_ACTION:DOC", call)

    checks = {
        "allow check": (allow_check, 2000),
        "can_write check (1 op)": (write_check, 2000),
        "unused check (no policy)": (unused, 200_000),
        "empty loop": (empty, 200_000),
    }
    actions = {
        "dispatched action, allow": (with_allow, 300),
        "dispatched action, no allow": (without, 300),
    }
    out: dict[str, list[float]] = {}
    for subjects in (checks, actions):  # the pair compared is timed in turns alone
        out.update({name: [] for name in subjects})
        for i in range(samples):
            turns = list(subjects.items())
            for name, (fn, n) in turns if i % 2 else reversed(turns):  # none always first
                t0 = time.perf_counter()
                await fn(n)
                out[name].append((time.perf_counter() - t0) / n)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.permissions")
    p.add_argument("--quick", action="store_true", help="a few hundred round trips")
    p.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        import uvicorn

        uvicorn.run(server_app(), host="127.0.0.1", port=args.serve, log_level="warning")
        return 0
    n = 300 if args.quick else 3000
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.permissions", "--serve", str(port)]
    server = subprocess.Popen(command)
    try:
        rtt = asyncio.run(_client(port, n))
    finally:
        server.terminate()
        server.wait(10)
    checks = {k: statistics.median(v) for k, v in in_process(5 if args.quick else 30).items()}
    rt = statistics.median(rtt)
    allow_alone = checks["allow check"]
    unused = max(checks["unused check (no policy)"] - checks["empty loop"], 0.0)
    rows = [
        ("action round trip (uvicorn, another process)", rt, None),
        ("allow check alone", allow_alone, allow_alone / rt),
        ("can_write check alone, one op", checks["can_write check (1 op)"], None),
        ("check when no policy is defined", unused, None),
        ("dispatched action with allow (in-process)", checks["dispatched action, allow"], None),
        ("dispatched action without (in-process)", checks["dispatched action, no allow"], None),
    ]
    print("| measure | median | share of the round trip |\n|---|---|---|")
    for name, value, share in rows:
        shown = f"{share:.2%}" if share is not None else f"{value / rt:.2%}"
        print(f"| {name} | {fmt_time(value)} | {shown} |")
    verdict = "met" if allow_alone / rt <= GOAL else "missed"
    print(f"\nallow check / round trip: {allow_alone / rt:.2%} (goal <= {GOAL:.0%}): {verdict}")
    return 0


async def _client(port: int, n: int) -> list[float]:
    deadline = time.monotonic() + 20
    while True:
        try:
            return await round_trips(port, n)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
