"""The states under test: ours (plain class, pydantic model) and the full-diff
reference algorithm (deepcopy snapshot + `jsonpatch.make_patch`)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import jsonpatch
from pydantic import BaseModel

from ws_sync import sync_all

from .common import FakeSubscriber

# --------------------------------------------------------------------------- #
# items


def dict_item(i: int) -> dict[str, Any]:
    return {"id": i, "name": f"item {i}", "value": 0, "done": False}


class Item(BaseModel):
    id: int
    name: str
    value: int = 0
    done: bool = False


class MixItem(BaseModel):
    """An item with a nested dict, for the mutation mix."""

    id: int
    name: str
    value: int = 0
    done: bool = False
    attrs: dict[str, int] = {}


class RefMixItem(BaseModel):
    """`MixItem` for the reference: a class of its own, so that it is never
    hooked by our tracking (hooks are per class)."""

    id: int
    name: str
    value: int = 0
    done: bool = False
    attrs: dict[str, int] = {}


def model_item(i: int) -> Item:
    return Item(id=i, name=f"item {i}")


def mix_item(i: int) -> MixItem:
    return MixItem(id=i, name=f"item {i}", attrs={"a": i % 7, "b": i % 11})


# --------------------------------------------------------------------------- #
# ours


class PlainState:
    """A plain class whose `items` is a list of dicts."""

    @sync_all("S")
    def __init__(self, n: int) -> None:
        self.items = [dict_item(i) for i in range(n)]


class ModelState(BaseModel):
    """A pydantic model whose `items` is a list of pydantic models."""

    items: list[Item]

    @sync_all("M")
    def model_post_init(self, context: Any, /) -> None:
        pass


class MixState(BaseModel):
    items: list[MixItem]

    @sync_all("MIX")
    def model_post_init(self, context: Any, /) -> None:
        pass


def ours_plain(n: int) -> tuple[PlainState, FakeSubscriber]:
    state = PlainState(n)
    sub = FakeSubscriber()
    state.sync.attach(sub)  # type: ignore[attr-defined]
    state.sync.flush()  # type: ignore[attr-defined]
    return state, sub


def ours_model(n: int) -> tuple[ModelState, FakeSubscriber]:
    state = ModelState(items=[model_item(i) for i in range(n)])
    sub = FakeSubscriber()
    state.sync.attach(sub)  # type: ignore[attr-defined]
    state.sync.flush()  # type: ignore[attr-defined]
    return state, sub


def ours_mix(n: int) -> tuple[MixState, FakeSubscriber]:
    state = MixState(items=[mix_item(i) for i in range(n)])
    sub = FakeSubscriber()
    state.sync.attach(sub)  # type: ignore[attr-defined]
    state.sync.flush()  # type: ignore[attr-defined]
    return state, sub


# --------------------------------------------------------------------------- #
# the full-diff reference


def starlette_dumps(data: Any) -> str:
    """What `starlette.websockets.WebSocket.send_json` sends (upstream's path)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


class FullDiffSync:
    """The algorithm ws-sync 0.6.x uses, written out: keep a deep copy of the
    state the client has, and at each sync take a new deep copy and diff the
    two with `jsonpatch.make_patch`."""

    def __init__(
        self,
        key: str,
        get_state: Callable[[], dict[str, Any]],
        snapshot: Callable[[dict[str, Any]], dict[str, Any]] = copy.deepcopy,
    ) -> None:
        self.key = key
        self.get_state = get_state
        self.snapshot_fn = snapshot
        self.snapshot = snapshot(get_state())
        self.last_frame = ""
        self.last_ops: list[dict[str, Any]] = []

    def sync(self) -> str:
        new = self.snapshot_fn(self.get_state())
        ops = jsonpatch.make_patch(self.snapshot, new).patch
        self.snapshot = new
        self.last_ops = ops
        if ops:
            self.last_frame = starlette_dumps({"type": f"_PATCH:{self.key}", "data": ops})
        return self.last_frame

    def resnapshot(self) -> None:
        """Forget pending changes (used to undo a mutation outside the timing)."""
        self.snapshot = self.snapshot_fn(self.get_state())


class PlainRef:
    """The reference subject of section 1: the same data as `PlainState`,
    in plain Python objects, synced by `FullDiffSync`."""

    def __init__(self, n: int) -> None:
        self.items = [dict_item(i) for i in range(n)]
        self.sync = FullDiffSync("S", lambda: {"items": self.items})


def model_snapshot(state: dict[str, Any]) -> dict[str, Any]:
    """Deep copy of a model state into plain data: `model_dump()` of each value."""
    return {
        k: v.model_dump() if isinstance(v, BaseModel) else copy.deepcopy(v)
        for k, v in state.items()
    }


class MixRef:
    """The mutation-mix state in plain pydantic models (untracked), synced by
    `FullDiffSync` over `model_dump()` snapshots."""

    def __init__(self, n: int) -> None:
        self.items = [
            RefMixItem(id=i, name=f"item {i}", attrs={"a": i % 7, "b": i % 11}) for i in range(n)
        ]
        self.sync = FullDiffSync("MIX", self._state, self._snapshot)

    def _state(self) -> dict[str, Any]:
        return {"items": self.items}

    @staticmethod
    def _snapshot(state: dict[str, Any]) -> dict[str, Any]:
        return {"items": [m.model_dump() for m in state["items"]]}
