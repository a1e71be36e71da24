"""TypeScript generation, the `ws-sync` command, and `tsc --noEmit` over the
typed example: generated types make a wrong action name or param a compile
error in the bundled client's `store.action` and `useSynced`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from examples.typed.app import Todos
from ws_sync.cli import main
from ws_sync.typescript import generate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "typed"
TSC = ROOT / "node_modules" / "typescript" / "bin" / "tsc"


def tsc(project: Path) -> subprocess.CompletedProcess[str]:
    assert TSC.exists(), "TypeScript is a dev dependency: run `npm ci`"
    return subprocess.run(
        ["node", str(TSC), "-p", str(project)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def test_generated_types() -> None:
    ts = generate([Todos])
    assert "export interface Todos {\n  title: string;\n  todoItems: Todo[];\n" in ts
    assert "  readonly openCount: number;\n" in ts
    assert "export interface Todo {\n  text: string;\n  done: boolean;\n}" in ts
    assert 'export const TodosKey = "TODOS" as const;' in ts
    assert "  ADD_TODO: { params: TodosActionAddTodo; result: number; };" in ts
    assert "  TOGGLE: { params: TodosActionToggle; result: null; };" in ts
    archive = "ARCHIVE_DONE: { params: TodosTaskArchiveDone; result: null; progress: number; };"
    assert f"  {archive}" in ts
    assert "  addTodo(params: TodosActionAddTodo): number;" in ts
    assert "export interface TodosTaskArchiveDone {\n  delay?: number;\n}" in ts


def test_example_types_are_current() -> None:
    """examples/typed/synced.ts is what the command writes for app.py."""
    assert (EXAMPLE / "synced.ts").read_text() == generate([Todos])


def test_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "synced.ts"
    assert main(["typescript", "examples.typed.app:Todos", "-o", str(out)]) == 0
    assert out.read_text() == generate([Todos])
    main(["schema", "examples.typed.app:Todos"])
    schema = json.loads(capsys.readouterr().out)["examples.typed.app:Todos"]
    assert schema["schemas"]["REMOTE ACTIONS KEYS (validation)"]["enum"] == ["ADD_TODO", "TOGGLE"]
    with pytest.raises(SystemExit, match="not module:Class"):
        main(["typescript", "examples.typed.app"])
    with pytest.raises(SystemExit, match="has no Nope"):
        main(["typescript", "examples.typed.app:Nope"])


def test_console_script_is_declared() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["ws-sync"] == "ws_sync.cli:main"


def test_python_dash_m(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ws_sync", "typescript", "examples.typed.app:Todos"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == generate([Todos])


def test_typed_example_compiles() -> None:
    done = tsc(EXAMPLE / "tsconfig.json")
    assert done.returncode == 0, done.stdout + done.stderr


MISTAKES = """
import { Session } from "{static}/ws-sync.js";
import { useSynced } from "{static}/react.js";
import { TodosKey, type Todos, type TodosCallers } from "{example}/synced.js";
import type { TodosActions, TodosTasks } from "{example}/synced.js";
const todos = new Session("ws://x").store<Todos, TodosActions, TodosTasks>(TodosKey);
todos.action("ADD_TODOO", { text: "x" });
todos.action("TOGGLE", { index: "1" });
const n: string = await todos.action("ADD_TODO", { text: "x" });
const synced = useSynced<Todos, TodosCallers>(TodosKey, { title: "", todoItems: [], openCount: 0 });
synced.addTodoo({ text: "x" });
todos.startTask("ARCHIVE");
const untyped = new Session("ws://x").store("ANY");
const fine: number = await untyped.action<number>("WHATEVER", { a: 1 });
"""


def test_mistakes_fail_the_check(tmp_path: Path) -> None:
    source = MISTAKES.replace("{static}", str(ROOT / "ws_sync" / "static"))
    (tmp_path / "bad.ts").write_text(source.replace("{example}", str(EXAMPLE)))
    config = json.loads((EXAMPLE / "tsconfig.json").read_text())
    config["files"] = ["bad.ts"]
    config["compilerOptions"]["typeRoots"] = [str(ROOT / "node_modules" / "@types")]
    (tmp_path / "tsconfig.json").write_text(json.dumps(config))
    done = tsc(tmp_path / "tsconfig.json")
    errors = [line for line in done.stdout.splitlines() if ": error TS" in line]
    assert done.returncode != 0
    lines = sorted(int(e.split("(")[1].split(",")[0]) for e in errors)
    assert lines == [7, 8, 9, 11, 12], done.stdout  # each mistake, and only those
    assert any("'\"ADD_TODOO\"'" in e for e in errors)
    assert any("'addTodoo' does not exist" in e for e in errors)


PAGES = {
    "notes": ("examples.notes.app", "Notes"),
    "board": ("examples.board.app", "Board"),
}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_types_are_current(page: str) -> None:
    """Each example page's synced.ts is what the command writes for its app.py."""
    module, name = PAGES[page]
    cls = getattr(__import__(module, fromlist=[name]), name)
    static = ROOT / "examples" / page / "static"
    assert (static / "synced.ts").read_text() == generate([cls])


def test_plain_js_pages_pass_check_js() -> None:
    done = tsc(ROOT / "examples" / "tsconfig.json")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_misspelled_action_in_a_plain_js_page_fails_check_js(tmp_path: Path) -> None:
    page = ROOT / "examples" / "notes" / "static"
    source = (page / "main.js").read_text()
    assert 'notes.action("ADD_NOTE", { note: text })' in source
    bad = source.replace(
        'notes.action("ADD_NOTE", { note: text })', 'notes.action("ADD_NOTES", { note: text })'
    )
    bad = bad.replace('notes.startTask("PROCESS")', 'notes.startTask("PROCESS", { steps: "50" })')
    (tmp_path / "main.js").write_text(bad.replace('"./synced.js"', f'"{page}/synced.js"'))
    config = json.loads((ROOT / "examples" / "tsconfig.json").read_text())
    config["files"] = ["main.js"]
    target = str(ROOT / "ws_sync" / "static" / "ws-sync.d.ts")
    config["compilerOptions"]["paths"] = {"/ws-sync/ws-sync.js": [target]}
    (tmp_path / "tsconfig.json").write_text(json.dumps(config))
    done = tsc(tmp_path / "tsconfig.json")
    errors = [line for line in done.stdout.splitlines() if ": error TS" in line]
    assert done.returncode != 0
    assert len(errors) == 2, done.stdout
    assert any("'\"ADD_NOTES\"'" in e for e in errors)
