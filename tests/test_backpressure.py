"""Rate limits as backpressure on real uvicorn servers: a client that sends
faster than its budget is slowed down, and every one of its frames is
handled. Each WebSocket implementation of uvicorn buffers differently before
the server stops reading the socket: `websockets` up to ``ws_max_queue``
messages, `wsproto` and `websockets-sansio` what one read brought."""

import asyncio
import json
from typing import Any

import pytest
from session_helpers import Counter, make_app, serve
from websockets.asyncio.client import connect

from ws_sync.limits import Limits

ACTIONS = 1500


async def _flood(url: str, count: int) -> list[dict[str, Any]]:
    """`count` back-to-back actions, sent without waiting; all their results."""
    async with connect(url + "/ws", max_queue=None) as ws:
        assert json.loads(await ws.recv())["type"] == "_SET:COUNTER"

        async def send_all() -> None:
            for i in range(count):
                await ws.send(
                    json.dumps({"type": "_ACTION:COUNTER", "data": {"$id": i, "type": "INCREMENT"}})
                )

        sender = asyncio.create_task(send_all())
        results: list[dict[str, Any]] = []
        async with asyncio.timeout(60):
            while len(results) < count:
                frame = json.loads(await ws.recv())
                if frame["type"] == "_ACTION_RESULT:COUNTER":
                    results.append(frame["data"])
        await sender
        return results


@pytest.mark.parametrize("ws_impl", ["websockets", "websockets-sansio", "wsproto"])
async def test_a_flood_of_honest_actions_is_slowed_down_and_fully_answered(ws_impl: str) -> None:
    limits = Limits(rate=1000.0, burst=100, address_rate=None)
    app, sessions = make_app(Counter, limits=limits)
    loop = asyncio.get_running_loop()
    async with serve(app, ws=ws_impl) as url:
        start = loop.time()
        results = await _flood(url, ACTIONS)
        elapsed = loop.time() - start
    assert [r["id"] for r in results] == list(range(ACTIONS))
    assert all(r["ok"] for r in results)
    assert sessions.last().objects["COUNTER"].count == ACTIONS
    # (ACTIONS - burst) / rate: the budget held, so the client was slowed down
    assert elapsed >= (ACTIONS - 100) / 1000.0 * 0.9


async def test_connections_from_one_address_share_one_budget() -> None:
    limits = Limits(rate=None, address_rate=1000.0, address_burst=50)
    app, sessions = make_app(Counter, limits=limits)
    loop = asyncio.get_running_loop()
    async with serve(app) as url:
        start = loop.time()
        batches = await asyncio.gather(*(_flood(url, 300) for _ in range(4)))
        elapsed = loop.time() - start
    assert all([r["id"] for r in results] == list(range(300)) for results in batches)
    assert sum(b.objects["COUNTER"].count for b in sessions.built) == 1200
    assert elapsed >= (1200 - 50) / 1000.0 * 0.9  # four connections, one budget
