"""The fuzzer's clients and the server process they hammer.

A `FuzzClient` sends units of the grammar in batches, each closed by a
barrier (an unknown event: its `_ERROR` comes after every answer to the
batch, since frames are handled in order), and checks what came back against
what the units expect. `probe_*` coroutines each provoke one documented close.
Findings are collected, not raised, so one run reports all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import math
import os
import random
import socket
import struct
import subprocess
import sys
import termios
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzz_grammar import FUZZ, NO_VALUE, WS_MAX_SIZE, Answer, Grammar, Unit, id_key, wire_state
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
APP = Path(os.environ.get("FUZZ_APP", TESTS / "fuzz_app.py"))
CLOSED = object()
BARRIER_TIMEOUT = 30.0


# --------------------------------------------------------------------------- #
# the server process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerProcess:
    """`fuzz_app.py` in a subprocess on 127.0.0.1; it exits by itself after
    `lifetime` seconds at the latest."""

    def __init__(self, lifetime: float, *options: str) -> None:
        self.port = free_port()
        self.lifetime = lifetime
        self.options = list(options)
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, path: str = "/ws", scheme: str = "ws") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}
        cmd = [sys.executable, str(APP), "--port", str(self.port), "--lifetime"]
        self.proc = subprocess.Popen([*cmd, str(self.lifetime), *self.options], env=env, cwd=ROOT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fuzz server exited with {self.proc.returncode}")
            with contextlib.suppress(OSError):
                self.stats(objects=False)
                return
            time.sleep(0.1)
        raise RuntimeError("fuzz server did not start")

    def stats(
        self, objects: bool = True, reset: bool = False, size: bool = False
    ) -> dict[str, Any]:
        """The app's /stats; `reset` starts a new window for the worst lag,
        `size` adds the JSON size of every ``FUZZ`` state."""
        query = f"?objects={int(objects)}&reset={int(reset)}&size={int(size)}"
        url = self.url("/stats" + query, "http")
        with urllib.request.urlopen(url, timeout=30) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def dial(url: str, address: str, **options: Any) -> Any:
    """A `websockets` connection that takes whatever the server sends, from
    its own client address (uvicorn believes X-Forwarded-For from 127.0.0.1)."""
    settings: dict[str, Any] = {
        "max_size": None,
        "max_queue": None,
        "compression": None,
        "proxy": None,
        "ping_interval": None,
        "open_timeout": 20,
        "close_timeout": 5,
        "additional_headers": {"X-Forwarded-For": address},
    }
    return connect(url, **{**settings, **options})


# --------------------------------------------------------------------------- #
# findings


@dataclass
class Findings:
    """Violations by invariant, with a few examples each."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, invariant: str, example: str) -> None:
        self.counts[invariant] += 1
        kept = self.examples.setdefault(invariant, [])
        if len(kept) < 5:
            kept.append(example[:4000])

    def merge(self, other: Findings) -> None:
        self.counts.update(other.counts)
        for k, v in other.examples.items():
            kept = self.examples.setdefault(k, [])
            kept.extend(v[: 5 - len(kept)])

    def of(self, *invariants: str) -> dict[str, list[str]]:
        return {i: self.examples[i] for i in invariants if self.counts[i]}


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} overflows a double")
    return value


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate member names")
    return out


def strict_json(text: str) -> Any:
    """RFC 8259 only: no NaN, no Infinity, no number that overflows, no
    duplicate names (and `json` already refuses control characters in strings)."""
    return json.loads(
        text, parse_constant=_constant, parse_float=_finite, object_pairs_hook=_unique
    )


