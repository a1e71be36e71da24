"""Base classes for synced objects.

- `Synced` / `SyncedAsCamelCase`: mixins for pydantic models. Give the class a
  key (``class Notes(Synced, BaseModel, sync_key="NOTES")``) to sync every
  instance, or make the `Sync` yourself in ``model_post_init``.
- `SyncedObject`: a plain base class whose metaclass turns the annotated
  attributes into synced descriptors and syncs each instance once built.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar, get_origin

from pydantic import AliasGenerator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from . import descriptors
from .decorators import building
from .sync import Sync
from .tracking import hook_class

registered_synced_models: dict[str, type[Synced]] = {}
"""Class name -> class of every `Synced` model not declared ``is_abstract``
(for schema and TypeScript generation)."""


class Synced:
    """Mixin for pydantic models whose fields are synced."""

    __ws_sync_options__: ClassVar[dict[str, Any] | None] = None

    def __init_subclass__(
        cls, *, sync_key: str | None = None, is_abstract: bool = False, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if sync_key is not None:
            cls.__ws_sync_options__ = {"key": sync_key, "sync_all": True}
        descriptors.install_accessor(cls)
        if not is_abstract and issubclass(cls, BaseModel):
            registered_synced_models[cls.__name__] = cls

    @classmethod
    def ws_sync_json_schema(cls, **options: Any) -> tuple[dict[Any, Any], dict[str, Any]]:
        """See `ws_sync.schema.ws_sync_json_schema`."""
        from .schema import ws_sync_json_schema

        return ws_sync_json_schema(cls, **options)

    @classmethod
    def attach_to_openapi(cls, openapi: dict[str, Any], **options: Any) -> dict[str, Any]:
        """See `ws_sync.schema.attach_to_openapi`."""
        from .schema import attach_to_openapi

        return attach_to_openapi(cls, openapi, **options)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)  # type: ignore[misc]
        hook_class(cls)

    def model_post_init(self, context: Any, /) -> None:
        options = type(self).__ws_sync_options__
        if options is not None and not building(self):
            Sync(self, **options)


class SyncedAsCamelCase(Synced, is_abstract=True):
    """`Synced`, with fields serialized (and accepted) in camelCase."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(serialization_alias=to_camel, validation_alias=None),
        serialize_by_alias=True,
        populate_by_name=True,
    )


class SyncedMeta(type):
    """Installs a synced descriptor for every annotated attribute, and makes the
    `Sync` after ``__init__`` when the class was given a key."""

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **options: Any
    ) -> SyncedMeta:
        annotations = namespace.get("__annotations__", {})
        defaults: dict[str, Any] = {}
        for attr, hint in annotations.items():
            if attr.startswith("_") or get_origin(hint) is ClassVar or hint is ClassVar:
                continue
            if isinstance(hint, str) and hint.startswith("ClassVar"):
                continue
            if attr in namespace:
                defaults[attr] = namespace.pop(attr)
            namespace[attr] = descriptors.SyncedAttribute(attr)
        cls = super().__new__(mcs, name, bases, namespace)
        inherited = dict(getattr(cls, "__ws_defaults__", {}))
        inherited.update(defaults)
        cls.__ws_defaults__ = inherited  # type: ignore[attr-defined]
        if "key" in options or "sync_key" in options:
            options.setdefault("sync_all", True)
            options["key"] = options.pop("sync_key", options.get("key"))
            cls.__ws_sync_options__ = options  # type: ignore[attr-defined]
        descriptors.install_accessor(cls)
        return cls

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        new: Any = cls.__new__  # the class's own, or object's
        obj: Any = new(cls)
        for attr, default in cls.__ws_defaults__.items():  # type: ignore[attr-defined]
            obj.__dict__[attr] = copy.deepcopy(default)
        obj.__init__(*args, **kwargs)
        options = getattr(cls, "__ws_sync_options__", None)
        if options is not None and not _has_sync(obj):
            Sync(obj, **options)
        return obj


def _has_sync(obj: Any) -> bool:
    node = obj.__dict__.get("__ws_node__")
    return node is not None and node.owner_id == id(obj) and node.sync is not None


class SyncedObject(metaclass=SyncedMeta):
    """Plain (non-pydantic) synced base class:

    class Team(SyncedObject, key="TEAM"):
        members: list[str] = []
    """


__all__ = [
    "BaseModel",
    "Synced",
    "SyncedAsCamelCase",
    "SyncedMeta",
    "SyncedObject",
    "registered_synced_models",
]
