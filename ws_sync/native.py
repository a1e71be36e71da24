"""Which tracking hot paths run in C.

`ws_sync._speedups` is built at install time when a C compiler is there; without
it, or with ``WS_SYNC_PURE=1`` in the environment, the same classes run on
their pure-Python methods, which are the reference (the tests run both).
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any


def _load() -> ModuleType | None:
    if os.environ.get("WS_SYNC_PURE", "") not in ("", "0"):
        return None
    try:
        from . import _speedups
    except ImportError:
        return None
    return _speedups


speedups = _load()
ENABLED = speedups is not None

ListBase: Any = speedups.ListBase if speedups else list
DictBase: Any = speedups.DictBase if speedups else dict
AttributeBase: Any = speedups.AttributeBase if speedups else object
