"""Chaos, bounded: random ``kill -9`` and restarts of uvicorn workers while
clients act and write on one shared object through whichever worker is up.
A call left without an answer by a worker that died is sent again, with its
id, to the next worker, as the bundled client does.

    python tests/redis_chaos.py --seconds 60 --workers 3 --clients 6

At the end every client must hold the server's state, every acknowledged
action and write must be in it, and no action may have run twice (each adds
a unique item). Exits 1 and says what failed otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
from collections import Counter as Tally
from dataclasses import dataclass, field
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))

from redis_helpers import RedisServer
from redis_workers import Client, Worker, settle


@dataclass
class Outcome:
    acked: set[str] = field(default_factory=set)
    kills: int = 0
    calls: int = 0
    failures: list[str] = field(default_factory=list)


async def player(
    name: str, workers: list[Worker], rng: random.Random, stop: float, out: Outcome
) -> Client:
    client = Client()
    n = 0
    unanswered: tuple[str, str, bool, tuple[str, int]] | None = None  # id, item, action?, base
    while True:
        try:
            await client.connect(rng.choice(workers).url)
            await client.ready(10)
            while time.monotonic() < stop or unanswered is not None:
                if unanswered is None:
                    n += 1
                    base = (client.epoch, client.version)
                    unanswered = (f"{name}-{n}", f"{name}-{n}", rng.random() < 0.5, base)
                    out.calls += 1
                call_id, item, is_action, base = unanswered
                if is_action:
                    sent = await client.send_action(call_id, "add", item=item)
                else:
                    op = {"op": "add", "path": "/items/-", "value": item}
                    sent = await client.send_patch(call_id, [op], base)
                answer = await asyncio.wait_for(sent, 30)
                unanswered = None
                if answer.get("ok") or "ack" in answer:
                    out.acked.add(item)
            return client
        except (ConnectionError, OSError, TimeoutError, websockets.ConnectionClosed):
            await client.close()  # its worker died: on to another one, the call sent again
            await asyncio.sleep(0.05)
            if time.monotonic() >= stop + 20:
                return client


async def reconnected(client: Client, workers: list[Worker], rng: random.Random) -> Client:
    """The client on a live worker, resuming from what it holds (its own may
    have been killed at the very end)."""
    for _ in range(50):
        if client.connected:
            return client
        await client.close()
        with contextlib.suppress(ConnectionError, OSError, websockets.ConnectionClosed):
            await client.connect(rng.choice(workers).url)
            await client.ready(10)
            await asyncio.sleep(0.2)  # the resume frames
            continue
        await asyncio.sleep(0.2)
    return client


async def chaos(workers: list[Worker], rng: random.Random, stop: float, out: Outcome) -> None:
    while time.monotonic() < stop:
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        victim = rng.choice(workers)
        victim.kill()
        out.kills += 1
        await asyncio.sleep(rng.uniform(0.1, 0.5))
        await asyncio.to_thread(victim.start)


async def run(seconds: float, n_workers: int, n_clients: int, seed: int) -> Outcome:
    rng = random.Random(seed)
    out = Outcome()
    with RedisServer() as redis:
        workers = [Worker(redis.url).start() for _ in range(n_workers)]
        try:
            stop = time.monotonic() + seconds
            players = [player(f"p{i}", workers, rng, stop, out) for i in range(n_clients)]
            clients, _ = await asyncio.gather(
                asyncio.gather(*players), chaos(workers, rng, stop, out)
            )
            clients = [await reconnected(c, workers, rng) for c in clients]
            judge = Client()
            await judge.connect(workers[0].url)
            await judge.ready()
            everyone = [*clients, judge]
            try:
                await settle(everyone, 30)
            except TimeoutError:
                out.failures.append("clients did not converge")
            items = judge.state["items"]
            for c in clients:
                if c.state != judge.state:
                    out.failures.append(f"client {c.user[:6]} differs from the server")
            twice = [item for item, k in Tally(items).items() if k > 1]
            if twice:
                out.failures.append(f"ran twice: {twice[:5]}")
            lost = out.acked - set(items)
            if lost:
                out.failures.append(f"acknowledged but lost: {sorted(lost)[:5]}")
            for c in everyone:
                with contextlib.suppress(Exception):
                    await c.close()
        finally:
            for w in workers:
                w.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--clients", type=int, default=6)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    out = asyncio.run(run(args.seconds, args.workers, args.clients, args.seed))
    print(
        f"{out.calls} calls, {len(out.acked)} acknowledged, {out.kills} kills: "
        + ("; ".join(out.failures) if out.failures else "every client equals the server")
    )
    return 1 if out.failures else 0


if __name__ == "__main__":
    sys.exit(main())
