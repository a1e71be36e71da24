# ruff: noqa: RUF001
"""Section 9: scale-out on Redis (`ws_sync.redis_backplane`).

Real uvicorn workers (separate processes, one app module) and one private
redis-server, measured against a raw Redis publish -> subscribe round trip
and against one in-process worker in the same run:

- action -> patch latency, the action sent to one worker and the patch seen
  by a client of another; one sample of the raw hop, of the in-process worker
  and of the two workers in turn, so that the machine's noise (2 shared
  cores) weighs on all three alike;
- CPU-seconds per delivered op (workers and redis-server) and Redis commands
  per commit (from ``INFO commandstats``);
- fan-out of one commit to many clients spread over 2 workers, per
  subscriber, next to the same clients on one in-process worker;
- throughput of actions on one shared object from clients of 2 workers;
- growth with the number of workers, simulated with 1-8 replicas of one
  object in one process (2 cores cannot run 8 worker processes fairly).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from .common import (
    REPO_DIR,
    Config,
    Progress,
    SectionResult,
    Stats,
    Target,
    fmt_ratio,
    fmt_time,
    md_table,
)
from .plots import COLORS, pyplot

KEY = "redis"
TITLE = "9. Scale-out on Redis"
TICK = os.sysconf("SC_CLK_TCK")
NO_PERSISTENCE = ("--appendonly", "no", "--dir")
UVICORN = ("--log-level", "warning", "--ws-max-queue", "1024", "--port")
IN_SCRIPTS = {"get", "set", "del", "hget", "hmget", "hset", "xadd", "exists", "pexpire", "xtrim"}
"""Commands the Lua scripts run inside Redis: not round trips of their own."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start on port {port}")
        time.sleep(0.05)


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="ws-sync-bench-redis-")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", *NO_PERSISTENCE, workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port, proc, "redis-server")
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        proc.kill()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def workers(n: int, backplane: str) -> Iterator[list[tuple[int, subprocess.Popen[bytes]]]]:
    env = {**os.environ, "WS_SYNC_BACKPLANE": backplane, "PYTHONPATH": str(REPO_DIR)}
    started: list[tuple[int, subprocess.Popen[bytes]]] = []
    try:
        for _ in range(n):
            port = _free_port()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "benchmarks.redis_server:app",
                    *UVICORN,
                    str(port),
                ],
                env=env,
                cwd=REPO_DIR,
            )
            started.append((port, proc))
        for port, proc in started:
            _wait_port(port, proc, "worker")
        yield started
    finally:
        for _, proc in started:
            proc.terminate()
        for _, proc in started:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def round_trips(calls: dict[str, float]) -> dict[str, float]:
    """The commands sent by a worker, not run by a script inside Redis."""
    return {k: v for k, v in calls.items() if k not in IN_SCRIPTS and k != "info" and v > 0}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Client:
    """A protocol-1 client of the counter: its version, and when each arrived."""

    def __init__(self) -> None:
        self.version = -1
        self.arrived: dict[int, float] = {}
        self.results: asyncio.Queue[float] = asyncio.Queue()
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def connect(self, port: int) -> Client:
        import websockets

        self._ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None)
        self._reader = asyncio.ensure_future(self._read())
        await asyncio.wait_for(self.ready.wait(), 20)
        return self

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self._ws:
                now = time.perf_counter()
                frame = json.loads(raw)
                kind = frame["type"]
                if kind.startswith("_SET"):
                    self.version = frame["v"]
                    self.ready.set()
                elif kind.startswith("_PATCH"):
                    self.version = frame["v"]
                    self.arrived[frame["v"]] = now
                elif kind.startswith("_ACTION_RESULT"):
                    self.results.put_nowait(now)

    async def act(self) -> None:
        await self._ws.send('{"type":"_ACTION:COUNTER","data":{"type":"increment","$id":1}}')

    async def act_and_wait(self) -> None:
        await self.act()
        await self.results.get()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()


