"""What one connection may cost the server: safe defaults, all configurable.

A WebSocket is an open door into the process. Each limit here bounds one way a
client (hostile or merely slow) could take memory or time from the others:

- inbound: frame size, JSON nesting depth, event rate (token bucket);
- outbound: a bounded queue per connection and a timeout per frame, so a
  client that stops reading is disconnected instead of growing the queue or
  stalling the syncs of other clients.

The ASGI server has its own cap on frame size (uvicorn's ``ws_max_size``,
16 MiB by default) that applies before a frame reaches us; keep it at or above
`max_frame_size` so that a big frame gets an `_ERROR` rather than a close.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Per-connection limits. ``Limits(rate=None)`` turns rate limiting off."""

    max_frame_size: int = 1 << 20
    """Largest inbound frame, in characters (text) or bytes (binary)."""
    max_depth: int = 64
    """Deepest JSON nesting accepted, checked before parsing."""
    rate: float | None = 200.0
    """Sustained inbound frames per second."""
    burst: int = 400
    """Frames a client may send at once before `rate` applies."""
    outbound_frames: int = 2048
    """Frames queued for one client before it counts as too slow."""
    outbound_bytes: int = 8 << 20
    """Characters and bytes queued for one client before it counts as too slow."""
    send_timeout: float = 15.0
    """Seconds one frame may take to go out, while others wait behind it,
    before the client counts as stalled."""
    close_timeout: float = 5.0
    """Seconds a closing handshake may take before we stop waiting."""
    handshake_timeout: float = 10.0
    """Seconds a client has to answer `_REQUEST_USER_SESSION`."""
    max_patch_ops: int = 1000
    """Operations in one client `_PATCH`."""
    max_copy_nodes: int = 100_000
    """JSON values (each scalar, array and object counts one) that the `copy`
    ops of one client `_PATCH` may produce, all together."""
    safe_integers: bool = False
    """Refuse client integers outside +-(2**53 - 1), which browsers cannot
    hold exactly (JavaScript numbers are doubles)."""


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; one per frame."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float | None, burst: int) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self.tokens = self.burst
        self.stamp = time.monotonic()

    def take(self) -> bool:
        if self.rate is None:
            return True
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


# A JSON string (with its escapes) or one bracket. Strings are matched whole so
# that brackets inside them are not counted.
_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def too_deep(text: str, max_depth: int) -> bool:
    """Whether `text` nests arrays/objects deeper than `max_depth`. Runs before
    the parser sees the text, so a deeply nested payload never reaches it."""
    if text.count("[") + text.count("{") <= max_depth:
        return False
    depth = 0
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token == "[" or token == "{":
            depth += 1
            if depth > max_depth:
                return True
        elif token == "]" or token == "}":
            depth -= 1
    return False
