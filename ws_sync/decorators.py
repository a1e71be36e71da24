"""Decorators that make an object synced when it is built.

Put one on ``__init__``, on a pydantic ``model_post_init``, or on the class:

    class Notes:
        @sync_all("NOTES")
        def __init__(self):
            self.title = "My Notes"

The `Sync` is made after the decorated method returns, so attributes first set
in it are found; `self.sync` then gives it. Options are those of `Sync`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypedDict, TypeVar, Unpack, overload

from pydantic import BaseModel

from .remote import Kind, remote_action, remote_table, remote_task, remote_task_cancel
from .sync import Include, Sync, only_options

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "find_remote_actions",
    "find_remote_task_cancellers",
    "find_remote_tasks",
    "remote_action",
    "remote_task",
    "remote_task_cancel",
    "sync",
    "sync_all",
    "sync_only",
]


class SyncOptions(TypedDict, total=False):
    include: Include
    exclude: list[str] | None
    toCamelCase: bool | None
    camel: bool | None
    send_on_init: bool
    expose_running_tasks: bool
    read_only: Any
    logger: logging.Logger | None
    history_commits: int
    history_chars: int


_building: ContextVar[Any] = ContextVar("ws_sync_building", default=None)
"""The object whose outermost decorated initializer is running: decorated
initializers further in (a decorated base class's) leave its Sync to that one."""


def building(obj: Any) -> bool:
    """Whether a decorated initializer further out will make the Sync of `obj`."""
    return _building.get() is obj


def _decorate(target: Any, options: dict[str, Any]) -> Any:
    if isinstance(target, type):
        cls = target
        method = "model_post_init" if issubclass(cls, BaseModel) else "__init__"
        setattr(cls, method, _decorate(getattr(cls, method), options))
        if issubclass(cls, BaseModel):
            cls.__pydantic_post_init__ = "model_post_init"  # type: ignore[attr-defined]
        cls.__ws_sync_options__ = options  # type: ignore[attr-defined]
        return cls

    func = target

    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        if building(self):  # a subclass's decorator makes the one Sync, with its options
            func(self, *args, **kwargs)
            return
        token = _building.set(self)
        try:
            func(self, *args, **kwargs)
        finally:
            _building.reset(token)
        type(self).__ws_sync_options__ = options  # copies re-create their Sync from it
        Sync(self, **options)

    wrapper.__ws_sync_options__ = options  # type: ignore[attr-defined]  # read by `schema`
    return wrapper


@overload
def sync(func: F, /) -> F: ...


@overload
def sync(
    *, key: str | None = None, sync_all: bool = False, **options: Unpack[SyncOptions]
) -> Callable[[F], F]: ...


def sync(
    func: Any = None,
    /,
    *,
    key: str | None = None,
    sync_all: bool = False,
    **options: Unpack[SyncOptions],
) -> Any:
    """Sync the attributes chosen by the options; the key defaults to the class name."""
    all_options = {"key": key, "sync_all": sync_all, **options}
    if func is not None:
        return _decorate(func, all_options)
    return lambda target: _decorate(target, all_options)


def sync_all(key: str | None = None, **options: Unpack[SyncOptions]) -> Callable[[F], F]:
    """Sync every public attribute, property and computed field."""
    return sync(key=key, sync_all=True, **options)


def sync_only(_key: str | None = None, **attributes: Any) -> Callable[[F], F]:
    """Sync only the named attributes; ``total_length="size"`` renames one.
    Options take a leading underscore (``_toCamelCase=True``)."""
    return sync(key=_key, **only_options(attributes))


def _exposed(cls: type, kind: Kind) -> dict[str, Callable[..., Any]]:
    return {key: m.raw for key, m in remote_table(cls).by_kind[kind].items()}


def find_remote_actions(cls: type) -> dict[str, Callable[..., Any]]:
    """Upstream's name: the actions of `cls`, key -> function."""
    return _exposed(cls, "action")


def find_remote_tasks(cls: type) -> dict[str, Callable[..., Any]]:
    """Upstream's name: the tasks of `cls`, key -> function."""
    return _exposed(cls, "task")


def find_remote_task_cancellers(cls: type) -> dict[str, Callable[..., Any]]:
    """Upstream's name: the task cancellers of `cls`, task key -> function."""
    return _exposed(cls, "cancel")