def describe(units: list[Unit], cut: int = 300) -> str:
    """A batch as a repro: each unit's kind and frames (cut short)."""
    lines = []
    for u in units:
        frames = [f[:cut] if isinstance(f, str) else f"<{len(f)} bytes>" for f in u.frames]
        lines.append(f"{u.kind}: {frames}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# one fuzzing client


class Reader:
    """Reads every frame of a connection: checks it is strict JSON (binary
    only right after a `_BIN_META`), and queues it."""

    def __init__(self, ws: ClientConnection, findings: Findings) -> None:
        self.ws = ws
        self.findings = findings
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.close_code: int | None = None
        self.pending_meta: Any = None
        self.frames = 0
        self.bytes = 0
        self.task = asyncio.create_task(self.run())

    async def run(self) -> None:
        try:
            while True:
                self.take(await self.ws.recv())
        except ConnectionClosed as e:
            self.close_code = e.rcvd.code if e.rcvd is not None else None
        finally:
            self.inbox.put_nowait(CLOSED)

    def take(self, message: str | bytes) -> None:
        self.frames += 1
        self.bytes += len(message)
        if isinstance(message, bytes):
            meta, self.pending_meta = self.pending_meta, None
            if meta is None:
                self.findings.add("json", "a binary frame without a _BIN_META before it")
            self.inbox.put_nowait(message)
            return
        try:
            frame = strict_json(message)
        except ValueError as e:
            self.findings.add("json", f"{e}: {message[:300]}")
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            self.findings.add("json", f"not an envelope: {message[:300]}")
            return
        if self.pending_meta is not None:
            self.findings.add("json", f"_BIN_META followed by a text frame: {message[:300]}")
            self.pending_meta = None
        if frame["type"] == "_BIN_META":
            self.pending_meta = frame.get("data")
        self.inbox.put_nowait(frame)

    async def until(self, barrier: str, timeout: float = BARRIER_TIMEOUT) -> list[Any] | None:
        """Frames up to the `_ERROR` about event `barrier`; None if the
        connection closed first."""
        out: list[Any] = []
        async with asyncio.timeout(timeout):
            while True:
                item = await self.inbox.get()
                if item is CLOSED:
                    self.inbox.put_nowait(CLOSED)
                    return None
                if isinstance(item, dict) and item["type"] == "_ERROR":
                    data = item.get("data")
                    if isinstance(data, dict) and data.get("event") == barrier:
                        return out
                out.append(item)


@dataclass
class ClientReport:
    index: int
    ident: str = ""
    units: Counter[str] = field(default_factory=Counter)
    frames_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0
    batches: int = 0
    slowest_batch: float = 0.0
    close_code: int | None = None
    ended_open: bool = False
    final_state: Any = None
    model_state: Any = None


class FuzzClient:
    """One connection, its grammar and its model; `run` fuzzes until `deadline`."""

    def __init__(
        self, url: str, index: int, seed: int, findings: Findings, skip: tuple[str, ...] = ()
    ) -> None:
        self.url = url
        self.skip = skip
        self.index = index
        self.rng = random.Random(seed * 1000 + index)
        self.findings = findings
        self.report = ClientReport(index)
        self.versions: list[dict[str, Any]] = []
        self.matched = 0
        self.barriers = 0

    async def run(
        self, deadline: float, pause: float = 0.01, per_unit: float = 0.0
    ) -> ClientReport:
        """Batches until `deadline`, `pause` plus `per_unit` per unit apart
        (the soak paces its hostile clients)."""
        address = f"10.0.{self.index // 250}.{self.index % 250 + 1}"
        async with dial(self.url, address) as ws:
            reader = Reader(ws, self.findings)
            try:
                await self._session(ws, reader, deadline, pause, per_unit)
            finally:
                self.report.frames_received = reader.frames
        self.report.close_code = reader.close_code
        return self.report

    async def _session(
        self, ws: ClientConnection, reader: Reader, deadline: float, pause: float, per_unit: float
    ) -> None:
        first = await self._initial(reader)
        if first is None:
            return
        grammar = Grammar(self.rng, self.index, first["ident"], self.skip)
        self.report.ident = first["ident"]
        self.versions.append(grammar.state)
        if first != wire_state(grammar.state):
            self.findings.add("state", f"initial _SET:FUZZ {first}")
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            size = self.rng.choice([1, 1, 2, 5, 10, 20, 40])
            units = [grammar.unit() for _ in range(size)]
            if not await self.batch(ws, reader, units):
                return
            await asyncio.sleep(pause + per_unit * size)
        await self.finish(ws, reader, grammar)

    async def _initial(self, reader: Reader) -> dict[str, Any] | None:
        """The `_SET:FUZZ` sent on connect (and `_SET:SINK`)."""
        seen: dict[str, Any] = {}
        async with asyncio.timeout(20):
            while len(seen) < 2:
                item = await reader.inbox.get()
                if item is CLOSED:
                    self.findings.add(
                        "close", f"closed before the initial state ({reader.close_code})"
                    )
                    return None
                seen[item["type"]] = item["data"]
        return seen.get(f"_SET:{FUZZ}")

    async def send(self, ws: ClientConnection, frames: list[str | bytes]) -> None:
        for frame in frames:
            await ws.send(frame)
            self.report.frames_sent += 1
            self.report.bytes_sent += len(frame)

    async def batch(self, ws: ClientConnection, reader: Reader, units: list[Unit]) -> bool:
        """Send `units` and a barrier; check the answers. False if the
        connection closed (a finding: nothing in the grammar earns a close)."""
        for u in units:
            self.report.units[u.kind] += 1
            if u.state is not None:
                self.versions.append(u.state)
        self.barriers += 1
        barrier = f"_BARRIER:{self.index}:{self.barriers}"
        started = time.monotonic()
        try:
            await self.send(ws, [f for u in units for f in u.frames])
            await ws.send(json.dumps({"type": barrier, "data": None}))
            frames = await reader.until(barrier)
        except ConnectionClosed:
            frames = await reader.until(barrier)
        except TimeoutError:
            self.findings.add("stall", f"no answer in {BARRIER_TIMEOUT} s to:\n{describe(units)}")
            return False
        self.report.slowest_batch = max(self.report.slowest_batch, time.monotonic() - started)
        self.report.batches += 1
        if frames is None:
            code = reader.close_code
            self.findings.add("close", f"closed with {code} after:\n{describe(units)}")
            return False
        self.check(units, frames)
        return True

    # -- what came back ------------------------------------------------------ #

    def check(self, units: list[Unit], frames: list[Any]) -> None:
        mutated = any(u.mutated for u in units)
        errors = [f["data"] for f in frames if isinstance(f, dict) and f["type"] == "_ERROR"]
        lo = sum(u.errors[0] for u in units)
        his = [u.errors[1] for u in units]
        hi = None if None in his else sum(h for h in his if h is not None)
        if len(errors) < lo or (hi is not None and len(errors) > hi):
            brief = [
                (e.get("event", "?")[:40], e.get("message", "?")[:50], e.get("id")) for e in errors
            ]
            self.findings.add(
                "errors",
                f"{len(errors)} _ERROR frames, expected {lo}..{hi}: {brief}\n"
                f"after:\n{describe(units, 150)}",
            )
        self._answers(units, frames, errors, mutated)
        self._states(units, frames)
        blobs = sum(1 for f in frames if isinstance(f, bytes))
        wanted = sum(u.blobs for u in units)
        if blobs < wanted:
            self.findings.add("binary", f"{blobs} binary frames, expected {wanted}")

    def _answers(
        self, units: list[Unit], frames: list[Any], errors: list[Any], mutated: bool
    ) -> None:
        results: dict[str, deque[tuple[Answer, Unit]]] = {}
        notices: dict[str, deque[tuple[Answer, Unit]]] = {}
        for u in units:
            for rid, answer in u.answers:
                if answer.key is not None:
                    results.setdefault(id_key(rid), deque()).append((answer, u))
                if answer.error:
                    notices.setdefault(id_key(rid), deque()).append((answer, u))
        for f in frames:
            if isinstance(f, dict) and f["type"].startswith("_ACTION_RESULT:"):
                self._result(f, results, mutated)
        for e in errors:
            self._notice(e, notices, mutated)
        for k, left in results.items():
            for _, u in left:
                self.findings.add("result", f"no _ACTION_RESULT for $id {k}:\n{describe([u])}")
        for k, left in notices.items():
            for _, u in left:
                self.findings.add("error id", f"no _ERROR carrying $id {k}:\n{describe([u])}")

    def _result(
        self, frame: dict[str, Any], expected: dict[str, deque[tuple[Answer, Unit]]], mutated: bool
    ) -> None:
        key = frame["type"].partition(":")[2]
        data = frame["data"]
        if not isinstance(data, dict) or "id" not in data or not isinstance(data.get("ok"), bool):
            self.findings.add("result", f"malformed _ACTION_RESULT: {json.dumps(frame)[:300]}")
            return
        waiting = expected.get(id_key(data["id"]))
        if not waiting or waiting[0][0].key != key:
            if not mutated or key == FUZZ:
                self.findings.add(
                    "result", f"unexpected or second result: {json.dumps(frame)[:300]}"
                )
            return
        answer, unit = waiting.popleft()
        if data["ok"] != answer.ok:
            self.findings.add(
                "result", f"ok={data['ok']}: {json.dumps(data)[:300]}\n{describe([unit])}"
            )
        elif answer.ok and answer.value is not NO_VALUE and data.get("result") != answer.value:
            self.findings.add(
                "result", f"wrong result {json.dumps(data)[:300]}\n{describe([unit])}"
            )
        elif not answer.ok:
            has_ref = "ref" in (data.get("error") or {})
            if answer.ref is not None and has_ref != answer.ref:
                self.findings.add(
                    "ref", f"result ref={has_ref}: {json.dumps(data)[:300]}\n{describe([unit])}"
                )

    def _notice(
        self, error: Any, expected: dict[str, deque[tuple[Answer, Unit]]], mutated: bool
    ) -> None:
        if not isinstance(error, dict):
            self.findings.add("errors", f"malformed _ERROR data: {error!r:.300}")
            return
        if "id" not in error:
            if "ref" in error:
                self.findings.add(
                    "ref", f"internal error for a frame without $id: {json.dumps(error)[:400]}"
                )
            return
        waiting = expected.get(id_key(error["id"]))
        if not waiting:
            if not mutated:
                self.findings.add("error id", f"unexpected id: {json.dumps(error)[:400]}")
            return
        answer, unit = waiting.popleft()
        if answer.ref is not None and ("ref" in error) != answer.ref:
            self.findings.add(
                "ref", f"ref={'ref' in error}: {json.dumps(error)[:400]}\n{describe([unit])}"
            )

    def _states(self, units: list[Unit], frames: list[Any]) -> None:
        """Each `_SET:FUZZ` is a state the model went through, in order."""
        for f in frames:
            if not (isinstance(f, dict) and f["type"] == f"_SET:{FUZZ}"):
                continue
            for j in range(self.matched, len(self.versions)):
                if wire_state(self.versions[j]) == f["data"]:
                    del self.versions[:j]  # the server is past them
                    self.matched = 0
                    break
            else:
                self.findings.add(
                    "state", self._nearest(f["data"]) + f"\nafter:\n{describe(units)}"
                )

    def _nearest(self, got: Any) -> str:
        """How a `_SET:FUZZ` differs from the closest state the model went through."""
        candidates = [wire_state(v) for v in self.versions[self.matched :]]
        best = min(candidates, key=lambda c: sum(c.get(k) != got.get(k) for k in c))
        diff = {k: (got.get(k), best[k]) for k in best if got.get(k) != best[k]}
        return (
            "_SET:FUZZ is no state the honest frames made; closest differs in (got, model): "
            + json.dumps(diff)[:1500]
        )

    async def finish(self, ws: ClientConnection, reader: Reader, grammar: Grammar) -> None:
        """A last `_GET`; the connection must still be open."""
        get = Unit("final _GET", [json.dumps({"type": f"_GET:{FUZZ}", "data": {}})])
        if not await self.batch(ws, reader, [get]):
            return
        self.report.ended_open = True
        self.report.model_state = grammar.state
        await ws.close()


# --------------------------------------------------------------------------- #
# documented closes


@dataclass
class Probe:
    name: str
    expected: int
    got: int | None = None
    seconds: float = 0.0
    note: str = ""


async def _closed_code(ws: ClientConnection, timeout: float) -> int | None:
    """Read until the server closes; its close code."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except ConnectionClosed as e:
        return e.rcvd.code if e.rcvd is not None else None
    except TimeoutError:
        return None


async def _initial(ws: ClientConnection) -> None:
    for _ in range(2):
        await ws.recv()


async def probe_oversize(url: str) -> Probe:
    """A frame over uvicorn's ws_max_size: uvicorn closes with 1009."""
    probe = Probe("frame over ws_max_size", 1009)
    t0 = time.monotonic()
    async with dial(url + "/ws", "10.1.0.1") as ws:
        await _initial(ws)
        with contextlib.suppress(ConnectionClosed):
            await ws.send("[" + "0," * (WS_MAX_SIZE // 2) + "0]")
        probe.got = await _closed_code(ws, 20)
    probe.seconds = time.monotonic() - t0
    return probe


async def probe_rate_abuse(url: str) -> Probe:
    """Frames as fast as the socket takes them, for longer than the tight
    endpoint's throttle_timeout (1.5 s): closed with 1008."""
    probe = Probe("rate limit kept saturated", 1008)
    t0 = time.monotonic()
    frame = json.dumps({"type": f"_GET:{FUZZ}", "data": {}})
    async with dial(url + "/ws-tight", "10.1.0.2") as ws:
        await _initial(ws)
        code = asyncio.create_task(_closed_code(ws, 30))
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            async with asyncio.timeout(30):
                while not code.done():
                    for _ in range(100):
                        await ws.send(frame)
                    await asyncio.sleep(0)  # a send into a roomy buffer never yields: read too
        probe.got = await code
    probe.seconds = time.monotonic() - t0
    return probe


def unread(ws: ClientConnection) -> int:
    """Bytes waiting in the kernel for this client to read."""
    sock = ws.transport.get_extra_info("socket")
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]


async def _stalled(ws: ClientConnection, limit: float = 20.0) -> None:
    """Until the server has filled the socket and stopped sending (it is then
    blocked on this client, whatever else keeps its loop busy)."""
    last, since = -1, time.monotonic()
    deadline = since + limit
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        now = unread(ws)
        if now != last:
            last, since = now, time.monotonic()
        elif now > 0 and time.monotonic() - since > 0.5:
            return


async def probe_slow_reader(url: str) -> Probe:
    """A client that stops reading while the server sends 30 MB: closed with
    1013 once its queue is over the slow endpoint's bounds."""
    probe = Probe("client reads too slowly", 1013)
    t0 = time.monotonic()
    async with dial(url + "/ws-slow", "10.1.0.3", max_queue=1) as ws:
        await _initial(ws)
        spam = {"type": "_ACTION:SINK", "data": {"type": "SPAM", "n": 3000, "size": 10_000}}
        await ws.send(json.dumps(spam))
        await _stalled(ws)  # not reading meanwhile: the server's queue fills
        probe.got = await _closed_code(ws, 20)
    probe.seconds = time.monotonic() - t0
    return probe


async def probe_invalid_utf8(url: str) -> Probe:
    """A text frame that is not UTF-8: the WebSocket layer closes with 1007."""
    probe = Probe("text frame not UTF-8", 1007, note="closed by uvicorn, not ws-sync")
    t0 = time.monotonic()
    async with dial(url + "/ws", "10.1.0.4") as ws:
        await _initial(ws)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(b'{"type":"_GET:FUZZ","data":"\xff\xfe"}', text=True)
        probe.got = await _closed_code(ws, 20)
    probe.seconds = time.monotonic() - t0
    return probe


PROBES = [probe_oversize, probe_rate_abuse, probe_slow_reader, probe_invalid_utf8]


# --------------------------------------------------------------------------- #
# a campaign


@dataclass
class Campaign:
    seed: int
    seconds: float
    clients: int
    findings: Findings = field(default_factory=Findings)
    reports: list[ClientReport] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    server: dict[str, Any] = field(default_factory=dict)
    wall: float = 0.0

    def units(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for r in self.reports:
            total.update(r.units)
        return total

    def summary(self) -> dict[str, Any]:
        """What the benchmark reports: no objects, no examples beyond a few."""
        return {
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            "seed": self.seed,
            "seconds": self.seconds,
            "wall": self.wall,
            "clients": self.clients,
            "units": sum(self.units().values()),
            "frames_sent": sum(r.frames_sent for r in self.reports),
            "bytes_sent": sum(r.bytes_sent for r in self.reports),
            "frames_received": sum(r.frames_received for r in self.reports),
            "lag": self.server.get("lag", {}),
            "rss": self.server.get("rss"),
            "probes": [vars(p) for p in self.probes],
            "findings": dict(self.findings.counts),
            "examples": self.findings.examples,
        }


async def _probes_during(url: str, seconds: float) -> list[Probe]:
    """The probes, spread over the campaign so they meet a busy server."""
    out = []
    for i, probe in enumerate(PROBES):
        await asyncio.sleep(seconds * 0.15 if i == 0 else seconds * 0.1)
        out.append(await probe(url))
    return out


async def run_campaign(server: ServerProcess, seed: int, seconds: float, clients: int) -> Campaign:
    campaign = Campaign(seed, seconds, clients)
    t0 = time.monotonic()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    fuzzers = [FuzzClient(server.url(), i, seed, campaign.findings) for i in range(clients)]
    probes = asyncio.create_task(_probes_during(server.url(""), seconds))
    campaign.reports = list(await asyncio.gather(*(f.run(deadline) for f in fuzzers)))
    campaign.probes = await probes
    campaign.server = await asyncio.to_thread(server.stats)
    campaign.wall = time.monotonic() - t0
    return campaign


def check_objects(campaign: Campaign) -> Iterator[str]:
    """The server's own objects against the models (after the final `_GET`
    compared the client's view)."""
    objects = campaign.server.get("objects", {})
    for r in campaign.reports:
        if not r.ended_open:
            continue
        held = objects.get(r.ident)
        if held is None:
            yield f"client {r.index}: no object {r.ident} on the server"
            continue
        if held["dump"] != r.model_state:
            got, model = json.dumps(held["dump"])[:500], json.dumps(r.model_state)[:500]
            yield f"client {r.index}: object {got}\nmodel {model}"
        if held["state"] != wire_state(r.model_state):
            yield f"client {r.index}: synced state differs from the model"
