"""A seeded random script of mutations; prints every patch it syncs as JSON.
`test_native` runs it once with the C paths and once without, and compares."""

from __future__ import annotations

import json
import random
import sys
from typing import Any

from ws_sync import Sync, native

LEAVES: list[Any] = [0, 1, -5, 2**40, 1.5, "s", "", True, False, None, b"b"]


class State:
    def __init__(self) -> None:
        self.count: Any = 0
        self.items: list[Any] = list(range(8))
        self.data: dict[str, Any] = {"a": 1, "b": [1, 2]}


def leaf(rng: random.Random) -> Any:
    return rng.choice(LEAVES) if rng.random() < 0.8 else rng.choice([[1, 2], {"x": 1}])


def mutate(rng: random.Random, s: State) -> None:
    items, data = s.items, s.data
    n = len(items)
    kind = rng.randrange(12)
    if kind == 0:
        s.count = leaf(rng)
    elif kind in (1, 2, 3):
        items.append(leaf(rng))
    elif kind == 4 and n:
        items[rng.randrange(-n, n)] = leaf(rng)
    elif kind == 5 and n:
        del items[rng.randrange(n)]
    elif kind == 6:
        items.insert(rng.randrange(n + 1), leaf(rng))
    elif kind == 7:
        data[rng.choice("abcdef")] = leaf(rng)
    elif kind == 8 and data:
        del data[rng.choice(sorted(data))]
    elif kind == 9:
        items.extend(leaf(rng) for _ in range(rng.randrange(4)))
    elif kind == 10 and n > 1:
        i, j = sorted(rng.sample(range(n), 2))
        items[i:j] = [leaf(rng) for _ in range(rng.randrange(3))]
    elif kind == 11 and rng.random() < 0.1:
        s.items = [leaf(rng) for _ in range(3)]


def main() -> None:
    rng = random.Random(20261126)
    s = State()
    sync = Sync(s, "S", sync_all=True)
    patches = []
    for _ in range(400):
        for _ in range(rng.randrange(1, 12)):
            mutate(rng, s)
        patches.append(sync.collect())
    json.dump({"native": native.ENABLED, "patches": patches}, sys.stdout, default=repr)


if __name__ == "__main__":
    main()
