"""The server's JSON Patch appliers against the public RFC 6902 conformance data.

For the client-patch applier, each case's document is put under one synced
attribute (``/doc``) and its paths are prefixed to match, so every case
applies: the result must be the expected document, or the patch must be
rejected with nothing changed. The committed-state applier
(`ws_sync.jsondoc`) takes each case's document as it is.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ws_sync import ClientWriteError, Sync
from ws_sync.jsondoc import PatchError, apply, equal

DATA = Path(__file__).parent / "js" / "data"


def _cases() -> list[Any]:
    cases = []
    for name in ("tests.json", "spec_tests.json"):
        for i, case in enumerate(json.loads((DATA / name).read_text())):
            if not case.get("disabled"):
                cases.append(pytest.param(case, id=f"{name}:{i}"))
    return cases


def _prefixed(patch: list[Any]) -> list[Any]:
    out = []
    for op in copy.deepcopy(patch):
        if isinstance(op, dict):
            for field in ("path", "from"):
                value = op.get(field)
                if isinstance(value, str) and (value == "" or value.startswith("/")):
                    op[field] = "/doc" + value
        out.append(op)
    return out


class Holder:
    def __init__(self, doc: Any) -> None:
        self.doc = doc


CASES = _cases()


def test_every_case_is_checked() -> None:
    assert len(CASES) >= 100


@pytest.mark.parametrize("case", CASES)
def test_conformance(case: dict[str, Any]) -> None:
    holder = Holder(copy.deepcopy(case["doc"]))  # a Sync holds its object weakly
    sync = Sync(holder, "DOC", sync_all=True)
    before = sync.state()
    if "expected" in case:
        sync.handle_client_patch(_prefixed(case["patch"]))
        assert sync.state()["doc"] == case["expected"]
    else:
        with pytest.raises(ClientWriteError):
            sync.handle_client_patch(_prefixed(case["patch"]))
        assert sync.state() == before


@pytest.mark.parametrize("case", CASES)
def test_committed_state_applier(case: dict[str, Any]) -> None:
    doc = copy.deepcopy(case["doc"])
    if "expected" in case:
        assert equal(apply(doc, copy.deepcopy(case["patch"])), case["expected"])
    else:
        with pytest.raises(PatchError):
            apply(doc, copy.deepcopy(case["patch"]))
