"""Randomized convergence under network faults, in the style of Jepsen.

A real uvicorn server (`jepsen_app`) holds one object shared by every
session. Several real JS clients (the bundled ``ws-sync.js``, in node:
``tests/js/jepsen_client.mjs``) each reach it through a `FaultProxy` that
cuts, delays and blackholes their connection on a seeded schedule, while the
clients write at random to the same fields (the scalar everyone writes, card
inserts, removes, moves and appends, nested card fields, dict keys), call an
action, and go offline for a while; a server task changes the same fields
meanwhile. Then the faults end, and once nothing is in flight:

- every client shows exactly the server's state, at the server's version,
  which is what its `_GET` then answers, and what a fresh client reads;
- the history of commits replays to that state;
- every write a client sent was committed exactly once (its ack), or refused;
  what it wrote is in the state its commit made, unless the ack says the
  transform dropped it (or a later op of the same write overwrote it);
- no action ran twice, and every action call settled with its result.

Every fifth seed keeps a history of only a few commits, so that clients
also resume from `_SET`; only convergence and the calls are checked then.
Odd seeds run the endpoint with user sessions (two of the clients are two
tabs of one session), even seeds without (each connection a new session, as
the board example runs).

``WS_SYNC_JEPSEN_SEEDS=200`` runs more seeds (1 to 20 by default;
``WS_SYNC_JEPSEN_SEEDS=21-500`` runs those);
``WS_SYNC_JEPSEN_SEED=17`` runs only that one (the failure message says so).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from collections import defaultdict
from typing import Any

import pytest
from e2e_helpers import ROOT, LiveServer
from jepsen_app import RUNS, Mutator, Shared, create_app, initial
from jepsen_proxy import FaultProxy, Faults

CLIENT = ROOT / "tests" / "js" / "jepsen_client.mjs"
CLIENTS = 4
OPS = 60  # workload steps per client
SETTLE_MS = 15_000
SHORT_HISTORY = 8  # commits kept on short-history seeds

NODE = shutil.which("node")


def seeds() -> list[int]:
    one = os.environ.get("WS_SYNC_JEPSEN_SEED")
    if one:
        return [int(one)]
    spec = os.environ.get("WS_SYNC_JEPSEN_SEEDS", "20")
    first, _, last = spec.rpartition("-")
    return list(range(int(first or 1), int(last) + 1))


def user_sessions(seed: int) -> bool:
    """Odd seeds serve user sessions (a reconnect resumes its session); even
    seeds do not (every connection is a new session), as the board does."""
    return seed % 2 == 1


def short_history(seed: int) -> bool:
    """Every fifth seed keeps only the last few commits: a client further
    behind resumes from a `_SET`, and its writes made on a version the history
    no longer has are applied by position. Only convergence and exactly-once
    calls are checked then: which item such a write lands on is not promised."""
    return seed % 5 == 0


def reproduce(seed: int) -> str:
    return f"WS_SYNC_JEPSEN_SEED={seed} python -m pytest -q tests/test_jepsen.py"


@pytest.mark.parametrize("seed", seeds())
def test_clients_converge_under_faults(seed: int) -> None:
    run = Run(seed)
    try:
        report = run.execute()
        problems = check(report, run)
    finally:
        run.close()
    if problems:
        shown = "\n".join(f"- {p}" for p in problems[:30])
        more = f"\n(and {len(problems) - 30} more)" if len(problems) > 30 else ""
        faults = ", ".join(run.faults.log[-40:])
        pytest.fail(
            f"seed {seed}: {len(problems)} problem(s)\n{shown}{more}\n"
            f"user sessions: {user_sessions(seed)}; short history: {short_history(seed)}\n"
            f"faults (last 40): {faults}\n"
            f"server mutations: {run.mutator.count}\n"
            f"reproduce: {reproduce(seed)}",
            pytrace=False,
        )


class Run:
    """One seed: the server, one proxy per client, the node clients."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.shared: Shared = initial()
        self.start_state = self.shared.sync.state()
        self.server = LiveServer(create_app(self.shared, user_sessions(seed)))
        self.server.start()
        self.proxies = [FaultProxy(self.server.port) for _ in range(CLIENTS)]
        for proxy in self.proxies:
            self.server.call(proxy.start)
        self.faults = Faults(self.proxies, seed)
        self.mutator = Mutator(self.shared, seed)
        if short_history(seed):
            self.shared.sync.log.max_commits = SHORT_HISTORY
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self.node: subprocess.Popen[str] | None = None
        self.lines: queue.Queue[str | None] = queue.Queue()

    def execute(self) -> dict[str, Any]:
        assert NODE, "node is not on PATH; the convergence test's clients need Node >= 20"
        ports = ",".join(str(p.port) for p in self.proxies)
        self.node = subprocess.Popen(
            [
                NODE,
                str(CLIENT),
                "--seed",
                str(self.seed),
                "--server",
                str(self.server.port),
                "--ports",
                ports,
                "--ops",
                str(OPS),
                "--settle-ms",
                str(SETTLE_MS),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        ready = self._expect("ready", 20)
        assert all(ready["synced"]), f"clients without the state at the start: {ready}"
        self.server.call(self.mutator.start)
        self.server.call(self.faults.start)
        self._send("start")
        self._expect("workload-done", 120)
        self.server.call(self.faults.stop)
        self.server.call(self.mutator.stop)
        self.server.call(self.shared.sync)
        self._send("settle")
        report = self._expect("report", SETTLE_MS / 1000 + 30)
        report["server"] = self.server.call(self._server_side)
        return report

    def _server_side(self) -> dict[str, Any]:
        log = self.shared.sync.log
        return {
            "state": self.shared.sync.state(),
            "version": log.version,
            "frames": [json.loads(f) for f in log._frames],
            "runs": dict(RUNS),
        }

    def _read(self) -> None:
        assert self.node is not None and self.node.stdout is not None
        for line in self.node.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _send(self, command: str) -> None:
        assert self.node is not None and self.node.stdin is not None
        self.node.stdin.write(command + "\n")
        self.node.stdin.flush()

    def _expect(self, event: str, timeout: float) -> dict[str, Any]:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"seed {self.seed}: no {event!r} from the clients within {timeout} s\n"
                    f"{self._stderr()}\nreproduce: {reproduce(self.seed)}"
                ) from None
            if line is None:
                raise AssertionError(
                    f"seed {self.seed}: the clients exited before {event!r}\n{self._stderr()}\n"
                    f"reproduce: {reproduce(self.seed)}"
                )
            msg = json.loads(line)
            if msg.get("event") == "crash":
                raise AssertionError(f"seed {self.seed}: clients crashed: {msg['error']}")
            if msg.get("event") == event:
                return msg

    def _stderr(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-4000:]

    def close(self) -> None:
        if self.node is not None and self.node.poll() is None:
            self.node.kill()
            self.node.wait(5)
        with contextlib.suppress(Exception):
            self.server.call(self.faults.stop)
        for proxy in self.proxies:
            with contextlib.suppress(Exception):
                self.server.call(proxy.close)
        self.server.close()
        self.stderr.close()


# --------------------------------------------------------------------------- #
# checks


def check(report: dict[str, Any], run: Run) -> list[str]:
    server = report["server"]
    state, version = server["state"], server["version"]
    problems: list[str] = []
    if not report["settled"]:
        stuck = [summary(c) for c in report["clients"] if not settled(c, version)]
        problems.append(f"not quiescent within {SETTLE_MS} ms: {stuck}")
    problems += check_states(report, state, version)
    problems += check_actions(report["clients"], server["runs"])
    if short_history(run.seed):
        return problems  # writes past the history are applied by position, by design
    history = replay(run.start_state, server["frames"])
    problems += [f"{p}\n{explain(p, history, report['clients'])}" for p in check_intent(state)]
    problems += check_history(history, server, state)
    problems += check_writes(report["clients"], history)
    problems += check_workload(report, run)
    return problems


def check_workload(report: dict[str, Any], run: Run) -> list[str]:
    """The run did what it claims: faults that broke connections, writes
    committed past others' commits, actions, server changes."""
    clients = report["clients"]
    reconnects = sum(p.connections for p in run.proxies) - CLIENTS
    commits = report["server"]["frames"]
    acked = sum(1 for f in commits if "ack" in f)
    actions = sum(len(c["actions"]) for c in clients)
    problems = []
    if reconnects < 1 or not run.faults.log:
        problems.append(f"no connection was broken (faults: {run.faults.log})")
    if acked < CLIENTS or actions < CLIENTS or run.mutator.count < 5:
        problems.append(
            f"too little ran: {acked} writes, {actions} actions, {run.mutator.count} changes"
        )
    return problems


def check_states(report: dict[str, Any], state: Any, version: int) -> list[str]:
    problems = []
    for c in report["clients"]:
        if c["state"] != state:
            problems.append(f"client {c['n']} shows {c['state']}\n  server has {state}")
        if c["fetched"] != state:
            problems.append(f"client {c['n']}'s _GET answered {c['fetched']}\n  server has {state}")
        if c["version"] != version:
            problems.append(
                f"client {c['n']} is at version {c['version']}, the server at {version}"
            )
    observer = report["observer"]
    if observer["state"] != state:
        problems.append(f"a fresh client's _SET {observer['state']} is not the server's {state}")
    return problems


def check_intent(state: Any) -> list[str]:
    """Every text names the card it was written to (``<token>@<card id>``):
    an edit never lands on another item than the one it was made on."""
    return [
        f"text {card['text']!r} landed on card {card['id']}"
        for card in state["cards"]
        if card["text"].rpartition("@")[2] != card["id"]
    ]


def explain(problem: str, h: History, clients: list[dict[str, Any]]) -> str:
    """Where a misplaced text came from: the commit that put it on the wrong
    card, the write it acknowledged (as sent, with its base version) and the
    commits that write was carried past."""
    text = problem.split("'")[1]
    for v, state in enumerate(h.states):
        card = next((c for c in state["cards"] if c["text"] == text), None)
        if card is None or card["id"] == text.rpartition("@")[2]:
            continue
        frame = h.frames[v - 1]
        lines = [f"  first misplaced at v{v} by {_compact(frame)}"]
        sent = next(
            (c["writes"][frame["ack"]] for c in clients if frame.get("ack") in c["writes"]), None
        )
        if sent is not None:
            lines.append(f"  that write as sent, on v{sent['v']}: {sent['ops']}")
            ids = [c["id"] for c in h.states[sent["v"]]["cards"]]
            lines.append(f"  cards at v{sent['v']}: {ids}")
            lines += [f"  then {_compact(f)}" for f in h.frames[sent["v"] : v - 1]]
        return "\n".join(lines)
    return "  (not traced)"


def _compact(frame: dict[str, Any]) -> str:
    def short(op: dict[str, Any]) -> str:
        value = op.get("value")
        shown = value.get("id") if isinstance(value, dict) and "id" in value else value
        frm = f" from {op['from']}" if "from" in op else ""
        return f"{op['op']} {op['path']}{frm}" + (f" {shown!r}" if "value" in op else "")

    ack = f" ack {frame['ack']}" if "ack" in frame else ""
    return f"v{frame['v']}{ack}: [{', '.join(short(op) for op in frame['data'])}]"


def settled(c: dict[str, Any], version: int) -> bool:
    return (
        c["connection"] == "open"
        and c["pending"] == 0
        and c["inflight"] is None
        and c["pendingActions"] == 0
        and c["version"] == version
    )


def summary(c: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "connection", "protocol", "version", "pending", "pendingEdits", "inflight")
    return {k: c[k] for k in keys} | {"pendingActions": c["pendingActions"]}


class History:
    """The server's commits: the state after each version, and which commit
    acknowledged which write."""

    def __init__(self) -> None:
        self.states: list[Any] = []  # states[v]: the state at version v
        self.frames: list[dict[str, Any]] = []  # frames[v - 1]: the commit of version v
        self.acks: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.problems: list[str] = []


def replay(start: Any, frames: list[dict[str, Any]]) -> History:
    h = History()
    doc = json.loads(json.dumps(start))
    h.states.append(doc)
    for i, frame in enumerate(frames, start=1):
        if frame.get("v") != i or not frame["type"].startswith("_PATCH:"):
            h.problems.append(f"commit {i} of the history is {frame['type']} v={frame.get('v')}")
            break
        try:
            doc = apply_ops(doc, frame["data"])
        except (KeyError, IndexError, TypeError, ValueError) as e:
            h.problems.append(f"commit {i} does not apply to the state before it: {e!r} {frame}")
            break
        h.states.append(doc)
        h.frames.append(frame)
        if "ack" in frame:
            h.acks[frame["ack"]].append(frame)
    return h


def check_history(h: History, server: dict[str, Any], state: Any) -> list[str]:
    problems = list(h.problems)
    if not problems and len(h.states) - 1 != server["version"]:
        problems.append(
            f"the history has {len(h.states) - 1} commits, the version is {server['version']}"
        )
    if not problems and h.states[-1] != state:
        problems.append(f"the history replays to {h.states[-1]}, the server has {state}")
    return problems


def check_writes(clients: list[dict[str, Any]], h: History) -> list[str]:
    """Each write sent was committed once, or refused with an `_ERROR` naming
    it; a committed write's values are in the state of its commit, unless
    its ack reports them dropped."""
    problems: list[str] = []
    for c in clients:
        refused = {e.get("id") for e in c["errors"] if e.get("id") is not None}
        for e in c["errors"]:
            problems.append(f"client {c['n']} got _ERROR {e}")
        for wid, sent in c["writes"].items():
            commits = h.acks.get(wid, [])
            if wid in refused:
                if commits:
                    problems.append(f"write {wid} was refused and committed: {commits}")
                continue
            if len(commits) != 1:
                problems.append(f"write {wid} {sent['ops']} was committed {len(commits)} times")
                continue
            commit = commits[0]
            heard = c["acks"].get(wid)
            if heard is not None and heard["v"] != commit["v"]:
                problems.append(
                    f"write {wid}: the client heard its ack at v{heard['v']}, it is v{commit['v']}"
                )
            if commit["v"] < len(h.states):
                problems += reflected(wid, sent, commit, h.states[commit["v"]])
    return problems


def reflected(wid: str, sent: dict[str, Any], commit: dict[str, Any], after: Any) -> list[str]:
    """The values of `sent`'s kept ops are in `after`, the state its commit made."""
    dropped = set(commit.get("dropped", []))
    ops = [op for i, op in enumerate(sent["ops"]) if i not in dropped]
    problems = []
    for i, op in enumerate(ops):
        if op["op"] not in ("add", "replace") or any(
            _overwrites(later, op) for later in ops[i + 1 :]
        ):
            continue
        if not _visible(op, after):
            problems.append(
                f"write {wid} (made on v{sent['v']}, committed at v{commit['v']} as "
                f"{commit['data']}, dropped {sorted(dropped)}): {op} is not in the state after it"
            )
    return problems


def _family(path: str) -> str:
    tokens = path.split("/")
    return "/".join(tokens[:3]) if tokens[1] == "tags" else tokens[1]


def _overwrites(later: dict[str, Any], op: dict[str, Any]) -> bool:
    paths = [later["path"], later.get("from", "")]
    return any(p and _family(p) == _family(op["path"]) for p in paths)


def _visible(op: dict[str, Any], state: Any) -> bool:
    tokens = op["path"].split("/")[1:]
    value = op["value"]
    if tokens == ["title"]:
        return state["title"] == value
    if tokens[0] == "tags":
        return state["tags"].get(tokens[1]) == value
    if tokens[0] == "cards" and len(tokens) == 2:
        return any(card["id"] == value["id"] for card in state["cards"])
    if tokens[0] == "cards" and tokens[2] == "text":
        owner = value.rpartition("@")[2]
        return any(card["text"] == value and card["id"] == owner for card in state["cards"])
    return True  # votes: a count, not a token that says which write made it


def check_actions(clients: list[dict[str, Any]], runs: dict[str, int]) -> list[str]:
    problems = [f"action {token} ran {n} times" for token, n in runs.items() if n > 1]
    for c in clients:
        for token, outcome in c["actions"].items():
            if outcome == "pending":
                problems.append(f"action {token}: its promise never settled")
            elif "error" in outcome:
                problems.append(
                    f"action {token} failed: {outcome['error']} (ran {runs.get(token, 0)} times)"
                )
            elif runs.get(token, 0) < 1 or outcome["result"] != runs[token]:
                problems.append(
                    f"action {token} answered {outcome['result']}, ran {runs.get(token, 0)} times"
                )
    return problems


# --------------------------------------------------------------------------- #
# a JSON Patch applier of its own, to replay the history independently


def apply_ops(doc: Any, ops: list[dict[str, Any]]) -> Any:
    doc = json.loads(json.dumps(doc))
    for op in ops:
        kind = op["op"]
        if kind == "test":
            continue
        if kind in ("move", "copy"):
            value = _get(doc, op["from"])
            if kind == "move":
                doc = _remove(doc, op["from"])
            doc = _add(doc, op["path"], json.loads(json.dumps(value)))
        elif kind == "add":
            doc = _add(doc, op["path"], op["value"])
        elif kind == "remove":
            doc = _remove(doc, op["path"])
        elif kind == "replace":
            doc = _remove(doc, op["path"])
            doc = _add(doc, op["path"], op["value"])
        else:
            raise ValueError(f"unknown op {kind}")
    return doc


def _tokens(path: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]]


def _walk(doc: Any, tokens: list[str]) -> Any:
    for t in tokens:
        doc = doc[int(t)] if isinstance(doc, list) else doc[t]
    return doc


def _get(doc: Any, path: str) -> Any:
    return _walk(doc, _tokens(path))


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _tokens(path)
    if not tokens:
        return value
    parent, last = _walk(doc, tokens[:-1]), tokens[-1]
    if isinstance(parent, list):
        i = len(parent) if last == "-" else int(last)
        if not 0 <= i <= len(parent):
            raise IndexError(f"add at {path}: index out of range")
        parent.insert(i, value)
    else:
        parent[last] = value
    return doc


def _remove(doc: Any, path: str) -> Any:
    tokens = _tokens(path)
    parent, last = _walk(doc, tokens[:-1]), tokens[-1]
    if isinstance(parent, list):
        del parent[int(last)]
    else:
        del parent[last]
    return doc
