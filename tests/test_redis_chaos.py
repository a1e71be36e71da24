"""The chaos run, bounded: workers killed and restarted while clients write."""

from __future__ import annotations

import pytest
from redis_chaos import run

pytestmark = pytest.mark.slow


async def test_every_client_equals_the_server_after_kills_and_restarts() -> None:
    out = await run(seconds=12, n_workers=3, n_clients=5, seed=7)
    assert out.kills >= 2
    assert out.acked  # something was acknowledged, and all of it is there
    assert out.failures == []
