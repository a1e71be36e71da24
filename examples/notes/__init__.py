"""Notes: per-session state, actions, a cancellable task. Run ``python -m examples.notes``."""
