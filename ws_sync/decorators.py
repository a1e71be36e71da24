"""Decorators that make an object synced when it is built.

Put one on ``__init__``, on a pydantic ``model_post_init``, or on the class:

    class Notes:
        @sync_all("NOTES")
        def __init__(self):
            self.title = "My Notes"

The `Sync` is made after the decorated method returns, so attributes first set
in it are found; `self.sync` then gives it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import EllipsisType
from typing import Any, TypeVar, overload

from pydantic import BaseModel

from .sync import Include, Sync

F = TypeVar("F", bound=Callable[..., Any])


def _decorate(target: Any, options: dict[str, Any]) -> Any:
    if isinstance(target, type):
        cls = target
        method = "model_post_init" if issubclass(cls, BaseModel) else "__init__"
        original = getattr(cls, method)
        setattr(cls, method, _decorate(original, options))
        if issubclass(cls, BaseModel):
            cls.__pydantic_post_init__ = "model_post_init"  # type: ignore[attr-defined]
        cls.__ws_sync_options__ = options  # type: ignore[attr-defined]
        return cls

    func = target

    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        func(self, *args, **kwargs)
        type(self).__ws_sync_options__ = options
        Sync(self, **options)

    return wrapper


@overload
def sync(func: F, /) -> F: ...


@overload
def sync(
    *,
    key: str | None = None,
    sync_all: bool = False,
    include: Include = None,
    exclude: list[str] | None = None,
    toCamelCase: bool | None = None,
    camel: bool | None = None,
    send_on_init: bool = True,
    expose_running_tasks: bool = False,
    read_only: Any = (),
    logger: Any = None,
) -> Callable[[F], F]: ...


def sync(
    func: Any = None,
    /,
    *,
    key: str | None = None,
    sync_all: bool = False,
    include: Include = None,
    exclude: list[str] | None = None,
    toCamelCase: bool | None = None,
    camel: bool | None = None,
    send_on_init: bool = True,
    expose_running_tasks: bool = False,
    read_only: Any = (),
    logger: Any = None,
) -> Any:
    """Sync the attributes chosen by the options; the key defaults to the class name."""
    options = dict(
        key=key,
        sync_all=sync_all,
        include=include,
        exclude=exclude,
        camel=camel if camel is not None else toCamelCase,
        send_on_init=send_on_init,
        expose_running_tasks=expose_running_tasks,
        read_only=read_only,
        logger=logger,
    )
    if func is not None:
        return _decorate(func, options)
    return lambda target: _decorate(target, options)


def sync_all(
    key: str | None = None,
    *,
    include: Include = None,
    exclude: list[str] | None = None,
    toCamelCase: bool | None = None,
    camel: bool | None = None,
    send_on_init: bool = True,
    expose_running_tasks: bool = False,
    read_only: Any = (),
    logger: Any = None,
) -> Callable[[F], F]:
    """Sync every public attribute, property and computed field."""
    return sync(
        key=key,
        sync_all=True,
        include=include,
        exclude=exclude,
        camel=camel if camel is not None else toCamelCase,
        send_on_init=send_on_init,
        expose_running_tasks=expose_running_tasks,
        read_only=read_only,
        logger=logger,
    )


def sync_only(
    _key: str | None = None,
    *,
    _toCamelCase: bool | None = None,
    _camel: bool | None = None,
    _send_on_init: bool = True,
    _expose_running_tasks: bool = False,
    _read_only: Any = (),
    _logger: Any = None,
    **attributes: str | EllipsisType,
) -> Callable[[F], F]:
    """Sync only the named attributes; ``total_length="size"`` renames one."""
    return sync(
        key=_key,
        include=attributes,
        camel=_camel if _camel is not None else _toCamelCase,
        send_on_init=_send_on_init,
        expose_running_tasks=_expose_running_tasks,
        read_only=_read_only,
        logger=_logger,
    )