async def until(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        await asyncio.sleep(0.0005)


@contextlib.asynccontextmanager
async def clients(ports: list[int], n: int) -> AsyncIterator[list[Client]]:
    made = [Client() for _ in range(n)]
    try:
        for i in range(0, n, 50):
            await asyncio.gather(
                *(c.connect(ports[j % len(ports)]) for j, c in enumerate(made[i : i + 50], start=i))
            )
        yield made
    finally:
        await asyncio.gather(*(c.close() for c in made))


# --------------------------------------------------------------------------- #
# measurements


class RawHop:
    """Redis PUBLISH -> a subscriber's message, the floor of any cross-worker hop."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self.pub, self.sub = Redis.from_url(url), Redis.from_url(url)
        self.ps = self.sub.pubsub()
        self.i = 0

    async def open(self) -> RawHop:
        await self.ps.subscribe("bench")
        await self.ps.get_message(timeout=1)
        return self

    async def sample(self) -> float:
        self.i += 1
        t0 = time.perf_counter()
        await self.pub.publish("bench", str(self.i))
        while (await self.ps.get_message(timeout=5)) is None:
            pass
        return time.perf_counter() - t0

    async def close(self) -> None:
        await self.ps.aclose()
        await self.pub.aclose()
        await self.sub.aclose()


class ActionHop:
    """The action sent by one client, the patch seen by the other."""

    def __init__(self, sender: Client, watcher: Client) -> None:
        self.sender, self.watcher = sender, watcher

    async def sample(self) -> float:
        sender, watcher = self.sender, self.watcher
        await until(lambda: sender.version == watcher.version)
        target = watcher.version + 1
        t0 = time.perf_counter()
        await sender.act()
        await until(lambda: target in watcher.arrived)
        await sender.results.get()
        return watcher.arrived[target] - t0


async def in_turn(hops: list[Any], n: int) -> list[list[float]]:
    """`n` samples of each hop, one of each in turn: whatever else the machine
    does meanwhile weighs on all of them alike, and their ratio is the target."""
    samples: list[list[float]] = [[] for _ in hops]
    for _ in range(n):
        for hop, taken in zip(hops, samples, strict=True):
            taken.append(await hop.sample())
    return samples


async def latencies(url: str, single: list[int], cross: list[int], n: int) -> list[list[float]]:
    """Raw Redis, one in-process worker, and across two workers, in turn."""
    raw = await RawHop(url).open()
    try:
        async with (
            clients([single[0], single[-1]], 2) as one,
            clients([cross[0], cross[-1]], 2) as two,
        ):
            return await in_turn([raw, ActionHop(*one), ActionHop(*two)], n)
    finally:
        await raw.close()


async def alternating(ports: list[int], n: int) -> list[float]:
    """Actions from a client of each worker in turn, each patch seen by the
    other: every action needs the object's lease moved to its worker."""
    async with clients([ports[0], ports[-1]], 2) as (a, b):
        samples = []
        for i in range(n):
            sender, watcher = (a, b) if i % 2 == 0 else (b, a)
            await until(lambda: a.version == b.version)
            target = watcher.version + 1
            t0 = time.perf_counter()
            await sender.act()
            await until(lambda target=target, w=watcher: target in w.arrived)
            samples.append(watcher.arrived[target] - t0)
            await sender.results.get()
        return samples


async def fan_out(ports: list[int], subscribers: int, rounds: int) -> list[float]:
    """One action, until every subscriber has its patch; seconds per subscriber."""
    async with clients(ports, subscribers + 1) as made:
        sender, rest = made[0], made[1:]
        samples = []
        for _ in range(rounds):
            await until(lambda: all(c.version == sender.version for c in rest))
            target = sender.version + 1
            t0 = time.perf_counter()
            await sender.act()
            await until(lambda target=target: all(target in c.arrived for c in rest))
            last = max(c.arrived[target] for c in rest)
            samples.append((last - t0) / subscribers)
            await sender.results.get()
        return samples


async def throughput(ports: list[int], per_port: int, seconds: float) -> float:
    """Actions per second on one object, each client waiting for its answers."""
    async with clients(ports, per_port * len(ports)) as made:
        stop = time.monotonic() + seconds
        done = 0

        async def play(c: Client) -> None:
            nonlocal done
            while time.monotonic() < stop:
                await c.act_and_wait()
                done += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(play(c) for c in made))
        return done / (time.perf_counter() - t0)


async def commandstats(url: str) -> dict[str, int]:
    from redis.asyncio import Redis

    r = Redis.from_url(url)
    try:
        stats = await r.info("commandstats")
        return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    finally:
        await r.aclose()


async def redis_cpu(url: str) -> float:
    from redis.asyncio import Redis

    r = Redis.from_url(url)
    try:
        info = await r.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    finally:
        await r.aclose()


async def costs(url: str | None, ports: list[int], pids: list[int], n: int) -> dict[str, Any]:
    """CPU-seconds (workers, redis-server) and Redis commands for `n` actions
    by a client of the first worker with a watcher on each worker."""
    async with clients(ports, len(ports) + 1) as made:
        sender, watchers = made[0], made[1:]
        cpu0 = sum(cpu_seconds(p) for p in pids)
        rcpu0 = await redis_cpu(url) if url else 0.0
        cmd0 = await commandstats(url) if url else {}
        for _ in range(n):
            await sender.act_and_wait()
        await until(lambda: all(w.version == sender.version for w in watchers))
        cpu = sum(cpu_seconds(p) for p in pids) - cpu0
        rcpu = (await redis_cpu(url) - rcpu0) if url else 0.0
        cmd1 = await commandstats(url) if url else {}
    calls = {k: v - cmd0.get(k, 0) for k, v in cmd1.items() if v - cmd0.get(k, 0) > 0}
    calls.pop("info", None)
    delivered = n * len(made)
    return {
        "cpu_per_delivered": (cpu + rcpu) / delivered,
        "worker_cpu_per_commit": cpu / n,
        "redis_cpu_per_commit": rcpu / n,
        "commands_per_commit": {k: v / n for k, v in sorted(calls.items())},
    }


