"""Who may do what: calls, writes and reads, decided by the app per session.

- ``@remote_action(..., allow=fn)`` / ``@remote_task(..., allow=fn)``:
  ``fn(session, params) -> bool`` (sync or async) runs after the params are
  validated and before anything else; a refused call is answered "forbidden"
  and runs nothing. A task's `allow` also decides who may cancel it.
- ``can_write(self, session, path, op) -> bool`` on a synced object decides
  each client write: every op of a `_PATCH` (``op`` its name; a move is also
  asked about its ``from``, as a "remove"; a "test" writes nothing and is
  not asked), every top-level key of a `_SET` (as "replace"). One refused op
  refuses the whole write. ``path`` is the JSON pointer as applied, its first
  token the synced name on the wire. A cancel of a task that is not running
  does nothing and is not asked about.
- ``can_read(self, session) -> bool`` on a synced object decides whether a
  session may subscribe to it: a refused session gets nothing of it, and its
  events for that key are answered "forbidden".

`session.user` is the principal (`ws_sync.auth`); on a shared object it is
the session doing the write or the call, not the one that made the object.
Plain functions run on the event loop: keep them quick. Without these hooks
nothing is asked and nothing is paid.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import pointer
from .actions import Params
from .auth import audit
from .validation import ClientWriteError

if TYPE_CHECKING:
    from .remote import Allow
    from .session import Session
    from .sync import Sync

FORBIDDEN = "forbidden"

_refused: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
"""Keys each session was refused to read, so its events for them say why."""


async def allowed(allow: Allow, session: Session, params: dict[str, Any]) -> bool:
    """What `allow` says about this call (awaited if it is async)."""
    verdict = allow(session, params)
    if inspect.isawaitable(verdict):
        verdict = await verdict
    return bool(verdict)


def named(params: Params, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Validated params by Python name, however they were bound; surplus
    positional values (``*args``) under ``"$args"``."""
    out = dict(kwargs)
    positional = iter(args)
    for slot in params.slots:
        if slot.name not in kwargs:
            out[slot.name] = next(positional)
    rest = list(positional)
    if rest:
        out["$args"] = rest
    return out


# --------------------------------------------------------------------------- #
# writes


def check_write(sync: Sync, session: Any, data: Any) -> None:
    """Raise `ClientWriteError` ("forbidden") if the object's `can_write`
    refuses any op of this client write; a no-op without `can_write`."""
    obj = sync.obj
    policy = getattr(type(obj), "can_write", None)
    if policy is None:
        return
    refused = [
        {"op": index, "path": path, "msg": FORBIDDEN} if index is not None else
        {"path": path, "msg": FORBIDDEN}
        for index, path, op in _targets(sync, data)
        if not policy(obj, session, path, op)
    ]  # fmt: skip
    if not refused:
        return
    event = "_SET" if isinstance(data, dict) else "_PATCH"
    user = getattr(session, "user", None)
    audit("write refused", user, key=sync.key, path=refused[0]["path"], ops=len(refused))
    raise ClientWriteError(f"{event} rejected: {FORBIDDEN}", refused)


def _targets(sync: Sync, data: Any) -> Iterator[tuple[int | None, str, str]]:
    """(op index or None for a `_SET` key, path, op) of each place a write changes.
    Malformed ops are left for validation to refuse (it refuses the whole write)."""
    if isinstance(data, dict):
        for token in data:
            yield None, pointer.join("", _wire(sync, str(token))), "replace"
        return
    if not isinstance(data, list):
        return
    for index, op in enumerate(data):
        if not isinstance(op, dict) or op.get("op") == "test":
            continue
        path = op.get("path")
        if isinstance(path, str):
            yield index, _wire_path(sync, path), str(op.get("op"))
        source = op.get("from")
        if op.get("op") == "move" and isinstance(source, str):
            yield index, _wire_path(sync, source), "remove"


def _wire(sync: Sync, token: str) -> str:
    """The wire name of a top-level token (a client may use the Python name,
    as validation accepts it)."""
    wire = sync.attributes.get(token)
    if wire is None or wire == token or token in sync.attributes.values():
        return token
    return wire


def _wire_path(sync: Sync, path: str) -> str:
    head, sep, rest = path[1:].partition("/")
    if not path.startswith("/") or "~" in head:
        return path  # left as sent: an escaped name is never a Python one
    wire = _wire(sync, head)
    return path if wire is head else f"/{pointer.escape(wire)}{sep}{rest}"


# --------------------------------------------------------------------------- #
# reads


def readable(sync: Sync, session: Any) -> bool:
    """Whether `session` may subscribe to `sync`'s object (its `can_read`);
    a refusal is remembered for the session and audited."""
    obj = sync.obj
    policy = getattr(type(obj), "can_read", None)
    if policy is None or policy(obj, session):
        return True
    _refused.setdefault(session, set()).add(sync.key)
    audit("read refused", getattr(session, "user", None), key=sync.key)
    return False


def read_refused(session: Any, key: str) -> bool:
    """Whether `session` was refused the object under `key`."""
    keys = _refused.get(session)
    return keys is not None and key in keys
