"""One WebSocket: a checked receive, and a bounded outbound queue with its writer.

Syncs never await the network. When nothing is queued and no send is pending,
`push` starts the send itself and runs it until it first has to wait: on a
writable socket the ASGI server writes the frame to the transport without
waiting at all, so the frame is out before `push` returns. A send that does
have to wait (the transport's buffer is full, a test client yields) is handed,
suspended, to the connection's writer task, and every frame pushed meanwhile
queues behind it; the writer sends them in order. Either way `push` returns at
once. A client that reads too slowly fills its own queue (or keeps frames
waiting behind one send for longer than `Limits.send_timeout`) and is closed
with 1013; it cannot hold up the syncs of anyone else, nor grow memory without
bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from . import wire
from .eager import Resume
from .hello import REPLY as HELLO_REPLY
from .hello import Held
from .limits import Limits, TokenBucket

logger = logging.getLogger("ws_sync")

Frame = str | bytes

CLOSE_TOO_SLOW = 1013
CLOSE_POLICY = 1008
CLOSE_GOING_AWAY = 1001

_SCOPE_KEY = "ws_sync.connection"

_current_task = asyncio.current_task
_get_ident = threading.get_ident


class FrameRejected(Exception):
    """An inbound frame broke a limit; it is dropped and answered with `_ERROR`."""

    def __init__(self, message: str, frame: Frame = "") -> None:
        super().__init__(message)
        self.message = message
        self.frame = frame


class _Close:
    """Queue item: close the socket once the frames before it are sent."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


def _message(frame: Frame) -> dict[str, Any]:
    if isinstance(frame, str):
        return {"type": "websocket.send", "text": frame}
    return {"type": "websocket.send", "bytes": frame}


