"""Health and load of one worker, as plain numbers or Prometheus text.

    snapshot()   # {"sessions": 12, "connected_clients": 9, "backplane_connected": 1, ...}
    app = Starlette(routes=[..., metrics_route("/metrics")])

Everything is counted when asked, from what the library keeps anyway, so an
app that never asks pays nothing. The backplane's counters
(`ws_sync.backplane`) come prefixed with ``backplane_``: ``connected`` (0
while this worker cannot reach Redis), commits, conflicts, delivered,
unavailable, reconnects, ``retries`` (failed attempts to reach Redis),
``lag_seconds`` (from proposing the latest commit here to delivering it),
``behind`` (commits in Redis not yet delivered here, as of the last check),
``shared_pending`` (shared objects not loaded yet), ``local_sessions``
(sessions made while Redis was unreachable, kept in this worker only), and
``revokes_sent`` / ``revokes_received``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from . import backplane, session

PREFIX = "ws_sync_"


def snapshot() -> dict[str, float]:
    """This worker's counters now."""
    live = list(session._live)
    out: dict[str, float] = {
        "sessions": len(live),
        "connected_clients": sum(len(s.connections) for s in live),
    }
    for name, value in backplane.current().stats().items():
        out[f"backplane_{name}"] = value
    return out


def prometheus() -> str:
    """`snapshot` in the Prometheus text format (every value a gauge)."""
    lines = []
    for name, value in snapshot().items():
        lines.append(f"# TYPE {PREFIX}{name} gauge")
        lines.append(f"{PREFIX}{name} {float(value)!r}")
    return "\n".join(lines) + "\n"


def metrics_route(path: str = "/metrics", *, name: str = "ws-sync-metrics") -> Route:
    """A route serving `prometheus` (put it where only operators reach it)."""

    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse(prometheus(), media_type="text/plain; version=0.0.4")

    return Route(path, endpoint, name=name)
