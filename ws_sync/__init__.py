"""ws-sync: keep Python objects and their browser copies in sync over one WebSocket."""

from .context import session_context
from .decorators import sync, sync_all, sync_only
from .endpoint import client_route, sync_endpoint
from .lifespan import close_sessions, lifespan
from .limits import Limits
from .registry import SessionRegistry, get_user_session
from .remote import remote_action, remote_task, remote_task_cancel
from .session import Session, SessionState
from .sync import Sync, get_current_sync_key_prefix, sync_key_scope
from .synced_model import Synced, SyncedAsCamelCase, SyncedObject
from .validation import ClientWriteError

__all__ = [
    "ClientWriteError",
    "Limits",
    "Session",
    "SessionRegistry",
    "SessionState",
    "Sync",
    "Synced",
    "SyncedAsCamelCase",
    "SyncedObject",
    "client_route",
    "close_sessions",
    "get_current_sync_key_prefix",
    "get_user_session",
    "lifespan",
    "remote_action",
    "remote_task",
    "remote_task_cancel",
    "session_context",
    "sync",
    "sync_all",
    "sync_endpoint",
    "sync_key_scope",
    "sync_only",
]
