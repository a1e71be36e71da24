"""Upstream's helper module, kept for its import paths."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import AliasGenerator, BaseModel

from ..invoke import invoke


async def nonblock_call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Await `func` if it is async, else run it in the threadpool (`ws_sync.invoke`)."""
    return await invoke(func, *args, **kwargs)


def get_alias_function_for_class(target_cls: type) -> Callable[[str], str] | None:
    """The serialization alias function of a pydantic model class, if it has one."""
    if not (isinstance(target_cls, type) and issubclass(target_cls, BaseModel)):
        return None
    generator = target_cls.model_config.get("alias_generator")
    if isinstance(generator, AliasGenerator):
        fn = generator.serialization_alias or generator.alias
        return fn if callable(fn) else None
    return generator if callable(generator) else None


__all__ = ["get_alias_function_for_class", "nonblock_call"]