async def simulated_workers(url: str, counts: list[int], n: int) -> list[dict[str, Any]]:
    """`k` replicas of one object in this process, standing for `k` workers:
    one commits `n` increments, all deliver them."""
    from ws_sync.redis_backplane import RedisBackplane
    from ws_sync.shared import shared

    from .redis_server import Counter

    rows = []
    for k in counts:
        prefix = f"sim{k}-{random.getrandbits(24):x}:"
        planes = [RedisBackplane(url, prefix=prefix) for _ in range(k)]
        handles = [shared("COUNTER", Counter, backplane=bp) for bp in planes]
        for h in handles:
            await h.ready()
        gate = handles[0].sync.gate
        await gate.run(handles[0].obj.increment)  # warm
        cmd0 = await commandstats(url)
        cpu0, rcpu0, t0 = time.process_time(), await redis_cpu(url), time.perf_counter()
        for _ in range(n):
            await gate.run(handles[0].obj.increment)
        target = handles[0].sync.log.delivered
        replicas = list(handles)
        await until(lambda: all(h.sync.log.delivered == target for h in replicas))  # noqa: B023
        wall = time.perf_counter() - t0
        cpu, rcpu = time.process_time() - cpu0, await redis_cpu(url) - rcpu0
        cmd1 = await commandstats(url)
        calls = sum(round_trips({k2: v - cmd0.get(k2, 0) for k2, v in cmd1.items()}).values())
        rows.append(
            {
                "workers": k,
                "wall_per_commit": wall / n,
                "cpu_per_commit": (cpu + rcpu) / n,
                "commands_per_commit": calls / n,
            }
        )
        for bp in planes:
            await bp.close()
    return rows


# --------------------------------------------------------------------------- #
# the section


def run(cfg: Config, progress: Progress) -> SectionResult:
    return asyncio.run(_run(cfg, progress))


async def _run(cfg: Config, progress: Progress) -> SectionResult:
    n = cfg.pick(300, 30)
    fan = cfg.pick(1000, 40)
    rounds = cfg.pick(10, 3)
    seconds = cfg.pick(5.0, 1.0)
    data: dict[str, Any] = {}
    with redis_server() as (url, redis_proc):
        with workers(1, "memory://") as one, workers(2, url) as two:
            progress("latency: raw Redis, one in-process worker, two workers on Redis, in turn")
            single_ports = [p for p, _ in one]
            hops = await latencies(url, single_ports, [p for p, _ in two], n)
            for name, samples in zip(("raw", "single", "cross"), hops, strict=True):
                data[name] = Stats.of(samples).to_dict()
            progress("one in-process worker")
            ports, pids = single_ports, [w.pid for _, w in one]
            data["single_costs"] = await costs(None, ports, pids, n)
            data["single_fanout"] = Stats.of(await fan_out(ports, fan, rounds)).to_dict()
            data["single_throughput"] = await throughput(ports, 8, seconds)
            ports, pids = [p for p, _ in two], [w.pid for _, w in two]
            progress("two workers on Redis")
            data["costs"] = await costs(url, ports, pids, n)
            # last: while workers take turns, each lets the lease go after its handler
            data["alternating"] = Stats.of(await alternating(ports, n)).to_dict()
            progress(f"fan-out to {fan} clients over 2 workers")
            data["fanout"] = Stats.of(await fan_out(ports, fan, rounds)).to_dict()
            data["throughput"] = await throughput(ports, 4, seconds)
        progress("simulated workers")
        data["scaling"] = await simulated_workers(url, [1, 2, 4, 8], cfg.pick(200, 20))
        del redis_proc
    data["sizes"] = {"samples": n, "fanout": fan, "rounds": rounds, "seconds": seconds}
    return _report(cfg, data)


