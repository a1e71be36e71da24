"""Where changes become versions: ops -> version -> history -> publish.

Every synced object has a `CommitLog`. Each batch of ops that leaves the
object (a `sync()` that found changes, an accepted client write) is one
commit: it gets the next version, its `_PATCH` frame (carrying that version as
``"v"``) enters a bounded history, and the same frame goes to every
subscriber. A client that reconnects holding version n of an epoch gets the
frames after n from the history, or, if they are gone (or the epoch is not
this object's: another process, a rebuilt object), a `_SET`.

A backplane plugs in here: a log whose `local` is False (`ws_sync.shared`)
takes each commit as a proposal (`append` only reserves its version), and
`route` says who gets it once the backplane has it in its one total order;
`set_frame` is then the committed state, not changes still on their way.

History costs memory per object: at most `HISTORY_COMMITS` frames and
`HISTORY_CHARS` characters by default, the oldest dropped first.
"""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

HISTORY_COMMITS = 256
"""Commits kept per object for resume; a client further behind gets `_SET`."""
HISTORY_CHARS = 256 * 1024
"""Characters of frames kept per object for resume."""


class CommitLog:
    """The version of one object and the frames of its recent commits."""

    __slots__ = ("_chars", "_frames", "epoch", "max_chars", "max_commits", "version")

    local: ClassVar[bool] = True
    """Commits are delivered by their `Sync` at once (False: by a backplane)."""

    def __init__(self, max_commits: int = HISTORY_COMMITS, max_chars: int = HISTORY_CHARS) -> None:
        self.epoch = secrets.token_hex(4)
        """Names this object's line of versions: versions of another epoch
        (another process, an object built anew) say nothing about this one."""
        self.version = 0
        self.max_commits = max_commits
        self.max_chars = max_chars
        self._frames: list[str] = []  # versions version-len+1 .. version
        self._chars = 0

    def append(self, frame: str) -> None:
        """Record the frame of commit ``version + 1`` (already encoded with it)."""
        self.version += 1
        frames = self._frames
        frames.append(frame)
        self._chars += len(frame)
        if len(frames) > self.max_commits or self._chars > self.max_chars:
            self._trim()

    def _trim(self) -> None:
        """Drop the oldest frames until within bounds (a list, not a deque: an
        idle object's log stays small, and trimming is rare and short)."""
        frames = self._frames
        drop = max(0, len(frames) - self.max_commits)
        chars = self._chars - sum(len(f) for f in frames[:drop])
        while drop < len(frames) and chars > self.max_chars:
            chars -= len(frames[drop])
            drop += 1
        del frames[:drop]
        self._chars = chars

    def restart(self) -> None:
        """A change that has no patch (it is only in a `_SET`): the next
        version, and no history before it."""
        self.version += 1
        self._frames.clear()
        self._chars = 0

    def since(self, epoch: str, version: int) -> list[str] | None:
        """The frames a client at `version` of `epoch` missed; None if it needs
        the whole state instead."""
        if epoch != self.epoch or not 0 <= version <= self.version:
            return None
        missed = self.version - version
        if missed > len(self._frames):
            return None
        return self._frames[len(self._frames) - missed :] if missed else []

    @property
    def chars(self) -> int:
        """Characters of history held."""
        return self._chars

    def route(self, frame: str, exclude: Any = None, reply: str | None = None) -> None:
        """Who gets `frame` once committed: every subscriber but `exclude`,
        which gets `reply` instead. Only a log that is not `local` has one."""
        raise NotImplementedError("only a backplane's log routes its commits")

    def set_frame(self, key: str, **fields: Any) -> str:
        """`_SET` of the committed state. Only a log that is not `local` has one."""
        raise NotImplementedError("only a backplane's log has a state of its own")
