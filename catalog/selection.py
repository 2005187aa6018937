"""Which assets a contract definition selects (EDC's criterion semantics: all criteria must hold)."""

from __future__ import annotations

from typing import Any

from catalog.models import EDC_NS, Asset, Criterion

_ID_KEYS = frozenset({"id", "@id", EDC_NS + "id", "edc:id", "https://w3id.org/edc/v0.0.1/ns/id"})


def asset_value(asset: Asset, key: str) -> Any:
    if key in _ID_KEYS:
        return asset.id
    short = key.removeprefix(EDC_NS).removeprefix("edc:")
    for candidate in (key, short, EDC_NS + short):
        if candidate in asset.properties:
            return asset.properties[candidate]
    return None


def _holds(criterion: Criterion, value: Any) -> bool:
    right = criterion.operand_right
    match criterion.operator.lower():
        case "=":
            return value == right
        case "!=":
            return value != right
        case "in":
            return value in (right if isinstance(right, list) else [right])
        case "like":
            pattern = str(right)
            if pattern.startswith("%") and pattern.endswith("%"):
                return pattern.strip("%") in str(value)
            if pattern.endswith("%"):
                return str(value).startswith(pattern.rstrip("%"))
            if pattern.startswith("%"):
                return str(value).endswith(pattern.lstrip("%"))
            return str(value) == pattern
        case _:
            return False


def matches(selector: tuple[Criterion, ...], asset: Asset) -> bool:
    """An empty selector selects every asset; an unknown operator selects none (fail closed)."""
    return all(_holds(c, asset_value(asset, c.operand_left)) for c in selector)


def selected_ids(selector: tuple[Criterion, ...]) -> frozenset[str] | None:
    """The asset ids a selector names outright, or None when it selects by other properties."""
    ids: set[str] | None = None
    for c in selector:
        if c.operand_left not in _ID_KEYS or c.operator.lower() not in ("=", "in"):
            return None
        values = set(c.operand_right if isinstance(c.operand_right, list) else [c.operand_right])
        ids = values if ids is None else ids & values
    return frozenset(ids) if ids is not None else None


SUPPORTED_OPERATORS = ("=", "!=", "in", "like")
