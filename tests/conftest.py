"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes import FakeSession
from redis_helpers import RedisServer


@pytest.fixture
def fake_session() -> FakeSession:
    return FakeSession()


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A private redis-server for one test (started empty, stopped after)."""
    with RedisServer() as server:
        yield server
