"""The end-to-end benchmark client, the same for every server (ours, upstream,
echo). Imports no ws_sync. Run as a script in its own process:

    python benchmarks/e2e_client.py JSON_ARGS     (last stdout line: JSON result)

Modes:
- ``load``: `clients` connections; each sends ``_ACTION:BENCH {type: INC}`` and
  waits for the frame whose type is `reply` (``_PATCH:BENCH``, or the echo of
  the action), closed loop, for `duration` seconds after `warmup` round trips.
  Returns every round-trip time and the count.
- ``idle``: `clients` connections that do nothing; reports the server's
  ``/mem`` before and after they connected.
- ``fanout``: see `benchmarks/fanout_server.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import urllib.request
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

ACTION = json.dumps({"type": "_ACTION:BENCH", "data": {"type": "INC"}}, separators=(",", ":"))


def _is(frame: str | bytes, event: str) -> bool:
    head = frame[:80] if isinstance(frame, str) else ""
    return f'"type":"{event}"' in head


async def _open(uri: str, initial: str | None) -> ClientConnection:
    ws = await connect(uri, max_size=None, compression=None, open_timeout=30, ping_interval=None)
    if initial:
        while not _is(await ws.recv(), initial):
            pass
    return ws


async def _round_trip(ws: ClientConnection, reply: str) -> float:
    t0 = time.perf_counter()
    await ws.send(ACTION)
    while not _is(await ws.recv(), reply):
        pass
    return time.perf_counter() - t0


async def load(args: dict[str, Any]) -> dict[str, Any]:
    uri, reply = args["uri"], args["reply"]
    socks = [await _open(uri, args.get("initial")) for _ in range(args["clients"])]
    for ws in socks:
        for _ in range(args["warmup"]):
            await _round_trip(ws, reply)
    stop = time.perf_counter() + args["duration"]
    times: list[list[float]] = [[] for _ in socks]

    async def loop(i: int, ws: ClientConnection) -> None:
        out = times[i]
        while time.perf_counter() < stop and len(out) < args["max_trips"]:
            out.append(await _round_trip(ws, reply))

    t0 = time.perf_counter()
    await asyncio.gather(*(loop(i, ws) for i, ws in enumerate(socks)))
    elapsed = time.perf_counter() - t0
    for ws in socks:
        await ws.close()
    flat = [t for ts in times for t in ts]
    return {"rtts": flat, "elapsed": elapsed, "trips": len(flat)}


def _mem(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=120) as r:
        data: dict[str, Any] = json.loads(r.read())
        return data


async def idle(args: dict[str, Any]) -> dict[str, Any]:
    before = await asyncio.to_thread(_mem, args["mem"])
    socks = []
    for _ in range(args["clients"]):
        socks.append(await _open(args["uri"], args.get("initial")))
    await asyncio.sleep(args.get("settle", 1.0))
    after = await asyncio.to_thread(_mem, args["mem"])
    for ws in socks:
        await ws.close()
    await asyncio.sleep(0.5)
    closed = await asyncio.to_thread(_mem, args["mem"])
    return {"before": before, "after": after, "closed": closed, "clients": len(socks)}


async def fanout(args: dict[str, Any]) -> dict[str, Any]:
    """`clients` connections to each of ours (/ws) and raw (/raw), all reading;
    then `rounds` x (bump ours, bump raw), `reps` syncs each (see fanout_server)."""
    base = args["base"]
    ours = [await _open(f"ws://{base}/ws", "_SET:SHARED") for _ in range(args["clients"])]
    raw = [await _open(f"ws://{base}/raw", None) for _ in range(args["clients"])]
    received = [0]

    async def read(ws: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            async for _ in ws:
                received[0] += 1

    readers = [asyncio.create_task(read(ws)) for ws in ours + raw]
    out: dict[str, list[float]] = {"ours": [], "raw": []}
    for _ in range(args["rounds"]):
        for mode in ("ours", "raw"):
            url = f"http://{base}/bump?mode={mode}&k={args['reps']}"
            res = await asyncio.to_thread(_mem, url)
            assert res["subscribers"] == args["clients"], res["subscribers"]
            out[mode] += res["times"]
    for ws in ours + raw:
        await ws.close()
    for t in readers:
        t.cancel()
    return {**out, "received": received[0]}


def main() -> None:
    args = json.loads(sys.argv[1])
    modes = {"load": load, "idle": idle, "fanout": fanout}
    result = asyncio.run(modes[args["mode"]](args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
