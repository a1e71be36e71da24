"""The committed-state applier (its RFC 6902 conformance: `test_conformance`)."""

from __future__ import annotations

from typing import Any

import pytest

from ws_sync.jsondoc import apply, equal


def test_changes_the_document_in_place() -> None:
    doc = {"items": [1, 2], "n": 0}
    same = apply(
        doc,
        [
            {"op": "add", "path": "/items/-", "value": 3},
            {"op": "replace", "path": "/n", "value": 1},
        ],
    )
    assert same is doc
    assert doc == {"items": [1, 2, 3], "n": 1}


def test_the_whole_document_can_be_replaced() -> None:
    assert apply({"a": 1}, [{"op": "replace", "path": "", "value": [1]}]) == [1]


def test_a_copy_is_not_the_original() -> None:
    doc: dict[str, Any] = {"a": {"b": [1]}}
    apply(doc, [{"op": "copy", "from": "/a", "path": "/c"}])
    doc["c"]["b"].append(2)
    assert doc["a"] == {"b": [1]}


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (True, 1, False),
        (1, 1.0, True),
        ([0], [False], False),
        ({"a": None}, {"a": None}, True),
        ({"a": 1}, {"b": 1}, False),
        ("1", 1, False),
    ],
)
def test_equal_is_json_equality(a: Any, b: Any, same: bool) -> None:
    assert equal(a, b) is same
