"""Board: one object shared by every browser tab. Run ``python -m examples.board``."""
