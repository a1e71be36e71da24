"""A shared object's own Redis connections: commands packed and sent once,
answers read in order, a connection that failed or timed out never reused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as NoAnswer
from redis_helpers import RedisServer

from ws_sync.redis_link import Link, entries, pack, pack_py

COMMANDS: list[tuple[Any, ...]] = [
    ("PING",),
    ("XREAD", "COUNT", 512, "BLOCK", 1000, "STREAMS", "a", "b", "1-0", "0-0"),
    ("EVALSHA", "ab" * 20, 2, "k1", "k2", "héllo ✓", 3.5, 0, -7, ""),
    ("SET", b"raw\x00bytes", b""),
]


@pytest.mark.parametrize("args", COMMANDS)
def test_packs_as_redis_py_does(args: tuple[Any, ...]) -> None:
    expected = b"".join(Connection().pack_command(*args))
    assert pack_py(args) == expected
    assert pack(args) == expected


@pytest.mark.parametrize("bad", [True, None, ["list"]])
def test_refuses_what_redis_cannot_take(bad: Any) -> None:
    with pytest.raises(TypeError):
        pack_py(("SET", "k", bad))


def test_reads_xread_answers_of_both_protocols() -> None:
    resp2 = [["s", [["1-0", ["f", "x", "o", "w:1"]], ["2-0", ["f", "y"]]]], ["w", []]]
    resp3 = {"s": [["1-0", ["f", "x", "o", "w:1"]], ["2-0", ["f", "y"]]], "w": []}
    expected = [("s", [("1-0", {"f": "x", "o": "w:1"}), ("2-0", {"f": "y"})]), ("w", [])]
    assert entries(resp2) == expected
    assert entries(resp3) == expected
    assert entries(None) == []


@pytest.fixture
async def server() -> AsyncIterator[tuple[RedisServer, Redis]]:
    with RedisServer() as srv:
        client = Redis.from_url(srv.url, decode_responses=True, socket_timeout=5)
        try:
            yield srv, client
        finally:
            await client.aclose()


@pytest.fixture
async def link(server: tuple[RedisServer, Redis]) -> AsyncIterator[Link]:
    made = Link(server[1])
    yield made
    await made.close()


async def test_commands_and_error_answers(link: Link) -> None:
    assert await link.call("SET", "k", "v") == "OK"
    with pytest.raises(ResponseError):
        await link.call("LPUSH", "k", "x")  # the wrong type: an error answer
    assert await link.call("GET", "k") == "v"  # the same connection, still in step


async def test_a_script_is_loaded_again_after_redis_forgot_it(
    server: tuple[RedisServer, Redis],
    link: Link,
) -> None:
    _, client = server
    body = "return redis.call('INCR', KEYS[1]) + tonumber(ARGV[1])"
    assert await link.run(body, ["n"], [10]) == 11
    await client.script_flush()
    assert await link.run(body, ["n"], [10]) == 12


async def test_no_answer_in_time_drops_the_connection(
    server: tuple[RedisServer, Redis], link: Link
) -> None:
    _, client = server
    link.timeout = 0.2
    with pytest.raises(NoAnswer):
        await link.call("BLPOP", "empty", 3)
    await client.lpush("empty", "late")
    assert await link.call("PING") == "PONG"  # not the blocked pop's late answer


async def test_a_cancelled_read_drops_the_connection(
    server: tuple[RedisServer, Redis], link: Link
) -> None:
    _, client = server
    blocked = asyncio.ensure_future(link.call("BLPOP", "empty", 3, wait=3))
    await asyncio.sleep(0.1)
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    await client.lpush("empty", "late")
    assert await link.call("PING") == "PONG"


async def test_redis_gone_is_a_connection_error_and_back_is_fine(
    server: tuple[RedisServer, Redis],
    link: Link,
) -> None:
    from ws_sync.redis_lease import is_connection_error

    srv, _ = server
    assert await link.call("PING") == "PONG"
    srv.stop()
    with pytest.raises(Exception) as failed:
        await link.call("PING")
    assert is_connection_error(failed.value)
    srv.start()
    assert await link.call("PING") == "PONG"


async def test_a_command_written_at_once_and_answered_later(
    server: tuple[RedisServer, Redis],
    link: Link,
) -> None:
    _, client = server
    assert not link.send("PING")  # not connected yet: nothing written
    assert await link.call("SET", "n", 1) == "OK"
    assert link.send("INCR", "n")  # written in this step, before any await
    assert not link.send("INCR", "n")  # one command at a time
    assert await client.get("n") == "2"  # Redis has run it already
    assert await link.answer() == 2
    assert await link.call("GET", "n") == "2"  # the next answer is its own
