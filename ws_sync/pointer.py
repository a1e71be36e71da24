"""JSON Pointer (RFC 6901) tokens: the path syntax of every patch op."""

from __future__ import annotations

import re

# `~` starts an escape and only `~0` and `~1` exist: anything else is refused
# rather than read as a literal key the client did not mean.
_BAD_ESCAPE = re.compile(r"~(?![01])")


def escape(token: object) -> str:
    """One path segment; `~` and `/` must not be read as syntax by the client."""
    text = token if isinstance(token, str) else str(token)
    if "~" in text:
        text = text.replace("~", "~0")
    if "/" in text:
        text = text.replace("/", "~1")
    return text


def unescape(token: str) -> str:
    """The key a token names; raises ValueError on an escape RFC 6901 lacks."""
    if "~" not in token:
        return token
    if _BAD_ESCAPE.search(token):
        raise ValueError(f"invalid escape in JSON pointer token {token!r}: use ~0 or ~1")
    return token.replace("~1", "/").replace("~0", "~")


def split(path: str) -> list[str]:
    """Tokens of a pointer; raises ValueError on a pointer that is not absolute
    or has an invalid escape."""
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"JSON pointer must start with '/': {path!r}")
    return [unescape(t) for t in path[1:].split("/")]


def join(prefix: str, token: object) -> str:
    return f"{prefix}/{escape(token)}"


def compose(tokens: list[str]) -> str:
    """The pointer of these tokens."""
    return "".join(f"/{escape(t)}" for t in tokens)


def is_index(token: str) -> bool:
    """Whether a token can be an array index: ASCII digits only (RFC 6901;
    ``str.isdigit`` also takes other scripts' digits, such as "٣")."""
    return token.isascii() and token.isdigit()
