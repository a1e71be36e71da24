"""Test doubles shared by several test modules."""

from __future__ import annotations

from typing import Any

from pydantic_core import from_json


class FakeSession:
    """Stands in for a connected `Session`: keeps every frame it is sent."""

    def __init__(self, connected: bool = True) -> None:
        self.is_connected = connected
        self.frames: list[Any] = []
        self.registered: list[Any] = []

    def register(self, sync: Any) -> None:
        self.registered.append(sync)

    def unregister(self, sync: Any) -> None:
        self.registered = [s for s in self.registered if s is not sync]

    def send_frame(self, frame: str) -> None:
        self.frames.append(frame)

    def send_frames(self, frames: list[Any]) -> None:
        self.frames.extend(frames)

    def events(self, versions: bool = False) -> list[dict[str, Any]]:
        """The frames as JSON, without protocol 2's version fields unless asked."""
        frames = [from_json(f) for f in self.frames if isinstance(f, str)]
        if not versions:
            for frame in frames:
                frame.pop("v", None)
                frame.pop("epoch", None)
        return frames

    def take(self, versions: bool = False) -> list[dict[str, Any]]:
        out = self.events(versions)
        self.frames.clear()
        return out


class FakeConn:
    """Stands in for a `Connection` under a `Dispatcher`: keeps what it is
    pushed, as JSON."""

    closing = False

    def __init__(self, protocol: int = 1) -> None:
        self.protocol = protocol
        self.sent: list[dict[str, Any]] = []

    def push(self, frame: str) -> None:
        self.sent.append(from_json(frame))
