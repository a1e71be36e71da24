"""A user session's objects kept in Redis under its ids (two backplanes in one
process standing for two workers)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis
from redis_helpers import RedisServer
from session_helpers import Counter, recv, send
from starlette.applications import Starlette
from starlette.testclient import TestClient

from ws_sync import Session, backplane, sync_endpoint
from ws_sync.redis_backplane import RedisBackplane


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


def built(principal: object = None) -> tuple[Session, Counter]:
    session = Session()
    if principal is not None:
        session.user = principal  # type: ignore[attr-defined]
    with session:
        counter = Counter()
    session.keep(counter)
    return session, counter


async def test_another_worker_loads_the_session_with_its_history(redis_url: str) -> None:
    prefix = f"s{random.getrandbits(32):x}:"
    a, b = RedisBackplane(redis_url, prefix=prefix), RedisBackplane(redis_url, prefix=prefix)
    try:
        session, counter = built({"name": "ann"})
        await a.adopt(session, ("u1", "s1"), ttl=60)
        await counter.sync.gate.run(counter.increment, 4)  # committed in Redis, then delivered
        epoch, version = counter.sync.log.epoch, counter.sync.log.version
        assert version == 1

        again, fresh = built()
        await b.adopt(again, ("u1", "s1"), ttl=60)
        assert fresh.count == 4
        assert (fresh.sync.log.epoch, fresh.sync.log.version) == (epoch, version)
        assert fresh.sync.log.since(epoch, 0) == counter.sync.log.since(epoch, 0)

        r = Redis.from_url(redis_url, decode_responses=True)
        record = f"{prefix}session:u1:s1"
        assert await r.hget(record, "principal") == '{"name":"ann"}'
        assert 0 < await r.pttl(record) <= 60_000
        assert 0 < await r.pttl(f"{record}:COUNTER") <= 60_000
        await r.aclose()
    finally:
        await a.close()
        await b.close()


async def test_a_session_keeps_working_while_redis_is_down() -> None:
    with RedisServer() as server:
        bp = RedisBackplane(server.url)
        try:
            session, counter = built()
            await bp.adopt(session, ("u2", "s2"), ttl=60)
            server.stop()
            assert await counter.sync.gate.run(counter.increment) == 1
            assert counter.sync.log.delivered == 1  # delivered here all the same
            server.start()  # empty: the next commit stores the whole state again
            await counter.sync.gate.run(counter.increment)
            other = RedisBackplane(server.url)
            try:
                again, fresh = built()
                await other.adopt(again, ("u2", "s2"), ttl=60)
                assert fresh.count == 2
            finally:
                await other.close()
        finally:
            await bp.close()


async def test_each_commit_renews_the_sessions_record_too(redis_url: str) -> None:
    prefix = f"r{random.getrandbits(32):x}:"
    bp = RedisBackplane(redis_url, prefix=prefix)
    r = Redis.from_url(redis_url, decode_responses=True)
    try:
        session, counter = built({"name": "ann"})
        await bp.adopt(session, ("u3", "s3"), ttl=3)
        await asyncio.sleep(2)
        await counter.sync.gate.run(counter.increment)  # 2 s in: 3 s more for all of it
        await asyncio.sleep(1.5)  # past the first 3 s
        record = f"{prefix}session:u3:s3"
        assert await r.hget(record, "principal") == '{"name":"ann"}'
        assert await r.exists(f"{record}:COUNTER") == 1
    finally:
        await r.aclose()
        await bp.close()


def test_sessions_are_kept_in_their_principal_namespace(redis_url: str) -> None:

    prefix = f"p{random.getrandbits(32):x}:"
    saved = backplane._current
    try:
        route = sync_endpoint(
            Counter,
            backplane=RedisBackplane(redis_url, prefix=prefix),
            authenticate=lambda ws: ws.headers.get("x-user"),
        )
        app = Starlette(routes=[route])
        with TestClient(app) as tc:
            for who in ("ann", "bob"):
                with tc.websocket_connect("/ws", headers={"x-user": who}) as ws:
                    assert recv(ws)["type"] == "_REQUEST_USER_SESSION"
                    send(ws, "_USER_SESSION", {"user": "u", "session": "s"})
                    assert recv(ws)["data"]["count"] == 0  # bob does not get ann's state
                    send(ws, "_ACTION:COUNTER", {"type": "increment", "by": 5})
                    assert recv(ws)["data"][0]["value"] == 5

        async def keys() -> list[str]:
            r = Redis.from_url(redis_url, decode_responses=True)
            try:
                return sorted(await r.keys(f"{prefix}session:*:COUNTER"))
            finally:
                await r.aclose()

        found = asyncio.run(keys())
        assert found == [f"{prefix}session:ann/u:s:COUNTER", f"{prefix}session:bob/u:s:COUNTER"]
    finally:
        backplane._current = saved
