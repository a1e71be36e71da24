"""Runnable ws-sync examples: ``python -m examples.notes`` and ``python -m examples.board``."""
