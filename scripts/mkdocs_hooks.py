"""mkdocs hooks: the benchmarks README and its results are pages of the site.

They live in ``benchmarks/`` next to the code that writes them; the hook adds
them to the site under ``benchmarks/`` so their relative links keep working.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def on_files(files: Files, config: Any) -> Files:
    sources = [BENCHMARKS / "README.md"]
    sources += sorted((BENCHMARKS / "results").glob("*.md"))
    sources += sorted((BENCHMARKS / "results").glob("*.png"))
    for source in sources:
        uri = source.relative_to(ROOT).as_posix()
        files.append(File.generated(config, uri, abs_src_path=str(source)))
    return files
