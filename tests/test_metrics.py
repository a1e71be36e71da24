"""Counters of one worker, as numbers and as Prometheus text."""

from __future__ import annotations

from session_helpers import Counter
from starlette.applications import Starlette
from starlette.testclient import TestClient

from ws_sync import sync_endpoint
from ws_sync.metrics import metrics_route, prometheus, snapshot


def test_sessions_and_connected_clients_are_counted() -> None:
    app = Starlette(routes=[sync_endpoint(Counter, user_sessions=False), metrics_route()])
    with TestClient(app) as tc:
        before = snapshot()
        with tc.websocket_connect("/ws") as ws:
            ws.receive_json()  # the state: the session is open
            now = snapshot()
            assert now["sessions"] == before["sessions"] + 1
            assert now["connected_clients"] == before["connected_clients"] + 1
            text = tc.get("/metrics").text
            assert f"ws_sync_connected_clients {now['connected_clients']!r}" in text
            assert "# TYPE ws_sync_sessions gauge" in text


def test_prometheus_text_has_one_sample_per_counter() -> None:
    samples = [line for line in prometheus().splitlines() if not line.startswith("#")]
    assert [line.split()[0] for line in samples] == [f"ws_sync_{k}" for k in snapshot()]
