"""``python -m ws_sync``: the ``ws-sync`` command."""

from .cli import main

raise SystemExit(main())
