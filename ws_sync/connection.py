"""One WebSocket: a checked receive, and a bounded outbound queue with its writer.

Syncs never await the network. `push` only enqueues; one writer task per
connection sends the frames in order. A client that reads too slowly fills its
own queue (or keeps frames waiting behind one send for longer than
`Limits.send_timeout`) and is closed with 1013; it cannot hold up the syncs of
anyone else, nor grow memory without bound.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from . import wire
from .limits import Limits, TokenBucket

logger = logging.getLogger("ws_sync")

Frame = str | bytes

CLOSE_TOO_SLOW = 1013
CLOSE_POLICY = 1008
CLOSE_GOING_AWAY = 1001

_SCOPE_KEY = "ws_sync.connection"


class FrameRejected(Exception):
    """An inbound frame broke a limit; it is dropped and answered with `_ERROR`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Close:
    """Queue item: close the socket once the frames before it are sent."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class Connection:
    """Wraps a Starlette `WebSocket` for a `Session`.

    `closing` turns true as soon as the connection stops accepting frames (we
    close it, it was aborted, the client left); `wait_closed()` waits for the
    socket to be shut.
    """

    def __init__(self, ws: WebSocket, limits: Limits | None = None) -> None:
        self.ws = ws
        self.limits = limits or Limits()
        self.closing = False
        self.close_code: int | None = None
        self._queue: deque[Frame | _Close] = deque()
        self._queued = 0
        self._wake = asyncio.Event()
        self._done = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[Any] | None = None
        self._receiving = False
        self.reader_cancelled = False
        self._held: deque[Frame] = deque()
        self._bucket = TokenBucket(self.limits.rate, self.limits.burst)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._sending_since: float | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        ws.scope[_SCOPE_KEY] = self

    @classmethod
    def of(cls, ws: WebSocket, limits: Limits | None = None) -> Connection:
        """The connection already made for `ws` (by a handshake), or a new one."""
        existing = ws.scope.get(_SCOPE_KEY)
        if isinstance(existing, Connection):
            return existing
        return cls(ws, limits)

    # ------------------------------------------------------------------ #
    # life cycle

    async def accept(self) -> None:
        if self.ws.application_state == WebSocketState.CONNECTING:
            await self.ws.accept()

    def start(self) -> None:
        """Start the writer (idempotent). Frames pushed before are kept."""
        if self._writer is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._writer = self._loop.create_task(self._write(), name="ws_sync writer")

    def bind_reader(self) -> None:
        """Mark the current task as the one receiving, so a close can wake it."""
        self._reader = asyncio.current_task()

    async def close(
        self, code: int = 1000, reason: str = "", *, message: str | None = None
    ) -> None:
        """Send what is queued (and `_DISCONNECT` with `message`), then close.
        Bounded by `Limits.close_timeout`; a client that does not take the
        frames in time is aborted."""
        self.close_soon(code, reason, message=message)
        try:
            async with asyncio.timeout(self.limits.close_timeout):
                await self._done.wait()
        except TimeoutError:
            self.abort(code, "close timed out")
            await self.wait_closed()

    def close_soon(self, code: int = 1000, reason: str = "", *, message: str | None = None) -> None:
        """`close` without waiting: queue the close behind the pending frames."""
        if self.closing:
            return
        self.start()
        if message is not None:
            self._enqueue(wire.encode(wire.DISCONNECT, message))
        self.closing = True
        self.close_code = code
        self._queue.append(_Close(code, reason))
        self._wake.set()

    def abort(self, code: int = CLOSE_TOO_SLOW, reason: str = "") -> None:
        """Drop everything queued and close now (the client is too slow, or
        stalled). Never waits: safe to call from `push`."""
        if self._done.is_set() or (self._closer is not None and self.closing):
            return
        self.closing = True
        self.close_code = code
        self._queue.clear()
        self._queued = 0
        writer = self._writer
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()
        self._wake_reader()
        loop = self._loop or asyncio.get_running_loop()
        self._closer = loop.create_task(self._close_socket(code, reason))

    async def wait_closed(self) -> None:
        await self._done.wait()

    def _finish(self) -> None:
        """The socket is shut (or the client left): stop the writer and the reader."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self.closing = True
        self._queue.clear()
        self._queued = 0
        self._done.set()
        writer = self._writer
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()
        self._wake_reader()

    def _wake_reader(self) -> None:
        """A reader blocked in `receive` would wait for a client that may never
        send again: cancel it (the session's loop expects this and ends)."""
        reader = self._reader
        if self._receiving and reader is not None and reader is not asyncio.current_task():
            self.reader_cancelled = True
            reader.cancel()

    async def _close_socket(self, code: int, reason: str) -> None:
        try:
            if self.ws.application_state != WebSocketState.DISCONNECTED:
                async with asyncio.timeout(self.limits.close_timeout):
                    await self.ws.close(code, reason)
        except Exception:
            pass  # the client is gone or will not take the close frame: done either way
        finally:
            self._finish()

    # ------------------------------------------------------------------ #
    # outbound

    def push(self, frame: Frame) -> bool:
        """Enqueue one frame; never blocks. False if dropped (closing, or the
        client is too slow and is being disconnected)."""
        if self._thread is not None and threading.get_ident() != self._thread:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self.push, frame)
            return True
        if self.closing:
            return False
        if not self._fits(len(frame), 1):
            return False
        self._enqueue(frame)
        if self._sending_since is not None:
            self._watch()
        return True

    def push_many(self, frames: list[Frame]) -> bool:
        """Enqueue frames back to back (a `_BIN_META` and its bytes): all or none."""
        if self._thread is not None and threading.get_ident() != self._thread:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self.push_many, frames)
            return True
        if self.closing:
            return False
        if not self._fits(sum(len(f) for f in frames), len(frames)):
            return False
        for frame in frames:
            self._enqueue(frame)
        if self._sending_since is not None:
            self._watch()
        return True

    def _fits(self, size: int, count: int) -> bool:
        """Within the budget; an empty queue takes anything, so that a frame
        larger than the budget (a big `_SET`) can still be sent."""
        limits = self.limits
        if self._queue and (
            len(self._queue) + count > limits.outbound_frames
            or self._queued + size > limits.outbound_bytes
        ):
            logger.warning("client too slow: %d frames queued; disconnecting", len(self._queue))
            self.abort(CLOSE_TOO_SLOW, "too slow")
            return False
        return True

    def _enqueue(self, frame: Frame) -> None:
        self._queue.append(frame)
        self._queued += len(frame)
        self._wake.set()

    @property
    def queued(self) -> tuple[int, int]:
        """(frames, characters + bytes) waiting to be sent."""
        return len(self._queue), self._queued

    async def _write(self) -> None:
        send = self.ws.send
        queue = self._queue
        clock = asyncio.get_running_loop().time
        try:
            while True:
                if not queue:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                item = queue.popleft()
                if isinstance(item, _Close):
                    await self._close_socket(item.code, item.reason)
                    return
                self._queued -= len(item)
                message = (
                    {"type": "websocket.send", "text": item}
                    if isinstance(item, str)
                    else {"type": "websocket.send", "bytes": item}
                )
                self._sending_since = clock()
                if queue:
                    self._watch()
                await send(message)
                self._sending_since = None
        except asyncio.CancelledError:
            raise
        except Exception:
            self._finish()  # the client is gone

    def _watch(self) -> None:
        """Arm the stall check while frames wait behind a send. A timer per
        connection under backpressure, not a timeout per frame: fan-out to
        many clients stays cheap."""
        if self._watchdog is None and self._loop is not None:
            self._watchdog = self._loop.call_later(self.limits.send_timeout, self._check_stall)

    def _check_stall(self) -> None:
        self._watchdog = None
        since = self._sending_since
        if since is None or self.closing or self._loop is None:
            return
        left = since + self.limits.send_timeout - self._loop.time()
        if left > 0:
            self._watchdog = self._loop.call_later(left, self._check_stall)
            return
        logger.warning(
            "client stalled: a frame took over %ss; disconnecting", self.limits.send_timeout
        )
        self.abort(CLOSE_TOO_SLOW, "stalled")

    # ------------------------------------------------------------------ #
    # inbound

    def unread(self, frames: list[Frame]) -> None:
        """Put frames back, to be received again first (those that arrived
        during the user-session handshake)."""
        self._held.extendleft(reversed(frames))

    async def receive(self) -> Frame | None:
        """The next frame, or None once the client has left or we closed.
        Raises `FrameRejected` for a frame over a limit (it is dropped)."""
        if self._held:
            return self._held.popleft()
        if self._done.is_set():
            return None
        self._receiving = True
        try:
            message = await self.ws.receive()
        except (RuntimeError, OSError):
            message = {"type": "websocket.disconnect"}
        finally:
            self._receiving = False
        if message["type"] == "websocket.disconnect":
            self._finish()
            return None
        frame: Frame | None = message.get("text")
        if frame is None:
            frame = message.get("bytes") or b""
        if not self._bucket.take():
            raise FrameRejected("rate limit exceeded: frame dropped")
        if len(frame) > self.limits.max_frame_size:
            raise FrameRejected(f"frame larger than {self.limits.max_frame_size}: dropped")
        return frame
