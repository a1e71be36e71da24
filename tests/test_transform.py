"""The transform of concurrent JSON Patch ops, on the table of cases that the
browser client's transform passes too (tests/js/transform.test.js)."""

import json
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from ws_sync.transform import past, transform

CASES = json.loads((Path(__file__).parent / "transform_cases.json").read_text())


def list_oracle(doc: Any) -> Any:
    def is_list(tokens: tuple[str, ...]) -> bool:
        node = doc
        for token in tokens:
            if isinstance(node, list):
                node = node[int(token)] if token.isdigit() and int(token) < len(node) else None
            elif isinstance(node, dict):
                node = node.get(token)
            else:
                return False
        return isinstance(node, list)

    return is_list


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_transform_table(case: dict[str, Any]) -> None:
    ops, dropped = transform(case["ops"], case["committed"], list_oracle(case["doc"]))
    assert ops == case["expected"]
    assert dropped == case["dropped"]
    # the transformed ops apply after the committed ones
    after = jsonpatch.apply_patch(case["doc"], case["committed"])
    jsonpatch.apply_patch(after, ops)


def test_the_table_covers_every_kind_of_committed_op() -> None:
    kinds = {op["op"] for case in CASES for op in case["committed"]}
    assert kinds == {"add", "remove", "replace", "move", "copy"}


def test_past_leaves_unrelated_ops_alone() -> None:
    op = {"op": "replace", "path": "/a/b", "value": 1}
    assert past(op, {"op": "test", "path": "/a/b", "value": 0}, lambda t: False) == op
    assert past(op, {"op": "replace", "path": "/c", "value": 0}, lambda t: False) == op
