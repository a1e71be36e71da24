"""Definition names for frontends: ``User`` and ``CreateUser``.

When a model's validation and serialization schemas differ (defaults are
required in what the server sends, optional in what a client sends), pydantic
names them ``User-Output`` and ``User-Input``. Frontend code reads better with
the state type named plainly and the input type prefixed, as upstream ws-sync
names them; a model whose two schemas agree keeps one plain name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

_SUFFIX = re.compile(r"^(?P<base>.+)-(?P<mode>Input|Output)$")


class CustomGenerateJsonSchema(GenerateJsonSchema):
    """Renames pydantic's ``X-Input`` / ``X-Output`` definitions to
    ``CreateX`` / ``X`` (only public pydantic API: the definitions and refs
    are rewritten after pydantic has generated them)."""

    def generate_definitions(
        self, inputs: Sequence[tuple[Any, Any, Any]]
    ) -> tuple[dict[Any, Any], dict[Any, Any]]:
        schemas, definitions = super().generate_definitions(inputs)
        renames = _renames(definitions)
        if not renames:
            return schemas, definitions
        refs = {
            self.ref_template.format(model=old): self.ref_template.format(model=new)
            for old, new in renames.items()
        }
        renamed: dict[Any, Any] = {
            renames.get(k, k): _rewrite(v, refs) for k, v in definitions.items()
        }
        return {k: _rewrite(v, refs) for k, v in schemas.items()}, renamed


def _renames(definitions: dict[Any, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in definitions:
        match = _SUFFIX.match(name)
        if match is None:
            continue
        base = match["base"]
        new = f"Create{base}" if match["mode"] == "Input" else base
        if new not in definitions:
            out[name] = new
    return out


def _rewrite(value: Any, refs: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: refs.get(v, v) if k == "$ref" and isinstance(v, str) else _rewrite(v, refs)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rewrite(v, refs) for v in value]
    return value


__all__ = ["CustomGenerateJsonSchema"]
