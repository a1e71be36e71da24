import pytest

from ws_sync import pointer


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [("a", "a"), ("a/b", "a~1b"), ("m~n", "m~0n"), ("~/", "~0~1"), ("", ""), (3, "3")],
)
def test_escape_round_trip(raw: object, escaped: str) -> None:
    assert pointer.escape(raw) == escaped
    assert pointer.unescape(escaped) == str(raw)


def test_split_and_join() -> None:
    assert pointer.split("") == []
    assert pointer.split("/a~1b/0/~0") == ["a/b", "0", "~"]
    assert pointer.join("/x", "a/b") == "/x/a~1b"
    with pytest.raises(ValueError, match="must start"):
        pointer.split("a/b")


@pytest.mark.parametrize("path", ["/a~2b", "/a~", "/~/x", "/x/~a"])
def test_escapes_rfc_6901_lacks_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="invalid escape"):
        pointer.split(path)
    with pytest.raises(ValueError, match="invalid escape"):
        pointer.unescape(path[1:])


def test_only_ascii_digits_are_an_index() -> None:
    from ws_sync.pointer import is_index

    assert is_index("12") and not is_index("\u0663") and not is_index("-") and not is_index("")
