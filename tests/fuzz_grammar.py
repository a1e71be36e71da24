"""The fuzzer's grammar: ws-sync frames, honest and hostile, each with what the
server must answer and how it changes the state.

Standard library only, so that the soak benchmark can use it too. Frames
address the two objects of the fuzz app (`fuzz_app.py`):

- ``FUZZ`` is modelled. Honest frames change it and `Model` applies the same
  change; a write is classified by the model itself (valid, refused, or
  uncertain: lax coercion the model does not mimic, never sent). Hostile
  frames sent to it are refused by construction. Its state must end up
  equal to the model's.
- ``SINK`` is not modelled. Random byte mutations of honest frames go there:
  what they do is unknown, only the answers are checked. Its frames hold no
  ``F``, ``U`` or ``Z`` and a mutation edits at most two characters, so no
  mutation can retarget a frame to ``FUZZ``.

A `Unit` is one to three frames sent back to back. It says how many
`_ERROR` frames they earn (a range), which ``$id`` gets which answer, and
the state of ``FUZZ`` after them.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ws_sync.validation import json_equal  # RFC 6902 test: 1 equals 1.0, not true

FUZZ = "FUZZ"
SINK = "SINK"
MAX_DEPTH = 64
MAX_FRAME = 1 << 20
WS_MAX_SIZE = 2 << 20
"""uvicorn's cap in the fuzz app: a frame above it is closed with 1009."""
MAX_PATCH_OPS = 1000
MAX_COPY_NODES = 100_000
WRITABLE = ("title", "count", "ratio", "notes", "items", "data")
READ_ONLY = ("ident", "uploaded", "size")
MAX_STATE_NODES = 3000
MAX_STATE_CHARS = 1 << 20
"""Honest writes that would grow the state beyond these (JSON values, and
characters of its JSON) are not sent: every `_SET` reply carries it."""

Frame = str | bytes
VALID, INVALID, UNCERTAIN = "valid", "invalid", "uncertain"
NO_VALUE: Any = object()


def initial_state(ident: str) -> dict[str, Any]:
    """``FUZZ`` as the app builds it, without the computed ``size``."""
    return {
        "ident": ident,
        "title": "",
        "count": 0,
        "ratio": 0.0,
        "notes": [],
        "items": [],
        "data": {},
        "uploaded": 0,
    }


def wire_state(state: dict[str, Any]) -> dict[str, Any]:
    """What `_SET:FUZZ` carries: the attributes and the computed ``size``."""
    return {**state, "size": len(state["notes"]) + len(state["items"])}


# --------------------------------------------------------------------------- #
# expectations


@dataclass
class Answer:
    """What one ``$id`` must get back."""

    key: str | None
    """Key of its `_ACTION_RESULT`; None when it gets none."""
    ok: bool = False
    error: bool = False
    """Whether an `_ERROR` carries it."""
    value: Any = NO_VALUE
    ref: bool | None = False
    """Whether the failure is the app's (``ref`` set); None: either."""


@dataclass
class Unit:
    kind: str
    frames: list[Frame]
    errors: tuple[int, int | None] = (0, 0)
    answers: list[tuple[Any, Answer]] = field(default_factory=list)
    state: dict[str, Any] | None = None
    """The state of ``FUZZ`` after this unit, when it changes it."""
    mutated: bool = False
    blobs: int = 0
    """Binary frames the server sends back (the ``BLOB`` action)."""