class Connection:
    """Wraps a Starlette `WebSocket` for a `Session`.

    `closing` turns true as soon as the connection stops accepting frames (we
    close it, it was aborted, the client left); `wait_closed()` waits for the
    socket to be shut.
    """

    def __init__(
        self, ws: WebSocket, limits: Limits | None = None, shared: TokenBucket | None = None
    ) -> None:
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
        self._shared = shared  # the budget of every connection from this address
        self._work = TokenBucket(self.limits.write_share, self.limits.write_burst)
        self._throttled_since: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._sending_since: float | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        # True while `push` may send at once: started, accepted, not closing,
        # nothing queued and no send pending.
        self._idle = False
        self.protocol = 1
        """2 once the client's `_HELLO` was answered (`ws_sync.hello`)."""
        self.versions: Held = {}
        """What that `_HELLO` said the client holds: resume from there."""
        # A send that suspended in `push`, not yet taken over by the writer.
        self._inflight: tuple[Coroutine[Any, Any, Any], Any] | None = None
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
        self._idle = self._can_send_now()

    def _can_send_now(self) -> bool:
        return (
            not self._queue
            and self._inflight is None
            and not self.closing
            and self.ws.application_state == WebSocketState.CONNECTED
        )

    def greet(self, held: Held) -> None:
        """Answer a `_HELLO`: protocol 2 from now on, resuming from `held`."""
        self.protocol = wire.PROTOCOL
        self.versions = held
        self.push(HELLO_REPLY)

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
        self._idle = False
        self.close_code = code
        self._queue.append(_Close(code, reason))
        self._wake.set()

    def abort(self, code: int = CLOSE_TOO_SLOW, reason: str = "") -> None:
        """Drop everything queued and close now (the client is too slow, or
        stalled). Never waits: safe to call from `push`."""
        if self._done.is_set() or (self._closer is not None and self.closing):
            return
        self.closing = True
        self._idle = False
        self.close_code = code
        self._queue.clear()
        self._queued = 0
        self._drop_inflight()
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
        self._idle = False
        self._queue.clear()
        self._queued = 0
        self._drop_inflight()
        self._done.set()
        writer = self._writer
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()
        self._wake_reader()

    def _drop_inflight(self) -> None:
        """Give up a send that suspended in `push` before the writer took it
        over (once taken, cancelling the writer cancels it)."""
        inflight = self._inflight
        if inflight is not None:
            self._inflight = None
            with contextlib.suppress(RuntimeError):  # it would not stop: dropped anyway
                inflight[0].close()

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
        """Send or enqueue one frame; never blocks. False if dropped (closing,
        the send failed, or the client is too slow and is being disconnected)."""
        if self._thread is not None and _get_ident() != self._thread:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self.push, frame)
            return True
        if self._idle and _current_task(self._loop) is not None:
            return self._send_now(frame)
        if self.closing:
            return False
        if not self._fits(len(frame), 1):
            return False
        self._enqueue(frame)
        if self._sending_since is not None:
            self._watch()
        return True

    def push_many(self, frames: list[Frame]) -> bool:
        """Frames back to back (a `_BIN_META` and its bytes): all or none."""
        if self._thread is not None and _get_ident() != self._thread:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self.push_many, frames)
            return True
        if self.closing:
            return False
        now = self._idle and _current_task(self._loop) is not None
        if not now and not self._fits(sum(len(f) for f in frames), len(frames)):
            return False
        for frame in frames:
            if now and self._idle:
                if not self._send_now(frame):
                    return False
            else:
                # behind a send that suspended, or checked against the budget above
                self._enqueue(frame)
        if self._sending_since is not None:
            self._watch()
        return True

    def _send_now(self, frame: Frame) -> bool:
        """Start sending `frame` from the calling task, with nothing queued or
        pending: run the send until it completes or first has to wait. If it
        waits, the writer task finishes it and frames pushed meanwhile queue
        behind it. If it fails, the connection is finished, as when the writer's
        send fails; the caller gets False, never the exception.

        Only from inside a task (`push` checks): some sends look for the
        running task before their first wait (anyio's streams, under
        Starlette's TestClient, ask sniffio which library runs them). A send is
        assumed not to tie itself to that task across its first wait (an
        `asyncio.timeout` or anyio cancel scope entered before it): uvicorn's,
        the TestClient's and the fakes in the tests do not."""
        coro = self.ws.send(
            {"type": "websocket.send", "text": frame}
            if isinstance(frame, str)
            else {"type": "websocket.send", "bytes": frame}
        )
        try:
            yielded = coro.send(None)
        except StopIteration:
            return True
        except (Exception, asyncio.CancelledError):
            self._finish()  # the client is gone
            return False
        assert self._loop is not None
        self._idle = False
        self._inflight = (coro, yielded)
        self._sending_since = self._loop.time()
        self._wake.set()
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
        self._idle = False
        self._queue.append(frame)
        self._queued += len(frame)
        self._wake.set()

    @property
    def queued(self) -> tuple[int, int]:
        """(frames, characters + bytes) waiting to be sent."""
        return len(self._queue), self._queued

    async def _write(self) -> None:
        """Finish a send that suspended in `push`, then send what is queued, in
        order, all of it per wake-up. A send that completes without waiting
        costs no timestamp and no timer; only one that suspends is marked
        (`_sending_since`) for the stall check."""
        send = self.ws.send
        queue = self._queue
        wake = self._wake
        clock = asyncio.get_running_loop().time
        try:
            while True:
                inflight = self._inflight
                if inflight is not None:
                    self._inflight = None
                    await Resume(*inflight)
                    self._sending_since = None
                    continue
                if not queue:
                    self._idle = self._can_send_now()
                    wake.clear()
                    await wake.wait()
                    continue
                item = queue.popleft()
                if isinstance(item, _Close):
                    await self._close_socket(item.code, item.reason)
                    return
                self._queued -= len(item)
                coro = send(_message(item))
                try:
                    yielded = coro.send(None)
                except StopIteration:
                    continue
                self._sending_since = clock()
                if queue:
                    self._watch()
                await Resume(coro, yielded)
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
        await self._throttle()
        if len(frame) > self.limits.max_frame_size:
            raise FrameRejected(f"frame larger than {self.limits.max_frame_size}: dropped", frame)
        return frame

    def charge(self, seconds: float) -> None:
        """Count `seconds` of work done for this client against
        `Limits.write_share`; the next frames wait for what it owes."""
        self._work.reserve(seconds)

    async def _throttle(self) -> None:
        """Backpressure for a client over its rate: hold this frame until it
        is due and read nothing meanwhile, so the sender's TCP window fills
        and it slows down; no frame is dropped. A client that keeps the limit
        saturated for `Limits.throttle_timeout` is closed with 1008: saturated
        from the first frame that had to wait until the client pauses long
        enough to save up half its burst again."""
        bucket = self._bucket
        delay = max(bucket.reserve(), self._work.reserve(0.0))
        if self._shared is not None:
            delay = max(delay, self._shared.reserve())
        now = time.monotonic()
        if delay > 0:
            self._throttled_since = self._throttled_since or now
        elif bucket.rate is None or bucket.tokens >= bucket.burst / 2:
            self._throttled_since = None
        since, limit = self._throttled_since, self.limits.throttle_timeout
        if since is not None and limit is not None and now - since + delay > limit:
            logger.warning("client over its rate limit for %ss; disconnecting", limit)
            self.abort(CLOSE_POLICY, "rate limit")
            raise FrameRejected("rate limit abused: closing")
        if delay <= 0:
            return
        self._receiving = True
        try:
            await asyncio.sleep(delay)
        finally:
            self._receiving = False
