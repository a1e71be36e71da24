"""Wire names: the spelling of attributes and params on the JavaScript side."""

from __future__ import annotations

from pydantic.alias_generators import to_camel


def camel(name: str) -> str:
    """`new_title` -> `newTitle`; leading underscores and single words are kept."""
    if "_" not in name.strip("_"):
        return name
    return to_camel(name)


def screaming_snake_to_camel(name: str) -> str:
    """`ADD_NOTE` -> `addNote`, the spelling the JS client uses for action callers."""
    head, *rest = name.lower().split("_")
    return head + "".join(part.capitalize() for part in rest)