def _report(cfg: Config, d: dict[str, Any]) -> SectionResult:
    raw, single, cross = d["raw"]["median"], d["single"]["median"], d["cross"]["median"]
    goal = 2 * raw + single
    commands = d["costs"]["commands_per_commit"]
    total_cmds = sum(round_trips(commands).values())
    rows = [
        ["raw Redis PUBLISH -> subscriber", fmt_time(raw), ""],
        ["action -> patch, one in-process worker", fmt_time(single), ""],
        ["action -> patch, across 2 workers (Redis)", fmt_time(cross), fmt_ratio(cross / raw)],
        [
            "the same, actions from each worker in turn (the lease moves every time)",
            fmt_time(d["alternating"]["median"]),
            fmt_ratio(d["alternating"]["median"] / raw),
        ],
    ]
    md = [f"## {TITLE}", "", __doc__.split("\n\n", 1)[1].strip(), "", "### Latency (p50)", ""]
    md += [md_table(["path", "p50", "× raw Redis"], rows), ""]
    md += ["### Costs per commit (2 workers, a watcher on each, the sender on the first)", ""]
    cost_rows = [
        [
            "CPU-seconds per delivered op (workers + redis-server)",
            fmt_time(d["costs"]["cpu_per_delivered"]),
            fmt_time(d["single_costs"]["cpu_per_delivered"]),
        ],
        [
            "worker CPU per commit (all workers)",
            fmt_time(d["costs"]["worker_cpu_per_commit"]),
            fmt_time(d["single_costs"]["worker_cpu_per_commit"]),
        ],
        ["redis-server CPU per commit", fmt_time(d["costs"]["redis_cpu_per_commit"]), "-"],
        ["Redis round trips per commit", f"{total_cmds:.2f}", "0"],
    ]
    md += [md_table(["measure", "Redis, 2 workers", "in-process, 1 worker"], cost_rows), ""]
    md += [
        "Round trips are the commands the workers send (EVALSHA: the commit, as the worker"
        " keeps the lease between its handlers; XREAD: one per other worker, as a worker"
        " holding the lease is not woken by its own commits); all commands Redis ran per"
        " commit, scripts' included: " + ", ".join(f"{k} {v:.2f}" for k, v in commands.items()),
        "",
    ]
    fan = d["sizes"]["fanout"]
    md += [f"### Fan-out of one commit to {fan} clients", ""]
    md += [
        md_table(
            ["where", "per subscriber (p50)"],
            [
                ["2 workers on Redis", fmt_time(d["fanout"]["median"])],
                ["1 in-process worker", fmt_time(d["single_fanout"]["median"])],
            ],
        ),
        "",
    ]
    md += ["### Throughput of actions on one shared object", ""]
    md += [
        md_table(
            ["where", "actions/s"],
            [
                ["2 workers on Redis (4 clients each)", f"{d['throughput']:.0f}"],
                ["1 in-process worker (8 clients)", f"{d['single_throughput']:.0f}"],
            ],
        ),
        "",
    ]
    md += ["### Workers (simulated: replicas of one object in one process)", ""]
    md += [
        md_table(
            [
                "workers",
                "wall per commit",
                "CPU per commit (process + redis)",
                "round trips/commit",
            ],
            [
                [
                    str(r["workers"]),
                    fmt_time(r["wall_per_commit"]),
                    fmt_time(r["cpu_per_commit"]),
                    f"{r['commands_per_commit']:.2f}",
                ]
                for r in d["scaling"]
            ],
        ),
        "",
    ]
    md += [f"![scale-out]({KEY}.png)", ""]
    targets = [
        Target(
            "cross-worker action -> patch p50",
            "≤ 2× raw Redis + in-process",
            f"{fmt_time(cross)} (goal {fmt_time(goal)})",
            cross <= goal,
        ),
    ]
    plot = _plot(cfg, d)
    headline = [
        (
            "action -> patch across 2 workers (p50)",
            f"{fmt_time(cross)} ({fmt_ratio(cross / raw)} raw Redis)",
        ),
        ("Redis round trips per commit (2 workers)", f"{total_cmds:.2f}"),
        (f"fan-out to {fan} over 2 workers, per subscriber", fmt_time(d["fanout"]["median"])),
        ("actions/s on one shared object, 2 workers", f"{d['throughput']:.0f}"),
    ]
    return SectionResult(KEY, TITLE, "\n".join(md), targets, [plot], d, headline)


def _plot(cfg: Config, d: dict[str, Any]) -> Path:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    names = ["raw Redis", "in-process", "2 workers"]
    values = [d["raw"]["median"] * 1e3, d["single"]["median"] * 1e3, d["cross"]["median"] * 1e3]
    left.bar(names, values, color=[COLORS["reference"], COLORS["ours"], COLORS["ours (pydantic)"]])
    left.set_ylabel("ms (p50)")
    left.set_title("action -> patch")
    ks = [r["workers"] for r in d["scaling"]]
    right.plot(ks, [r["cpu_per_commit"] * 1e3 for r in d["scaling"]], marker="o")
    right.set_xlabel("workers (simulated)")
    right.set_ylabel("CPU ms per commit")
    right.set_title("cost vs workers")
    fig.tight_layout()
    path = cfg.out_dir / f"{KEY}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
