"""Operations of the Redis backplane: revocations reach every worker, a worker
starts while Redis is unreachable, and one-worker jobs carry fencing tokens."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis_helpers import RedisServer
from redis_workers import Client, Worker, settle
from session_helpers import Counter

from ws_sync import Session
from ws_sync.auth import stored_user
from ws_sync.backplane import Backplane, RevokeIncomplete, leader, still_leader
from ws_sync.redis_backplane import RedisBackplane
from ws_sync.redis_sessions import forget_principal

pytestmark = pytest.mark.slow

OPS = "redis_app:ops_app"


def prefix() -> str:
    return f"o{random.getrandbits(32):x}:"


async def http(worker: Worker, path: str, method: str = "GET") -> str:
    def call() -> str:
        request = urllib.request.Request(worker.http + path, method=method)
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.read().decode()  # type: ignore[no-any-return]

    return await asyncio.to_thread(call)


async def metric(worker: Worker, name: str) -> float:
    for line in (await http(worker, "/metrics")).splitlines():
        if line.startswith(f"ws_sync_{name} "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


async def signed_in(worker: Worker, name: str, **kw: Any) -> Client:
    client = Client(**kw)
    await client.connect(f"{worker.url}&user={name}")
    return await client.ready()


# --------------------------------------------------------------------------- #
# revoke


async def test_revoke_on_one_worker_closes_the_principal_on_every_worker(
    redis: RedisServer,
) -> None:
    a, b = Worker(redis.url, app=OPS).start(), Worker(redis.url, app=OPS).start()
    try:
        here, there = await signed_in(a, "alice"), await signed_in(b, "alice")
        tab = await signed_in(a, "alice")
        bob = await signed_in(b, "bob")
        for client, text in ((here, "1"), (there, "2"), (tab, "3"), (bob, "bob's")):
            assert (await client.action("note", key="NOTES", text=text))["ok"]

        assert await http(a, "/revoke/alice", "POST") == '{"closed":2}'  # those on a
        for client in (here, there, tab):
            assert await client.closed() == 1008
            assert client.disconnected == "Signed out"
        assert bob.connected
        assert (await bob.action("note", key="NOTES", text="still here"))["ok"]

        # the old ids, on either worker: a fresh session, nothing of the old one
        for client, worker in ((here, b), (there, a), (tab, a)):
            notes = client.copies["NOTES"]
            sets = notes.sets
            await client.connect(f"{worker.url}&user=alice")
            async with asyncio.timeout(20):
                while notes.sets == sets:
                    await asyncio.sleep(0.02)
            assert notes.state == {"notes": []}
            await client.close()

        # another principal's stored session is untouched: bob resumes it on a
        await bob.close()
        again = Client()
        again.user, again.session = bob.user, bob.session
        await again.connect(f"{a.url}&user=bob")
        await again.ready()
        async with asyncio.timeout(20):
            while "NOTES" not in again.copies:
                await asyncio.sleep(0.02)
        assert again.copies["NOTES"].state == {"notes": ["bob's", "still here"]}
        await again.close()
    finally:
        a.stop()
        b.stop()


async def test_forgetting_a_principal_deletes_its_stored_sessions_only(redis: RedisServer) -> None:
    bp = RedisBackplane(redis.url, prefix=prefix())
    try:
        names = ["alice", "alice/x", "alicex", "al*"]
        for name in names:
            session = Session()
            session.user = name  # type: ignore[attr-defined]
            with session:
                counter = Counter()
            session.keep(counter)
            await bp.adopt(session, (stored_user(name, "u1"), "s1"), ttl=60)
        r = Redis.from_url(redis.url, decode_responses=True)
        try:
            before = {k async for k in r.scan_iter(match=bp.prefix + "*")}
            assert await forget_principal(bp, "alice") > 0
            after = {k async for k in r.scan_iter(match=bp.prefix + "*")}
        finally:
            await r.aclose()
        gone = before - after
        assert gone and all(k.startswith(bp.key("session", "alice/u1:s1")) for k in gone)
        for name in names[1:]:  # a name that shares a prefix, or holds a glob, is kept
            assert any(k.startswith(bp.key("session", stored_user(name, "u1"))) for k in after)
    finally:
        await bp.close()


async def test_revoke_without_redis_says_it_is_incomplete() -> None:
    server = RedisServer()  # never started: nothing listens on its port
    bp = RedisBackplane(server.url)
    try:
        with pytest.raises(RevokeIncomplete) as raised:
            await bp.revoke("alice", "Signed out")
        assert raised.value.closed == 0
        assert bp.stats()["connected"] == 0
    finally:
        await bp.close()
        shutil.rmtree(server._dir, ignore_errors=True)


# --------------------------------------------------------------------------- #
# starting while Redis is unreachable


async def connect_when_ready(url: str, timeout: float = 30.0) -> Client:
    """Connect until a session opens (refused ones are closed with 1013)."""
    async with asyncio.timeout(timeout):
        while True:
            client = Client()
            await client.connect(url)
            while client.state is None and client.connected:
                client.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(client.changed.wait(), 0.2)
            if client.state is not None:
                return client
            assert client.close_code == 1013
            await asyncio.sleep(0.2)


async def test_a_worker_starts_without_redis_and_catches_up_when_it_comes() -> None:
    server = RedisServer()  # started only later
    worker = Worker(server.url, app=OPS).start()
    try:
        assert await metric(worker, "backplane_connected") == 0
        assert await metric(worker, "backplane_shared_pending") == 1
        assert await http(worker, "/leader") == "[]"  # jobs wait for Redis

        # a session whose factory uses no shared object works
        notes = Client(key="NOTES")
        await notes.connect(worker.url.replace("/ws?", "/notes?"))
        await notes.ready()
        assert (await notes.action("note", text="offline"))["ok"]
        assert notes.state == {"notes": ["offline"]}

        # one that needs the shared board is refused, clearly, after a while
        refused = Client()
        await refused.connect(f"{worker.url}&user=ann")
        assert await refused.closed() == 1013
        assert refused.state is None
        assert [e["message"] for e in refused.errors] == [
            "the shared state is unreachable now; try again later"
        ]

        server.start()
        board = await connect_when_ready(f"{worker.url}&user=ann")  # no restart
        assert board.state["count"] == 0
        assert (await board.action("increment"))["ok"]
        assert await metric(worker, "backplane_connected") == 1
        assert await metric(worker, "backplane_shared_pending") == 0
        assert await metric(worker, "backplane_reconnects") >= 1
        seen: list[Any] = []
        async with asyncio.timeout(20):  # the one-worker job started too
            while not seen:
                seen = json.loads(await http(worker, "/leader"))
                await asyncio.sleep(0.1)
        [[job, token]] = seen
        assert job == "ops-leader" and token > 0
        assert (await notes.action("note", text="still local"))["ok"]
        for client in (notes, board):
            await client.close()
    finally:
        worker.stop()
        server.stop()
        shutil.rmtree(server._dir, ignore_errors=True)


async def test_a_worker_started_while_redis_was_stopped_joins_the_others(
    redis: RedisServer,
) -> None:
    first = Worker(redis.url).start()
    late: Worker | None = None
    try:
        early = Client()
        await early.connect(first.url)
        await early.ready()
        assert (await early.action("add", item="before"))["ok"]
        redis.stop()
        late = Worker(redis.url, app=OPS).start()  # comes up all the same
        assert await metric(late, "backplane_connected") == 0
        redis.start()  # empty: the deployment stores its state again
        joined = await connect_when_ready(f"{late.url}&user=ann")
        assert (await joined.action("add", item="after"))["ok"]
        await settle([early, joined], 30)
        assert early.state == joined.state and "after" in joined.state["items"]
        await early.close()
        await joined.close()
    finally:
        first.stop()
        if late is not None:
            late.stop()


# --------------------------------------------------------------------------- #
# fencing of one-worker jobs


async def test_an_in_process_job_leads_with_a_token() -> None:
    seen: list[tuple[tuple[str, int] | None, bool]] = []

    async def job() -> None:
        seen.append((leader(), still_leader()))

    bp = Backplane()
    await bp.lead("tick", job)
    await bp.lead("tick", job)
    [(first, held), (second, held_again)] = seen
    assert held and held_again
    assert first is not None and second is not None
    assert first[0] == second[0] == "tick" and second[1] > first[1]
    assert leader() is None and not still_leader()  # outside a job


async def test_a_stalled_leader_is_fenced_by_the_next_one(redis: RedisServer) -> None:
    """Worker A (a child process) is stopped (SIGSTOP, as in a long GC pause)
    past its lease; worker B takes the lease with a larger token; A, let run
    again, sees at once that it no longer leads."""
    name = prefix()
    code = "import asyncio, sys, redis_helpers as h; asyncio.run(h.lead_and_report(*sys.argv[1:]))"
    a = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", code, redis.url, name, "300"),
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parent,
    )
    assert a.stdout is not None

    async def line() -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(a.stdout.readline(), 30))  # type: ignore[union-attr]

    bp = RedisBackplane(redis.url, prefix=name, lease_ms=300)
    seen: list[tuple[tuple[str, int] | None, bool]] = []

    async def job() -> None:
        seen.append((leader(), still_leader()))

    try:
        a_name, a_token = (await line())["leader"]
        a.send_signal(signal.SIGSTOP)  # no renewal runs meanwhile
        try:
            await asyncio.wait_for(bp.lead("tick", job), 30)  # B: the lease ran out
        finally:
            a.send_signal(signal.SIGCONT)
        assert await line() == {"held": False}
    finally:
        a.kill()
        await a.wait()
        await bp.close()
    [((b_name, b_token), b_held)] = seen
    assert a_name == b_name == "tick" and b_held
    assert b_token > a_token
