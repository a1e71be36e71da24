"""Choosing the backplane: `WS_SYNC_BACKPLANE`, or `sync_endpoint(backplane=)`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from session_helpers import Counter

from ws_sync import backplane, sync_endpoint
from ws_sync.redis_backplane import RedisBackplane


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    saved = backplane._current
    backplane._current = None
    yield
    backplane._current = saved


def test_in_process_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(backplane.ENV, raising=False)
    chosen = backplane.current()
    assert type(chosen) is backplane.Backplane and chosen.embedded


def test_the_environment_names_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(backplane.ENV, "redis://127.0.0.1:6399/2")
    chosen = backplane.current()
    assert isinstance(chosen, RedisBackplane) and chosen.url == "redis://127.0.0.1:6399/2"


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="memory:// or redis://"):
        backplane.from_url("kafka://broker")


def test_sync_endpoint_takes_the_backplane(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(backplane.ENV, raising=False)
    sync_endpoint(Counter, backplane="redis://127.0.0.1:6399/0")
    assert isinstance(backplane.current(), RedisBackplane)
    mine = backplane.Backplane()
    sync_endpoint(Counter, backplane=mine)
    assert backplane.current() is mine
