"""Recently seen call ids and their answers, for exactly-once calls.

A protocol-2 client retries what was in flight when its connection dropped:
an action whose result it never got, a task start, a write. The server keeps
the ids it has handled (bounded, oldest forgotten first) so that a retry is
answered again instead of run again.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

RECENT_IDS = 512
"""Call ids remembered per session (or per object, for writes)."""
RECENT_CHARS = 1 << 20
"""Characters of remembered answers per session."""

RUNNING = ""
"""The answer of a call that has not finished yet."""
ELSEWHERE = "\x00"
"""The answer of a call that another worker ran and committed: it is kept
in the backplane (`ws_sync.redis_replica.Replica.answer_of`)."""
LOST_ANSWER = (
    "this call ran on a server process that stopped before answering: "
    "its changes are in, its result was lost"
)


class RanElsewhere(Exception):
    """The call was handled by another worker, and committed there."""

    def __init__(self, call_id: Any) -> None:
        super().__init__(call_id)
        self.call_id = call_id


class Recent:
    """Call id -> the frame that answered it (`RUNNING` until there is one)."""

    __slots__ = ("_answers", "_chars", "max_chars", "max_ids")

    def __init__(self, max_ids: int = RECENT_IDS, max_chars: int = RECENT_CHARS) -> None:
        self._answers: OrderedDict[Any, str] = OrderedDict()
        self._chars = 0
        self.max_ids = max_ids
        self.max_chars = max_chars

    def get(self, call_id: Any) -> str | None:
        """The answer to `call_id` (`RUNNING` while it runs), or None if unseen."""
        return self._answers.get(_key(call_id))

    def put(self, call_id: Any, answer: str = RUNNING) -> None:
        key = _key(call_id)
        old = self._answers.pop(key, None)
        if old is not None:
            self._chars -= len(old)
        self._answers[key] = answer
        self._chars += len(answer)
        while self._answers and (len(self._answers) > self.max_ids or self._chars > self.max_chars):
            _, dropped = self._answers.popitem(last=False)
            self._chars -= len(dropped)

    def __len__(self) -> int:
        return len(self._answers)


def _key(call_id: Any) -> Any:
    """Ids are JSON scalars; 1 and "1" are different calls."""
    return (
        type(call_id).__name__,
        call_id if not isinstance(call_id, list | dict) else repr(call_id),
    )
