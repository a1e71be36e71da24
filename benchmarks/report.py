"""Writing results: one markdown file per section, a summary with the targets,
the raw numbers as JSON, and a table on stdout."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .common import Config, SectionResult, dump_json, environment, md_table

RESULTS_JSON = "results.json"
SUMMARY_MD = "summary.md"


def write_section(cfg: Config, result: SectionResult) -> Path:
    path = cfg.out_dir / f"{result.key}.md"
    body = result.markdown.rstrip() + "\n"
    if result.targets:
        body += "\n### Targets\n\n" + targets_table(result) + "\n"
    body += f"\n_Section run time: {result.seconds:.0f} s._\n"
    path.write_text(body)
    return path


def targets_table(result: SectionResult) -> str:
    rows = []
    for t in result.targets:
        verdict = {"met": "**met**", "missed": "**missed**"}.get(t.verdict, t.verdict)
        rows.append([t.name, t.goal, t.measured, verdict, t.note])
    return md_table(["target", "goal", "measured", "verdict", "why / note"], rows)


def _load(cfg: Config) -> dict[str, Any]:
    path = cfg.out_dir / RESULTS_JSON
    if path.exists():
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        except ValueError:
            pass
    return {"sections": {}}


def write_summary(cfg: Config, results: list[SectionResult], order: list[str]) -> str:
    """Merge this run's sections into results.json (so `--only` refreshes one
    section) and rewrite summary.md from everything there. Returns the text."""
    data = _load(cfg)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    env = environment()
    for r in results:
        data["sections"][r.key] = {
            "title": r.title,
            "when": r.finished or stamp,
            "seconds": r.seconds,
            "quick": cfg.quick,
            "environment": env,
            "headline": r.headline,
            "targets": [
                {
                    "name": t.name,
                    "goal": t.goal,
                    "measured": t.measured,
                    "verdict": t.verdict,
                    "note": t.note,
                }
                for t in r.targets
            ],
            "data": r.data,
        }
    dump_json(cfg.out_dir / RESULTS_JSON, data)

    sections = [data["sections"][k] for k in order if k in data["sections"]]
    head_rows = [[h[0], h[1]] for s in sections for h in s["headline"]]
    target_rows = []
    for s in sections:
        for t in s["targets"]:
            verdict = {"met": "**met**", "missed": "**missed**"}.get(t["verdict"], t["verdict"])
            target_rows.append([t["name"], t["goal"], t["measured"], verdict, t["note"]])
    runs = sorted({(s["when"], s["title"], round(s["seconds"])) for s in sections})
    lines = [
        "# Benchmark summary",
        "",
        f"Machine: {env.get('platform')}, {env.get('cpus')} CPUs, Python {env.get('python')}, "
        f"pydantic {env.get('pydantic')}, jsonpatch {env.get('jsonpatch')}, "
        f"commit {env.get('commit', '?')}.",
        "",
        "## Headline numbers",
        "",
        md_table(["what", "measured"], head_rows),
        "",
        "## Targets",
        "",
        md_table(["target", "goal", "measured", "verdict", "why / note"], target_rows),
        "",
        "## Sections",
        "",
        *[
            f"- [{title}]({_file_of(title, data)}) — run {when}, {secs} s"
            for when, title, secs in runs
        ],
        "",
    ]
    text = "\n".join(lines)
    (cfg.out_dir / SUMMARY_MD).write_text(text)
    return text


README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"


def update_readme(readme: Path, summary: str) -> bool:
    """Put the summary's tables between the README's results markers (a full
    run into the committed results directory keeps the README's numbers true)."""
    if not readme.exists():
        return False
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return False
    body = summary.split("\n", 2)[2]  # drop the summary's own title
    body = body.replace("](", "](results/").replace("](results/http", "](http")
    body = body.replace("\n## ", "\n### ")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{body.strip()}\n{README_END}{tail}")
    return True


def _file_of(title: str, data: dict[str, Any]) -> str:
    for key, s in data["sections"].items():
        if s["title"] == title:
            return f"{key}.md"
    return ""


def print_summary(results: list[SectionResult]) -> None:
    """The table on stdout at the end of a run."""
    width = 46
    print()
    print("=" * 100)
    print("HEADLINE")
    for r in results:
        for what, measured in r.headline:
            print(f"  {what:<{width}} {measured}")
    print()
    print("TARGETS")
    for r in results:
        for t in r.targets:
            print(f"  [{t.verdict:^12}] {t.name:<{width}} goal {t.goal:<18} measured {t.measured}")
    print("=" * 100)
