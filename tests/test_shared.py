"""`ws_sync.shared` on the in-process backplane (the default)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from session_helpers import Counter, recv, send
from starlette.applications import Starlette
from starlette.testclient import TestClient

import ws_sync
from ws_sync import session_context, sync_endpoint
from ws_sync import shared as shared_module
from ws_sync.backplane import Backplane
from ws_sync.shared import one_worker, shared


@pytest.fixture(autouse=True)
def declarations() -> Iterator[None]:
    handles, jobs = dict(shared_module._handles), dict(shared_module._jobs)
    yield
    shared_module._handles.clear()
    shared_module._handles.update(handles)
    shared_module._jobs.clear()
    shared_module._jobs.update(jobs)


def test_the_handle_makes_the_object_at_first_use() -> None:
    made: list[Counter] = []

    def factory() -> Counter:
        made.append(Counter())
        return made[-1]

    counter = shared("COUNTER", factory)
    assert made == [] and not counter.loaded
    counter.count = 3
    assert counter.count == 3 and made[0].count == 3
    assert counter.sync is made[0].sync and len(made) == 1


def test_the_factory_must_make_the_object_of_the_key() -> None:
    handle = shared("BOARD", Counter, backplane=Backplane())
    with pytest.raises(ValueError, match="keyed 'COUNTER'"):
        handle.obj  # noqa: B018


def test_every_session_sees_the_one_object() -> None:
    counter = shared("COUNTER", Counter)

    def join() -> object:
        session_context.get().attach(counter)
        return counter

    app = Starlette(routes=[sync_endpoint(join, user_sessions=False)])
    with TestClient(app) as tc, tc.websocket_connect("/ws") as a, tc.websocket_connect("/ws") as b:
        assert recv(a)["data"] == recv(b)["data"] == {"count": 0, "label": "fixed"}
        send(a, "_ACTION:COUNTER", {"type": "increment"})
        patch = {"op": "replace", "path": "/count", "value": 1}
        assert recv(b) == {"type": "_PATCH:COUNTER", "data": [patch]}
    assert counter.count == 1


async def test_lock_commits_on_exit() -> None:
    counter = shared("COUNTER", Counter)
    before = counter.sync.log.version
    async with counter.lock() as obj:
        obj.count += 5
        async with counter.lock():  # nested: already held
            obj.count += 1
    assert counter.sync.log.version == before + 1 and counter.count == 6


async def test_one_worker_jobs_run_under_the_lifespan() -> None:
    ran = asyncio.Event()

    @one_worker("tick")
    async def tick() -> None:
        ran.set()
        await asyncio.Event().wait()

    app = Starlette(lifespan=ws_sync.lifespan())
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(ran.wait(), 5)
