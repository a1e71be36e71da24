"""The ``ws-sync`` command (also ``python -m ws_sync``).

    ws-sync typescript app.models:Notes app.models:Board -o src/synced.ts
    ws-sync schema app.models:Notes            # upstream-shaped JSON Schema

A class is named ``module:Class`` (``module:outer.Inner`` for a nested one);
the module is imported from the current directory first.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any


def load(spec: str) -> type:
    """The class named by ``module:Class``."""
    module_name, sep, qualname = spec.partition(":")
    if not sep or not module_name or not qualname:
        raise SystemExit(f"ws-sync: {spec!r} is not module:Class")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise SystemExit(f"ws-sync: {module_name} has no {qualname}") from None
    if not isinstance(target, type):
        raise SystemExit(f"ws-sync: {spec} is not a class")
    return target


def _typescript(args: argparse.Namespace) -> str:
    from .typescript import generate

    return generate([load(spec) for spec in args.classes])


def _schema(args: argparse.Namespace) -> str:
    from .schema import ws_sync_json_schema

    out: dict[str, Any] = {}
    for spec in args.classes:
        schemas, definitions = ws_sync_json_schema(load(spec))
        out[spec] = {
            "schemas": {f"{key} ({mode})": schema for (key, mode), schema in schemas.items()},
            **definitions,
        }
    return json.dumps(out, indent=2) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ws-sync", description="ws-sync tools")
    commands = p.add_subparsers(dest="command", required=True)
    for name, run, help_text in (
        ("typescript", _typescript, "TypeScript types of synced classes"),
        ("schema", _schema, "JSON Schema of synced classes (upstream's shapes)"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("classes", nargs="+", metavar="module:Class")
        sub.add_argument("-o", "--output", help="write here instead of stdout")
        sub.set_defaults(run=run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    text = args.run(args)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0
