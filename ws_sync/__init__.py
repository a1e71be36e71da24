"""ws-sync: keep Python objects and their browser copies in sync over one WebSocket."""

from .context import session_context
from .decorators import sync, sync_all, sync_only
from .sync import Sync, sync_key_scope
from .synced_model import Synced, SyncedAsCamelCase, SyncedObject
from .validation import ClientWriteError

__all__ = [
    "ClientWriteError",
    "Sync",
    "Synced",
    "SyncedAsCamelCase",
    "SyncedObject",
    "session_context",
    "sync",
    "sync_all",
    "sync_key_scope",
    "sync_only",
]
