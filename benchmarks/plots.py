"""matplotlib, installed on first use if missing (the `bench` extra has it)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from typing import Any


def pyplot() -> Any:
    """`matplotlib.pyplot` on the Agg backend."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib missing: pip install matplotlib", file=sys.stderr, flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"], check=True
        )
        importlib.invalidate_caches()
        import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3})
    return plt


COLORS = {
    "ours": "#1f77b4",
    "ours (plain)": "#1f77b4",
    "ours (pydantic)": "#17becf",
    "reference": "#ff7f0e",
    "upstream": "#d62728",
    "floor": "#2ca02c",
    "plain": "#7f7f7f",
}
