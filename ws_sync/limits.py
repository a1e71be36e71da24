"""What one connection may cost the server: safe defaults, all configurable.

A WebSocket is an open door into the process. Each limit here bounds one way a
client (hostile or merely slow) could take memory or time from the others:

- inbound: frame size, JSON nesting depth, frame rate per connection and
  per client address, and the time a connection's writes take (token
  buckets that delay reading, never drop a frame);
- outbound: a bounded queue per connection and a timeout per frame, so a
  client that stops reading is disconnected instead of growing the queue or
  stalling the syncs of other clients.

Worst-case cost of one inbound frame of n characters, step by step (the
loop is held for each step; nothing here is quadratic):

=================  =========================================================
size check         O(1): the server already holds the frame.
depth check        O(n), in C (`too_deep`: regex passes and a bytes
                   translate); about 20 ms for a hostile 1 MiB frame.
parse              O(n), in Rust (pydantic_core); it refuses depth > 200
                   itself.
validation         `_SET`: O(n) to walk, validate and compare the values.
                   Action/task params: O(n), pydantic.
patch apply        `_PATCH` in place: O(n + path tokens), plus list shifts
                   (ops x list length). ``move``/``copy`` or ops that build
                   on each other: O(n + size of the touched attributes +
                   `max_copy_nodes`): a small frame may re-validate a big
                   attribute, which is why `write_share` bounds the time one
                   connection's writes take.
=================  =========================================================

Above these, `max_frame_size` bounds n, `rate` the frames per second, and
`write_share` the share of the loop that one connection's writes can use.

The ASGI server has its own cap on frame size (uvicorn's ``ws_max_size``,
16 MiB by default) that applies before a frame reaches us; keep it at or above
`max_frame_size` so that a big frame gets an `_ERROR` rather than a close.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass

MAX_PARSER_DEPTH = 200
"""pydantic_core's parser refuses deeper JSON itself; `Limits.max_depth` stays below."""


@dataclass(frozen=True)
class Limits:
    """Per-connection limits. ``Limits(rate=None)`` turns rate limiting off."""

    max_frame_size: int = 1 << 20
    """Largest inbound frame, in characters (text) or bytes (binary)."""
    max_depth: int = 64
    """Deepest JSON nesting accepted, checked before parsing (at most
    `MAX_PARSER_DEPTH`)."""
    rate: float | None = 200.0
    """Sustained inbound frames per second of one connection. Above it the
    server stops reading that socket until the frame is due (backpressure:
    TCP slows the sender; nothing is dropped)."""
    burst: int = 400
    """Frames a client may send at once before `rate` applies."""
    address_rate: float | None = 1000.0
    """Sustained inbound frames per second of all connections from one client
    address together, so that opening more connections buys no more."""
    address_burst: int = 2000
    """Frames all connections of one address may send at once."""
    write_share: float | None = 0.25
    """Share of the server's time that applying one connection's `_SET` and
    `_PATCH` writes may take on average. A write's cost follows the attributes
    it touches, not only the frame (a ``move`` in a 20k-item list re-validates
    the list); past its share the connection's next frames wait, as above."""
    write_burst: float = 0.5
    """Seconds of write work a connection may use at once before `write_share`
    applies."""
    throttle_timeout: float | None = 30.0
    """Seconds a connection may keep the rate limits saturated without a
    pause before it counts as abuse and is closed with 1008."""
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

    def __post_init__(self) -> None:
        if not 1 <= self.max_depth <= MAX_PARSER_DEPTH:
            raise ValueError(f"max_depth must be within 1..{MAX_PARSER_DEPTH}")


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up: one per frame, or
    one per second of work."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float | None, burst: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = self.burst
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        assert self.rate is not None
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self) -> bool:
        """One token if there is one."""
        if self.rate is None:
            return True
        self._refill()
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def reserve(self, cost: float = 1.0) -> float:
        """Take `cost` tokens, owing what is missing: the seconds until they
        are due (0 if they were there). Callers that wait that long before
        taking more get exactly `rate`, and nobody is refused."""
        if self.rate is None:
            return 0.0
        self._refill()
        self.tokens -= cost
        if self.tokens >= 0.0:
            return 0.0
        return -self.tokens / self.rate if self.rate > 0 else float("inf")


class AddressBuckets:
    """One shared `TokenBucket` per client address, for as long as it has
    connections."""

    def __init__(self, rate: float | None, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[TokenBucket, int]] = {}

    def acquire(self, address: str) -> TokenBucket:
        bucket, users = self._buckets.get(address) or (TokenBucket(self.rate, self.burst), 0)
        self._buckets[address] = (bucket, users + 1)
        return bucket

    def release(self, address: str) -> None:
        entry = self._buckets.get(address)
        if entry is None:
            return
        bucket, users = entry
        if users <= 1:
            del self._buckets[address]
        else:
            self._buckets[address] = (bucket, users - 1)

    def __len__(self) -> int:
        return len(self._buckets)


# A JSON string with its escapes, or an unterminated one up to the end of the
# frame. Possessive: no backtracking, so one pass over the text at most.
_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"?', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SQUARE = bytes.maketrans(b"{}", b"[]")


@functools.lru_cache(maxsize=8)
def _nested_at_most(depth: int) -> re.Pattern[bytes]:
    """Matches a run of balanced brackets nested at most `depth` deep. Possessive
    repeats make it a single forward pass (re has no recursion, so the depth
    is spelled out)."""
    pattern = b""
    for _ in range(depth):
        pattern = rb"(?:\[" + pattern + rb"\])*+"
    return re.compile(pattern)


def too_deep(text: str, max_depth: int) -> bool:
    """Whether `text` nests arrays/objects deeper than `max_depth`. Runs before
    the parser sees the text, so a deeply nested payload never reaches it.

    Linear in the text, all of it in C: strings are cut out (brackets inside
    them do not count), everything but brackets is dropped, and the rest must
    be balanced within the depth. Text whose brackets do not balance is not
    JSON; it is reported as too deep only if it also nests too deep."""
    if text.count("[") + text.count("{") <= max_depth:
        return False
    if '"' in text:
        text = _STRING.sub("", text)
    brackets = text.encode("utf-8", "surrogatepass").translate(_SQUARE, _NOT_BRACKETS)
    if _nested_at_most(max_depth).fullmatch(brackets) is not None:
        return False
    # Balanced but not within the depth: too deep (or misordered, which is not
    # JSON either). Unbalanced is not JSON: the parser refuses it, in linear time.
    return brackets.count(b"[") == brackets.count(b"]")
