import pytest

from ws_sync.naming import camel, screaming_snake_to_camel


@pytest.mark.parametrize(
    ("name", "expected"),
    [("new_title", "newTitle"), ("title", "title"), ("total_length_x", "totalLengthX")],
)
def test_camel(name: str, expected: str) -> None:
    assert camel(name) == expected


def test_action_names() -> None:
    assert screaming_snake_to_camel("ADD_NOTE") == "addNote"
    assert screaming_snake_to_camel("RENAME") == "rename"
