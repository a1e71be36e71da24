"""Protocol 2's opening: the client says which versions it holds.

A versioned client connects with ``?ws_sync=2`` on its URL and sends
``_HELLO {"protocol": 2, "versions": {key: {"epoch", "v"}}}`` first. The server
answers ``_HELLO {"protocol": 2}``, then sends each object's missed commits
instead of its whole state where it can (`Sync.resume_frames`). A client
without the parameter (upstream's, a raw one) gets protocol 1: `_SET` on
connect, as always.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

from . import wire

Held = dict[str, tuple[str, int]]
"""Per key, the (epoch, version) a client holds."""

MAX_HELD = 10_000
"""Keys a `_HELLO` may list; the rest are ignored (they get `_SET`)."""

REPLY = wire.encode(wire.HELLO, {"protocol": wire.PROTOCOL})


def wants_versions(conn: HTTPConnection) -> bool:
    """Whether the client asked for protocol 2 on its URL."""
    return conn.query_params.get("ws_sync") == str(wire.PROTOCOL)


def held_versions(data: Any) -> Held:
    """The versions of a `_HELLO`; malformed entries are skipped (those
    objects get `_SET`, which is always correct)."""
    versions = data.get("versions") if isinstance(data, dict) else None
    if not isinstance(versions, dict):
        return {}
    held: Held = {}
    for key, entry in versions.items():
        if len(held) >= MAX_HELD:
            break
        if not isinstance(entry, dict):
            continue
        epoch, version = entry.get("epoch"), entry.get("v")
        if isinstance(epoch, str) and type(version) is int:
            held[key] = (epoch, version)
    return held