def id_key(value: Any) -> str:
    """One spelling per JSON value (1 and 1.0 differ, as on the wire)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True)


# --------------------------------------------------------------------------- #
# JSON text with literals json.dumps cannot write


_RAW = re.compile(r'"\\u0000raw:([^"\\]*)\\u0000"')


def raw(literal: str) -> str:
    """A placeholder that `encode` writes as the bare `literal` (``NaN``, ``1e309``)."""
    return f"\0raw:{literal}\0"


def encode(obj: Any, rng: random.Random | None = None) -> str:
    """Compact or spaced, ASCII or not, with `raw` literals put in."""
    ascii_only = rng.random() < 0.5 if rng else True
    seps = (",", ":") if rng is None or rng.random() < 0.7 else (", ", ": ")
    text = json.dumps(obj, ensure_ascii=ascii_only, separators=seps)
    if "raw:" not in text:
        return text
    text = json.dumps(obj, ensure_ascii=True, separators=seps)
    return _RAW.sub(lambda m: m.group(1), text)


def envelope(event: str, data: Any, rng: random.Random | None = None) -> str:
    """``{"type": ..., "data": ...}``: type first, as `peek` reads it."""
    return encode({"type": event, "data": data}, rng)


NON_FINITE = {"1e309": math.inf, "-1e309": -math.inf}
"""Literals the parser reads as infinite floats."""


def has_raw(value: Any, literals: tuple[str, ...]) -> bool:
    if isinstance(value, str):
        return any(value == raw(lit) for lit in literals)
    if isinstance(value, list):
        return any(has_raw(v, literals) for v in value)
    if isinstance(value, dict):
        return any(has_raw(v, literals) for v in value.values())
    return False


# --------------------------------------------------------------------------- #
# random values


TEXT_PIECES = [
    "a",
    "note",
    " ",
    "~",
    "/",
    "~0",
    "~1",
    '"',
    "\\",
    "\x00",
    "\x1f",
    "\n",
    "é",
    "中文",
    "😀",
    "\u2028",
    "\u202e",
    "\u200b",
    "-",
    "0",
    "NaN",
    "$id",
    "<script>",
]


def text(rng: random.Random, pieces: list[str] = TEXT_PIECES) -> str:
    """A string that stresses escaping: quotes, backslashes, control and astral
    characters, pointer syntax; never a lone surrogate (not JSON on input)."""
    n = rng.choice([0, 1, 2, 4, 8, 16]) if rng.random() < 0.95 else rng.choice([300, 3000])
    return "".join(rng.choice(pieces) for _ in range(n))


SINK_PIECES = ["a", "b", "x", "~", "/", '"', "\\", "é", "😀", " ", "0", "-", "ST", "q"]


def sink_text(rng: random.Random) -> str:
    return text(rng, SINK_PIECES)


def scalar(rng: random.Random) -> Any:
    return rng.choice(
        [
            None,
            True,
            False,
            0,
            -1,
            7,
            2**53 + 1,
            2**64,
            -(2**70),
            10**300,
            0.1,
            -0.0,
            1e308,
            5e-324,
            2.5,
            text(rng),
        ]
    )


def json_value(rng: random.Random, depth: int = 3) -> Any:
    """Small random JSON: scalars, arrays and objects nested up to `depth`."""
    r = rng.random()
    if depth <= 0 or r < 0.5:
        return scalar(rng)
    if r < 0.75:
        return [json_value(rng, depth - 1) for _ in range(rng.randrange(4))]
    return {text(rng): json_value(rng, depth - 1) for _ in range(rng.randrange(4))}


def nested(depth: int, leaf: Any = 0) -> Any:
    """A value nested `depth` containers deep."""
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def nodes(value: Any) -> int:
    """JSON values in `value`, each scalar, array and object counting one."""
    if isinstance(value, dict):
        return 1 + sum(nodes(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(nodes(v) for v in value)
    return 1


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


def finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return not any(value == raw(lit) for lit in NON_FINITE)
    if isinstance(value, list):
        return all(finite(v) for v in value)
    if isinstance(value, dict):
        return all(finite(v) for v in value.values())
    return True


def parsed(value: Any) -> Any:
    """`value` as the server's parser reads it (`raw` literals it accepts)."""
    if isinstance(value, str):
        for lit, number in NON_FINITE.items():
            if value == raw(lit):
                return number
        return value
    if isinstance(value, list):
        return [parsed(v) for v in value]
    if isinstance(value, dict):
        return {k: parsed(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------- #
# the model: types, JSON Pointer, JSON Patch


class Refused(Exception):
    """The server must refuse this write."""


class Unsure(Exception):
    """The server's lax validation decides; the model does not guess."""


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_int(v: Any, minimum: int | None = None) -> None:
    if is_int(v):
        if minimum is not None and v < minimum:
            raise Refused("below minimum")
        return
    if isinstance(v, bool | str) or (isinstance(v, float) and math.isfinite(v) and v.is_integer()):
        raise Unsure("lax int")
    raise Refused("not an int")


def check_float(v: Any) -> None:
    if is_int(v) and abs(v) >= 2**1023:
        raise Unsure("int beyond a double")
    if is_int(v) or (isinstance(v, float) and math.isfinite(v)):
        return
    if isinstance(v, str) and v.strip().lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
        raise Refused("not finite after coercion")
    if isinstance(v, bool | str):
        raise Unsure("lax float")
    raise Refused("not a finite float")


def check_str(v: Any) -> None:
    if not isinstance(v, str):
        raise Refused("not a string")


def check_item(v: Any) -> None:
    if not isinstance(v, dict):
        raise Refused("not an object")
    if "name" not in v:
        raise Refused("name missing")
    check_str(v["name"])
    if "qty" in v:
        check_int(v["qty"], 0)
    if set(v) != {"name", "qty"}:
        raise Unsure("defaults or extra fields")


def check_list(v: Any, each: Callable[[Any], None]) -> None:
    if not isinstance(v, list):
        raise Refused("not a list")
    unsure = None
    for item in v:
        try:
            each(item)
        except Unsure as e:
            unsure = e
    if unsure is not None:
        raise unsure


def stored(name: str, v: Any) -> Any:
    """`v` as the server stores it: a float attribute makes an int a float."""
    return float(v) if name == "ratio" and is_int(v) else v


def check_attr(name: str, v: Any) -> None:
    """Raises `Refused` or `Unsure` unless the server stores `v` (as `stored` says)."""
    if not finite(parsed(v)):
        raise Refused("not finite")
    if name == "title":
        check_str(v)
    elif name == "count":
        check_int(v)
    elif name == "ratio":
        check_float(v)
    elif name == "notes":
        check_list(v, check_str)
    elif name == "items":
        check_list(v, check_item)
    elif name == "data":
        if not isinstance(v, dict):
            raise Refused("not an object")
    else:
        raise Refused("not writable")


_INDEX = re.compile(r"0|[1-9][0-9]*")


def split(path: Any) -> list[str]:
    """RFC 6901 tokens; refuses what is not a pointer."""
    if not isinstance(path, str):
        raise Refused("pointer not a string")
    if path == "":
        return []
    if not path.startswith("/"):
        raise Refused("pointer without leading /")
    tokens = path[1:].split("/")
    for t in tokens:
        if re.search(r"~(?![01])", t):
            raise Refused("bad escape")
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens]


def pointer(tokens: list[Any]) -> str:
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def index(token: str, n: int, insert: bool = False) -> int:
    if insert and token == "-":
        return n
    if not _INDEX.fullmatch(token):
        raise Refused("not an array index")
    if len(token) > len(str(n)):
        raise Refused("index out of range")
    i = int(token)
    if i > n or (i == n and not insert):
        raise Refused("index out of range")
    return i


class Doc:
    """A JSON document patched op by op, as RFC 6902 says."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.copied = 0

    def get(self, tokens: list[str]) -> Any:
        node: Any = self.root
        for t in tokens:
            node = node[self._key(node, t)]
        return node

    def _key(self, node: Any, t: str) -> Any:
        if isinstance(node, dict):
            if t not in node:
                raise Refused("no member")
            return t
        if isinstance(node, list):
            return index(t, len(node))
        raise Refused("not a container")

    def parent(self, tokens: list[str]) -> Any:
        node = self.get(tokens[:-1])
        if not isinstance(node, dict | list):
            raise Refused("not a container")
        return node

    def add(self, tokens: list[str], value: Any) -> None:
        node = self.parent(tokens)
        if isinstance(node, dict):
            node[tokens[-1]] = value
        else:
            node.insert(index(tokens[-1], len(node), insert=True), value)

    def remove(self, tokens: list[str]) -> Any:
        if len(tokens) == 1:
            raise Refused("an attribute cannot be removed")
        node = self.parent(tokens)
        return node.pop(self._key(node, tokens[-1]))

    def apply(self, op: dict[str, Any]) -> None:
        kind, tokens = op["op"], split(op["path"])
        if kind == "test":
            if not json_equal(self.get(tokens), op["value"]):
                raise Refused("test failed")
        elif kind == "add":
            self.add(tokens, copy.deepcopy(op["value"]))
        elif kind == "replace":
            node = self.parent(tokens)
            node[self._key(node, tokens[-1])] = copy.deepcopy(op["value"])
        elif kind == "remove":
            self.remove(tokens)
        elif kind == "move":
            source = split(op["from"])
            if len(tokens) > len(source) and tokens[: len(source)] == source:
                raise Refused("moved into itself")
            if tokens == source:
                self.get(source)
                return
            self.add(tokens, self.remove(source))
        else:  # copy
            value = self.get(split(op["from"]))
            self.copied += nodes(value)
            if self.copied > MAX_COPY_NODES:
                raise Refused("copy budget")
            self.add(tokens, copy.deepcopy(value))


OPS = ("add", "remove", "replace", "move", "copy", "test")


def check_op(op: Any) -> tuple[list[str], list[str] | None]:
    """The op's path and from tokens, or `Refused` for a malformed op."""
    if not isinstance(op, dict) or op.get("op") not in OPS:
        raise Refused("not an op")
    tokens = split(op.get("path"))
    if op["op"] in ("add", "replace", "test"):
        if "value" not in op:
            raise Refused("no value")
        if not finite(parsed(op["value"])):
            raise Refused("not finite")
    source = None
    if op["op"] in ("move", "copy"):
        source = split(op.get("from")) if isinstance(op.get("from"), str) else []
        if not source:
            raise Refused("no from")
    if not tokens:
        raise Refused("whole state")
    for head in (tokens[0], *(source[:1] if source else [])):
        if head not in WRITABLE:
            raise Refused("not writable")
    return tokens, source


def patched(state: dict[str, Any], ops: Any) -> dict[str, Any]:
    """`state` after a client `_PATCH`; raises `Refused` or `Unsure`."""
    if not isinstance(ops, list) or len(ops) > MAX_PATCH_OPS:
        raise Refused("not a list of at most max_patch_ops")
    heads: set[str] = set()
    for op in ops:
        tokens, source = check_op(op)
        heads.update([tokens[0], *(source[:1] if source else [])])
    doc = Doc({h: copy.deepcopy(state[h]) for h in heads})
    for op in ops:
        doc.apply(parsed(op))
    new = dict(state)
    for h in heads:
        if not json_equal(doc.root[h], state[h]):
            check_attr(h, doc.root[h])
            new[h] = stored(h, doc.root[h])
    return new


def set_result(state: dict[str, Any], data: Any) -> dict[str, Any]:
    """`state` after a client `_SET`: all or nothing."""
    if not isinstance(data, dict):
        raise Refused("not an object")
    new = dict(state)
    unsure = None
    for name, value in data.items():
        if name == "size" or (name in READ_ONLY and _unchanged(state, name, value)):
            continue  # sent back with the whole state: skipped, not refused
        try:
            check_attr(name, value)
        except Unsure as e:
            unsure = e
        new[name] = stored(name, copy.deepcopy(parsed(value)))
    if unsure is not None:
        raise unsure
    return new


def _unchanged(state: dict[str, Any], name: str, value: Any) -> bool:
    try:
        return name in state and json_equal(parsed(value), state[name])
    except Exception:
        return False


def small(state: dict[str, Any]) -> bool:
    """Within the caps on the state's size, and not deep enough to trouble `json`."""
    return (
        nodes(state) <= MAX_STATE_NODES
        and depth_of(state) <= 70
        and len(json.dumps(state)) <= MAX_STATE_CHARS
    )


def outcome(write: Callable[[], dict[str, Any]]) -> tuple[str, dict[str, Any] | None]:
    try:
        new = write()
    except Refused:
        return INVALID, None
    except Unsure:
        return UNCERTAIN, None
    if not small(new):
        return UNCERTAIN, None  # valid, but not worth carrying around
    return VALID, new


# --------------------------------------------------------------------------- #
# mutations (for SINK frames)


def mutate(rng: random.Random, frame: str) -> str:
    """One or two edits: flip, drop, insert or duplicate a character, or cut
    the frame short; never adds ``F``, ``U`` or ``Z``."""
    chars = list(frame)
    for _ in range(rng.choice([1, 1, 2])):
        if not chars:
            break
        i = rng.randrange(len(chars))
        r = rng.random()
        if r < 0.3:
            chars[i] = rng.choice('{}[]",:\\0a -~/')
        elif r < 0.55:
            del chars[i]
        elif r < 0.8:
            chars.insert(i, rng.choice('{}[]",:\\0e.-tn'))
        elif r < 0.9:
            j = min(len(chars), i + rng.randrange(1, 8))
            chars[i:i] = chars[i:j]
        else:
            del chars[i:]
    return "".join(chars)


# --------------------------------------------------------------------------- #
# the grammar of one client


class Grammar:
    """Frames for one client: honest and hostile, with the model of its
    ``FUZZ`` object. `unit()` draws the next unit; the model already counts
    it (frames are handled in order)."""

    def __init__(
        self, rng: random.Random, client: int, ident: str, skip: tuple[str, ...] = ()
    ) -> None:
        """`skip` names kinds of units (methods below) never to draw."""
        self.rng = rng
        self.client = client
        self.state = initial_state(ident)
        self.serial = 0
        self.kinds: list[tuple[float, Callable[[], Unit | None]]] = [
            (10, self.action),
            (8, self.write_patch),
            (5, self.write_set),
            (2, self.get),
            (2, self.upload),
            (1, self.blob),
            (2, self.task),
            (1, self.custom),
            (6, self.bad_action),
            (3, self.bad_envelope),
            (3, self.bad_patch),
            (2, self.bad_set),
            (2, self.bad_binary),
            (2, self.numbers),
            (2, self.bad_task),
            (1, self.overflow_id),
            (1, self.deep),
            (1, self.escapes),
            (0.3, self.big),
            (0.1, self.wide_refusal),
            (4, self.mutated),
        ]
        self.kinds = [(w, make) for w, make in self.kinds if make.__name__ not in skip]

    # -- helpers ------------------------------------------------------------ #

    def unit(self) -> Unit:
        weights = [w for w, _ in self.kinds]
        while True:
            _, make = self.rng.choices(self.kinds, weights)[0]
            made = make()
            if made is not None:
                return made

    def honest_only(self) -> Unit:
        """A unit of honest traffic (for the soak's honest clients)."""
        while True:
            made = self.rng.choice([self.action, self.action, self.write_patch, self.get])()
            if made is not None and made.errors == (0, 0):
                return made

    def new_id(self) -> Any:
        """A fresh ``$id`` of some JSON shape (null ids repeat; answers are
        matched in order)."""
        self.serial += 1
        n, c = self.serial, self.client
        return self.rng.choice(
            [
                n * 100 + c,
                n * 100 + c,
                -(n * 100 + c),
                2**64 + n * 100 + c,
                n * 100 + c + 0.5,
                f"c{c}-{n}",
                f'c{c}"\\/é😀-{n}',
                {"c": c, "n": n},
                [c, n],
                None,
            ]
        )

    def readable_id(self) -> int | str:
        """An id `peek` can read from the tail of an unparseable frame."""
        self.serial += 1
        n = self.serial * 100 + self.client
        return n if self.rng.random() < 0.5 else f"c{self.client}-{self.serial}"

    def env(self, event: str, data: Any) -> str:
        return envelope(event, data, self.rng)

    # -- honest ------------------------------------------------------------- #

    def action(self) -> Unit | None:
        rng, s = self.rng, self.state
        name = rng.choice(["INC", "ADD", "RENAME", "ECHO", "ECHO"])
        if name == "INC":
            by = rng.choice([1, 2, 5, 2**64, 10**30])
            value: Any = s["count"] + by
            new = {**s, "count": value}
            params: dict[str, Any] = rng.choice([{"by": by}, {"$args": [by]}])
        elif name == "ADD":
            note = text(rng)
            new = {**s, "notes": [*s["notes"], note]}
            value, params = len(new["notes"]), {"note": note}
        elif name == "RENAME":
            title = text(rng)
            new, value, params = {**s, "title": title}, None, {"title": title}
        else:
            echoed = json_value(rng)
            new, value, params = s, echoed, {"value": echoed}
        if new is not s and not small(new):
            return None
        data = {"type": rng.choice([name, name.lower()]), **params}
        answers = []
        if rng.random() < 0.8:
            rid = self.new_id()
            data["$id"] = rid
            answers.append((rid, Answer(FUZZ, ok=True, value=value)))
        self.state = new
        return Unit(f"action {name}", [self.env(f"_ACTION:{FUZZ}", data)], (0, 0), answers, new)

    def _write(self, kind: str, event: str, data: Any, change: Callable[[], dict]) -> Unit | None:
        verdict, new = outcome(change)
        if verdict == UNCERTAIN:
            return None
        frame = self.env(f"{event}:{FUZZ}", data)
        if verdict == INVALID:
            return Unit(f"refused {kind}", [frame], (1, 1))
        assert new is not None
        self.state = new
        return Unit(kind, [frame], (0, 0), state=new)

    def write_set(self) -> Unit | None:
        rng = self.rng
        names = rng.sample(WRITABLE, rng.randrange(1, 4))
        data = {n: self.attr_value(n) for n in names}
        return self._write("_SET", "_SET", data, lambda: set_result(self.state, data))

    def attr_value(self, name: str) -> Any:
        rng = self.rng
        if rng.random() < 0.15:
            return json_value(rng, 2)
        if name == "title":
            return text(rng)
        if name == "count":
            return rng.choice([0, -5, 42, 2**64, -(2**70), 10**300])
        if name == "ratio":
            return rng.choice([0.1, -0.0, 1e308, 5e-324, 2.5, 3])
        if name == "notes":
            return [text(rng) for _ in range(rng.randrange(4))]
        if name == "items":
            return [self.item() for _ in range(rng.randrange(3))]
        return {text(rng): json_value(rng, 2) for _ in range(rng.randrange(4))}

    def item(self) -> dict[str, Any]:
        return {"name": text(self.rng), "qty": self.rng.choice([0, 1, 7, 2**40])}

    def write_patch(self) -> Unit | None:
        ops = [self.op() for _ in range(self.rng.choice([1, 1, 1, 2, 3, 5]))]
        if self.rng.random() < 0.02:
            ops = [{"op": "test", "path": "/count", "value": self.state["count"]}] * MAX_PATCH_OPS
        return self._write("_PATCH", "_PATCH", ops, lambda: patched(self.state, ops))

    def existing(self) -> list[Any]:
        """Tokens of some place that exists in the state (or nearly)."""
        rng, s = self.rng, self.state
        head = rng.choice(WRITABLE)
        tokens: list[Any] = [head]
        node = s[head]
        while isinstance(node, dict | list) and node and rng.random() < 0.7:
            key: Any = (
                rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
            )
            tokens.append(key)
            node = node[key]
        return tokens

    def op(self) -> dict[str, Any]:
        rng = self.rng
        kind = rng.choice(OPS)
        tokens = self.existing()
        if kind == "add" and len(tokens) > 1 and rng.random() < 0.5:
            parent = self.state
            for t in tokens[:-1]:
                parent = parent[t]
            if isinstance(parent, list):
                tokens[-1] = rng.choice(["-", len(parent), tokens[-1]])
            elif isinstance(parent, dict):
                tokens[-1] = rng.choice(["", "~", "a/b", "-", "0", text(rng)])
        op: dict[str, Any] = {"op": kind, "path": pointer(tokens)}
        if kind in ("add", "replace", "test"):
            op["value"] = self.value_for(tokens)
        if kind in ("move", "copy"):
            op["from"] = pointer(self.existing())
        return op

    def value_for(self, tokens: list[Any]) -> Any:
        rng = self.rng
        if rng.random() < 0.3:
            return json_value(rng, 2)
        head = tokens[0]
        if head == "notes":
            return text(rng) if len(tokens) > 1 else [text(rng)]
        if head == "items":
            if len(tokens) == 2:
                return self.item()
            if len(tokens) == 3:
                return text(rng) if tokens[2] == "name" else rng.choice([0, 3, -1])
            return [self.item()]
        if head == "data" and len(tokens) > 1 and rng.random() < 0.05:
            return nested(MAX_DEPTH - 3)  # the whole frame just within the depth limit
        if len(tokens) == 1:
            return self.attr_value(head)
        return json_value(rng, 2)

    def get(self) -> Unit:
        data = self.rng.choice([{}, None, json_value(self.rng), list(range(2000))])
        return Unit("_GET", [self.env(f"_GET:{FUZZ}", data)])

    def upload(self) -> Unit:
        rng = self.rng
        payload = rng.choice([b"", b"\xff\xfe\xfd", b"\xc3\x28", b"\xed\xa0\x80", b"abc"])
        payload *= rng.choice([1, 10, 1000])
        rid = self.new_id()
        meta = {"type": "UPLOAD", "name": text(rng), "$id": rid}
        frame = self.env("_BIN_META", {"type": f"_ACTION:{FUZZ}", "metadata": meta})
        self.state = {**self.state, "uploaded": self.state["uploaded"] + len(payload)}
        answer = Answer(FUZZ, ok=True, value=len(payload))
        return Unit("binary upload", [frame, payload], (0, 0), [(rid, answer)], self.state)

    def blob(self) -> Unit:
        n = self.rng.choice([0, 1, 100, 65536])
        rid = self.new_id()
        frame = self.env(f"_ACTION:{FUZZ}", {"type": "BLOB", "n": n, "$id": rid})
        return Unit(
            "binary from the server", [frame], answers=[(rid, Answer(FUZZ, True, value=n))], blobs=1
        )

    def task(self) -> Unit:
        rng = self.rng
        kind = rng.choice(["COUNT", "SLOW"])
        data: dict[str, Any] = {"type": kind}
        if kind == "COUNT":
            data["to"] = rng.randrange(0, 20)
        if rng.random() < 0.3:
            return Unit("task cancel", [self.env(f"_TASK_CANCEL:{FUZZ}", {"type": kind})])
        return Unit(
            "task start", [self.env(f"_TASK_START:{FUZZ}", data)], (0, 1)
        )  # 1: still running

    def custom(self) -> Unit:
        if self.rng.random() < 0.3:
            rid = self.new_id()
            data = {"$id": rid}
            answer = Answer(None, error=True, ref=True)
            return Unit(
                "custom event raising", [self.env("FUZZ_BOOM", data)], (1, 1), [(rid, answer)]
            )
        return Unit("custom event", [self.env("FUZZ_PING", json_value(self.rng))])

    # -- hostile, to FUZZ: refused by construction ---------------------------- #

    def failing(self, kind: str, event: str, data: dict[str, Any], **answer: Any) -> Unit:
        """An action or task frame that earns one `_ERROR` (and, for an
        action, a failed result)."""
        # readable: a fix may refuse an infinite number as not JSON, then peek
        rid = self.readable_id() if has_raw(data, tuple(NON_FINITE)) else self.new_id()
        key = event.partition(":")[2] if event.startswith("_ACTION:") else None
        data = {**data, "$id": rid}
        ans = Answer(key, ok=False, error=True, **answer)
        return Unit(kind, [self.env(event, data)], (1, 1), [(rid, ans)])

    def bad_action(self) -> Unit:
        rng = self.rng
        event = f"_ACTION:{FUZZ}"
        cases: list[tuple[str, dict[str, Any]]] = [
            (
                "unknown action",
                {
                    "type": rng.choice(
                        ["NOPE", "model_post_init", "sync", "__init__", "", text(rng)]
                    )
                },
            ),
            ("type not a string", {"type": rng.choice([5, None, ["INC"], {"a": 1}])}),
            ("invalid params", {"type": "INC", "by": rng.choice([0, -1, "x", 1.5, [], {}, None])}),
            ("invalid params", {"type": "INC", "by": 1, "zz": 2}),
            ("invalid params", {"type": "INC", "$args": [1, 2]}),
            ("invalid params", {"type": "INC", "$args": 5}),
            ("invalid params", {"type": "INC", "$args": [1], "by": 2}),
            ("invalid params", {"type": "ADD", "note": rng.choice([5, None, ["x"]])}),
            ("invalid params", {"type": "INC", "by": raw("1e309")}),
            ("invalid params", {"type": "RENAME"}),
            ("invalid params", {"type": "BLOB", "n": 10**9}),
        ]
        kind, data = rng.choice(cases)
        if rng.random() < 0.15:
            return self.failing("action raising", event, {"type": "FAIL"}, ref=True)
        if rng.random() < 0.1:
            return self.failing("action returning NaN", event, {"type": "RETURN_NAN"}, ref=True)
        if rng.random() < 0.1:  # no $id: the error only
            return Unit(kind, [self.env(event, data)], (1, 1))
        if rng.random() < 0.1:  # data that is not an object: nowhere to read a $id
            bad = rng.choice([None, [], "INC", 5, [{"type": "INC", "$id": 1}]])
            return Unit("action data not an object", [self.env(event, bad)], (1, 1))
        return self.failing(kind, event, data)

    def bad_envelope(self) -> Unit:
        rng = self.rng
        event = rng.choice(
            [
                "HELLO",
                f"_NOPE:{FUZZ}",
                "_SET",
                "_ACTION",
                "_TOAST",
                "_USER_SESSION",
                "_REQUEST_USER_SESSION",
                f"_ACTION_RESULT:{FUZZ}",
                f"_TASK_DONE:{FUZZ}",
                "_GET:NOPE",
                "_GET:fuzz",
                f"_GET:{FUZZ} ",
                f"_ACTION:{FUZZ}:x",
                "_ACTION:NOPE",
                "x" * 10_000,
                text(rng) + "é",
            ]
        )
        r = rng.random()
        if r < 0.25:
            frame = rng.choice(
                [
                    "",
                    " ",
                    "not json",
                    "{",
                    "}}}}",
                    '{"type": "_GET:FUZZ"',
                    "[1, 2]",
                    '"text"',
                    "42",
                    "null",
                    "true",
                    "{}",
                    '{"data": {}}',
                    '{"type": 5}',
                    '{"type": null, "data": {}}',
                    '{"type": ["_GET:FUZZ"]}',
                    "{'type': '_GET:FUZZ'}",
                    '{"type": "_GET:FUZZ",}',
                    "\x00",
                    bytes(rng.randrange(256) for _ in range(40)).decode("latin-1"),
                ]
            )
            return Unit("not a frame", [frame], (1, 1))
        if r < 0.3:  # a byte order mark: refused or read, never silent
            frame = "\ufeff" + self.env(f"_GET:{FUZZ}", {})
            return Unit("byte order mark", [frame], (0, 1))
        rid = self.new_id()
        action = event.startswith("_ACTION:") or event == "_ACTION"
        key = event.partition(":")[2] if action else None
        answer = Answer(key, ok=False, error=True)
        return Unit(
            "unknown event or key",
            [self.env(event, {"type": "X", "$id": rid})],
            (1, 1),
            [(rid, answer)],
        )

    def bad_pointer(self) -> str:
        return self.rng.choice(
            [
                "/ti~2tle",
                "title",
                "/notes/\u0660",  # ARABIC-INDIC DIGIT ZERO
                "/notes/\u0663",
                "/notes/\u00b2",  # SUPERSCRIPT TWO: isdigit(), yet int() refuses it
                "/notes/" + "9" * 5000,
                "/notes/99999999999999999999",
                "/notes/01",
                "/notes/-1",
                "/notes/ 0",
                "/notes/0x1",
                "/nope",
                "/size",
                "/ident",
                "/uploaded",
                "/data/missing/deeper",
                "/title/x",
                "/data" + "/a" * 10_000,
                "/" + "~1" * 50_000,
            ]
        )

    def bad_patch(self) -> Unit | None:
        rng = self.rng
        cases: list[Callable[[], Any]] = [
            lambda: [
                {"op": rng.choice(OPS), "path": self.bad_pointer(), "value": "x", "from": "/x"}
            ],
            lambda: [
                {"op": rng.choice(["move", "copy"]), "from": self.bad_pointer(), "path": "/title"}
            ],
            lambda: [{"op": "replace", "path": "/notes/-", "value": "x"}],
            lambda: [{"op": "remove", "path": rng.choice(["/title", "/notes", "/data", ""])}],
            lambda: [{"op": "add", "path": "", "value": {}}],
            lambda: [{"op": "frobnicate", "path": "/title", "value": "x"}],
            lambda: [{"op": "add", "path": "/title"}],
            lambda: [{"op": "move", "path": "/title"}],
            lambda: [{"op": "copy", "from": 5, "path": "/title"}],
            lambda: [{"op": "add", "path": 5, "value": 1}],
            lambda: [{"path": "/title", "value": "x"}],
            lambda: ["add", "/title", "x"],
            lambda: {"op": "add", "path": "/title", "value": "x"},
            lambda: "not a list",
            lambda: [{"op": "test", "path": "/count", "value": str(self.state["count"])}],
            lambda: [{"op": "test", "path": "/count", "value": True}],
            lambda: [{"op": "move", "from": "/data", "path": "/data/x"}],
            lambda: [{"op": "add", "path": "/ratio", "value": raw("1e309")}],
            lambda: [{"op": "add", "path": "/data/x", "value": [raw("-1e309")]}],
            lambda: [{"op": "add", "path": "/ratio", "value": "NaN"}],
            lambda: [{"op": "add", "path": "/notes/-", "value": "ok"}] * (MAX_PATCH_OPS + 1),
            self.copy_bomb,
            lambda: [*[self.op() for _ in range(3)], {"op": "test", "path": "/title", "value": 0}],
            self.spelled_index,
            self.spelled_index,
        ]
        ops = rng.choice(cases)()
        verdict, _ = outcome(lambda: patched(self.state, ops))
        if verdict != INVALID:
            return None
        return Unit("refused _PATCH", [self.env(f"_PATCH:{FUZZ}", ops)], (1, 1))

    def spelled_index(self) -> list[dict[str, Any]]:
        """An op on an element that exists, its index in other digits than
        ASCII (Python's ``isdigit`` and ``int`` take them, RFC 6901 does not)."""
        rng, s = self.rng, self.state
        head = rng.choice([h for h in ("notes", "items") if s[h]] or ["notes"])
        i = rng.randrange(len(s[head])) if s[head] else 0
        digits = rng.choice([0x0660, 0x06F0, 0x0966, 0xFF10])  # Arabic-Indic, ..., fullwidth
        token = "".join(chr(digits + int(d)) for d in str(i))
        if rng.random() < 0.2:
            token = "\u00b2"  # isdigit(), but int() raises
        path = f"/{head}/{token}"
        value = s[head][i] if s[head] else "x"
        return [
            rng.choice(
                [
                    {"op": "remove", "path": path},
                    {"op": "replace", "path": path, "value": value},
                    {"op": "test", "path": path, "value": value},
                    {"op": "copy", "from": path, "path": f"/{head}/-"},
                ]
            )
        ]

    def copy_bomb(self) -> list[dict[str, Any]]:
        """Each copy doubles the value: past the copy budget in a few steps."""
        ops: list[dict[str, Any]] = [{"op": "add", "path": "/data/bomb", "value": [0] * 50}]
        ops += [{"op": "copy", "from": "/data/bomb", "path": "/data/bomb/-"}] * 40
        return ops

    def bad_set(self) -> Unit | None:
        rng = self.rng
        cases: list[Callable[[], Any]] = [
            lambda: {"title": "ok", "count": "many"},
            lambda: {"nope": 1},
            lambda: {"size": 3},
            lambda: {"ident": "me"},
            lambda: {"uploaded": 9},
            lambda: {"ratio": rng.choice(["NaN", "Infinity", "-inf", raw("1e309"), raw("-1e309")])},
            lambda: {"data": {"x": raw("1e309")}},
            lambda: {"items": [{"name": "a", "qty": -1}]},
            lambda: {"items": [{"qty": 1}]},
            lambda: {"notes": "not a list"},
            lambda: {f"k{i}": i for i in range(5000)},
            lambda: [1, 2],
            lambda: None,
            lambda: "title",
        ]
        data = rng.choice(cases)()
        answers = []
        if isinstance(data, dict) and self.rng.random() < 0.3:
            rid = self.new_id()
            data = {**data, "$id": rid}  # not an attribute; the error carries it
            answers.append((rid, Answer(None, error=True)))
        verdict, _ = outcome(lambda: set_result(self.state, data))
        if verdict != INVALID:
            return None
        return Unit("refused _SET", [self.env(f"_SET:{FUZZ}", data)], (1, 1), answers)

    def bad_binary(self) -> Unit:
        rng = self.rng
        junk = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 64, 4096])))
        get = self.env(f"_GET:{FUZZ}", {})
        r = rng.random()
        if r < 0.25:
            return Unit("binary without _BIN_META", [junk], (1, 1))
        if r < 0.45:
            bad = rng.choice([None, 5, "x", {}, {"type": 5}, {"type": "X", "metadata": [1]}])
            return Unit("bad _BIN_META", [self.env("_BIN_META", bad)], (1, 1))
        rid = self.new_id()
        meta = {"type": "UPLOAD", "name": "x", "$id": rid}
        announce = self.env("_BIN_META", {"type": f"_ACTION:{FUZZ}", "metadata": meta})
        if r < 0.6:  # the action never comes: its $id still gets its answer
            answer = Answer(FUZZ, ok=False, error=True)
            return Unit("_BIN_META then text", [announce, get], (1, 1), [(rid, answer)])
        if r < 0.7:  # the bytes are over the frame limit
            answer = Answer(FUZZ, ok=False, error=True)
            big = b"\xff" * (MAX_FRAME + 1)
            units = [announce, big, get]  # one error, or one more for the dropped announcement
            return Unit("_BIN_META then oversize bytes", units, (1, 2), [(rid, answer)])
        if r < 0.85:
            meta = {"type": "UPLOAD", "name": 5, "$id": rid}
            announce = self.env("_BIN_META", {"type": f"_ACTION:{FUZZ}", "metadata": meta})
            answer = Answer(FUZZ, ok=False, error=True)
            return Unit("binary action, invalid params", [announce, junk], (1, 1), [(rid, answer)])
        # bytes as the value of a write: refused, all or nothing
        announce = self.env("_BIN_META", {"type": f"_SET:{FUZZ}", "metadata": {"title": "bin"}})
        return Unit("binary _SET", [announce, junk], (1, 1))

    def numbers(self) -> Unit:
        rng = self.rng
        rid = self.readable_id()
        lit = rng.choice(["NaN", "Infinity", "-Infinity", "1" + "0" * 5000, "-" + "9" * 4400])
        r = rng.random()
        if r < 0.4:  # not JSON, but type and $id can be read: answered
            data = f'{{"type":"ECHO","value":{lit},"$id":{json.dumps(rid)}}}'
            frame = f'{{"type":"_ACTION:{FUZZ}","data":{data}}}'
            return Unit(
                "non-JSON number in an action", [frame], (1, 1), [(rid, Answer(FUZZ, error=True))]
            )
        if r < 0.55:
            frame = f'{{"type":"_SET:{FUZZ}","data":{{"ratio":{lit}}}}}'
            return Unit("non-JSON number in a _SET", [frame], (1, 1))
        if r < 0.7:  # overflows to infinity: the result cannot carry it
            value = raw(rng.choice(["1e309", "-1e309"]))
            data = {"type": "ECHO", "value": [1, value], "$id": rid}
            answer = Answer(FUZZ, error=True, ref=None)
            return Unit(
                "infinite value echoed",
                [self.env(f"_ACTION:{FUZZ}", data)],
                (1, 1),
                [(rid, answer)],
            )
        if r < 0.85:  # huge but exact: echoed as it is
            value = rng.choice([2**64, -(2**64), 10**4000, 2**53 + 1])
            data = {"type": "ECHO", "value": value, "$id": rid}
            answer = Answer(FUZZ, ok=True, value=value)
            return Unit(
                "huge integer echoed", [self.env(f"_ACTION:{FUZZ}", data)], answers=[(rid, answer)]
            )
        data = {"type": "ECHO", "value": rng.choice(["NaN", "Infinity", "nan"]), "$id": rid}
        answer = Answer(FUZZ, ok=True, value=data["value"])
        return Unit(
            '"NaN" as a string', [self.env(f"_ACTION:{FUZZ}", data)], answers=[(rid, answer)]
        )

    def bad_task(self) -> Unit:
        rng = self.rng
        event = rng.choice([f"_TASK_START:{FUZZ}", f"_TASK_CANCEL:{FUZZ}"])
        data = rng.choice(
            [
                {"type": "MINE"},
                {"type": 3},
                {"type": "COUNT", "to": -1} if "START" in event else {"type": "NOPE"},
                {"type": "COUNT", "to": 10**6} if "START" in event else {"type": ""},
                {"type": "COUNT", "to": "x"} if "START" in event else {"type": "INC"},
            ]
        )
        return self.failing("refused task", event, data)

    def overflow_id(self) -> Unit:
        """``$id`` that the parser reads as infinity: no answer can carry it,
        yet the frame must not go unanswered."""
        rng = self.rng
        lit = rng.choice(["1e309", "-1e309"])
        event, data = rng.choice(
            [
                (f"_ACTION:{FUZZ}", {"type": "NOPE"}),
                (f"_ACTION:{FUZZ}", {"type": "ECHO", "value": 1}),
                ("HELLO", {}),
                (f"_TASK_START:{FUZZ}", {"type": "MINE"}),
            ]
        )
        return Unit(
            "$id overflowing to infinity", [self.env(event, {**data, "$id": raw(lit)})], (1, 1)
        )

    def deep(self) -> Unit:
        rng = self.rng
        r = rng.random()
        if r < 0.3:  # too deep, but readable: answered
            rid = self.readable_id()
            data = {"type": "ECHO", "value": nested(MAX_DEPTH), "$id": rid}
            return Unit(
                "too deep action",
                [self.env(f"_ACTION:{FUZZ}", data)],
                (1, 1),
                [(rid, Answer(FUZZ, error=True))],
            )
        if r < 0.5:  # just within the limit
            value = nested(MAX_DEPTH - 2)
            return Unit("deep _GET data", [self.env(f"_GET:{FUZZ}", value)])
        if r < 0.7:
            n = rng.choice([1000, 100_000, MAX_FRAME])
            return Unit("open brackets", [rng.choice("[{") * n], (1, 1))
        if r < 0.85:
            return Unit("bracket pairs", ["[]" * rng.choice([10, 10_000, MAX_FRAME // 2])], (1, 1))
        frame = ("[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)) * rng.choice([1, 100, 8000])
        return Unit("nesting just under the limit, repeated", [frame], (1, 1))

    def escapes(self) -> Unit:
        rng = self.rng
        n = rng.choice([10, 10_000, MAX_FRAME // 2 - 100])
        r = rng.random()
        if r < 0.4:
            return Unit("run of escaped quotes", ['"' + '\\"' * n], (1, 1))
        if r < 0.7:  # valid: a long string of escaped quotes as _GET data
            return Unit("escaped quotes in a string", [self.env(f"_GET:{FUZZ}", '"' * n)])
        frame = '{"type":"_GET:FUZZ","data":"' + "\\u" * n
        return Unit("unterminated escapes", [frame], (1, 1))

    def big(self) -> Unit:
        rng = self.rng
        r = rng.random()
        if r < 0.5:  # over max_frame_size, under uvicorn's cap, readable
            rid = self.readable_id()
            data = {"type": "ECHO", "value": "x" * (MAX_FRAME + 10), "$id": rid}
            return Unit(
                "oversize action",
                [self.env(f"_ACTION:{FUZZ}", data)],
                (1, 1),
                [(rid, Answer(FUZZ, error=True))],
            )
        if r < 0.8:  # wide and valid
            return Unit("wide _GET data", [self.env(f"_GET:{FUZZ}", list(range(100_000)))])
        frame = self.env(f"_GET:{FUZZ}", {str(i): i for i in range(50_000)})
        return Unit("wide object", [frame])

    def wide_refusal(self) -> Unit:
        """Just under max_frame_size of members or items that are each refused."""
        rng = self.rng
        event, data = rng.choice(
            [
                (f"_SET:{FUZZ}", lambda: {"notes": [1] * 300_000}),
                (f"_SET:{FUZZ}", lambda: {"items": [{"q": 1}] * 100_000}),
                (f"_SET:{FUZZ}", lambda: {f"k{i}": 0 for i in range(85_000)}),
                (f"_ACTION:{FUZZ}", lambda: {"type": "INC", **{f"k{i}": 0 for i in range(85_000)}}),
            ]
        )
        return Unit(f"wide refusal {event}", [envelope(event, data())], (1, 1))

    # -- mutated, to SINK ---------------------------------------------------- #

    def sink_frame(self) -> str:
        rng = self.rng
        event, data = rng.choice(
            [
                (f"_SET:{SINK}", {"name": sink_text(rng), "values": [1, 2]}),
                (f"_PATCH:{SINK}", [{"op": "add", "path": "/values/-", "value": sink_text(rng)}]),
                (f"_PATCH:{SINK}", [{"op": "copy", "from": "/values", "path": "/blob/x"}]),
                (
                    f"_ACTION:{SINK}",
                    {"type": "POKE", "x": sink_text(rng), "$id": f"s{self.serial}"},
                ),
                (f"_TASK_START:{SINK}", {"type": "TICK", "n": 3}),
                (f"_GET:{SINK}", {}),
                ("_BIN_META", {"type": f"_ACTION:{SINK}", "metadata": {"type": "POKE"}}),
            ]
        )
        return json.dumps({"type": event, "data": data}, ensure_ascii=rng.random() < 0.5)

    def mutated(self) -> Unit:
        frame = mutate(self.rng, self.sink_frame())
        # a _GET after it ends whatever the mutation started (a _BIN_META)
        tail = json.dumps({"type": f"_GET:{SINK}", "data": {}})
        return Unit("mutated", [frame, tail], (0, None), mutated=True)


def chunks(grammar: Grammar, size: int) -> Iterator[list[Unit]]:
    """Batches of `size` units, forever."""
    while True:
        yield [grammar.unit() for _ in range(size)]
