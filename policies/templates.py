"""Ready-made policies for common needs, kept as data (`resources/templates.json`) and filled in by name."""

from __future__ import annotations

import copy
import re
from typing import Any

from policies.resources_io import resource_json

TEMPLATES: dict[str, dict[str, Any]] = {k: v for k, v in resource_json("templates.json").items()
                                        if not k.startswith("_")}
_PLACEHOLDER = re.compile(r"^\$\{(\w+)\}$")


def template(name: str, **params: Any) -> dict[str, Any]:
    """The template `name` with its `${...}` placeholders filled; raises KeyError naming what is missing."""
    if name not in TEMPLATES:
        raise KeyError(f"no template {name!r}; choose one of {', '.join(sorted(TEMPLATES))}")
    wanted = set(TEMPLATES[name]["parameters"])
    missing = wanted - params.keys()
    if missing:
        raise KeyError(f"template {name!r} needs {', '.join(sorted(missing))}")
    return _fill(copy.deepcopy(TEMPLATES[name]["policy"]), params)


def _fill(value: Any, params: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, params) for v in value]
    if isinstance(value, str):
        match = _PLACEHOLDER.match(value)
        if match:
            return params[match.group(1)]
    return value
