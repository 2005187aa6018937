"""EDC's QuerySpec: paging, sorting and filter criteria for every `POST .../request` list endpoint.

    {"offset": 0, "limit": 50, "sortField": "createdAt", "sortOrder": "ASC"|"DESC",
     "filterExpression": [{"operandLeft": "state", "operator": "=", "operandRight": "FINALIZED"}]}

Each resource declares its `Fields`: names that map to SQL expressions (filtered and sorted by the database) and
names resolved in Python from JSON columns (asset properties, `policy.permission.action`, ...). Python criteria run
after the SQL prefilter, over rows streamed in SQL order, so a page stops reading as soon as it is full whenever
the sort is a SQL one. `like` is SQL LIKE with `%` and `_`, case-insensitive on both databases (SQLite's LIKE is,
PostgreSQL's is not, so ILIKE is used there). An unknown field, operator or sort order is a 400 naming it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import eq, ge, gt, le, lt, ne
from typing import Any, Literal

from sqlalchemy import ColumnElement, false, select
from sqlalchemy.orm import Session

from connector.http.management.errors import invalid
from connector.http.management.jsonld_io import EDC_NS

OPERATORS = ("=", "!=", "<", ">", "<=", ">=", "in", "like")
DEFAULT_LIMIT, MAX_LIMIT = 50, 1000
Kind = Literal["text", "bool", "millis", "seconds"]
Getter = Callable[[Any], Any]
_ORDER: dict[str, Callable[[Any, Any], Any]] = {"<": lt, ">": gt, "<=": le, ">=": ge}


@dataclass(frozen=True, slots=True)
class Criterion:
    operand_left: str
    operator: str
    operand_right: Any


@dataclass(frozen=True, slots=True)
class QuerySpec:
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    sort_field: str | None = None
    descending: bool = False
    filters: tuple[Criterion, ...] = ()


def parse_query_spec(body: Mapping[str, Any]) -> QuerySpec:
    """Read a (normalised) QuerySpec body; an empty body is the first page of 50."""
    offset = _integer(body.get("offset", 0), "/offset", minimum=0)
    limit = _integer(body.get("limit", DEFAULT_LIMIT), "/limit", minimum=1)
    if limit > MAX_LIMIT:
        raise invalid("/limit", f"is {limit}, above the maximum of {MAX_LIMIT}; page with offset instead", limit)
    order = str(body.get("sortOrder") or "ASC").upper()
    if order not in ("ASC", "DESC"):
        raise invalid("/sortOrder", f"is {body.get('sortOrder')!r}; use ASC or DESC", body.get("sortOrder"))
    sort_field = body.get("sortField")
    if sort_field is not None and not isinstance(sort_field, str):
        raise invalid("/sortField", "must be a field name", sort_field)
    return QuerySpec(offset=offset, limit=limit, sort_field=sort_field or None, descending=order == "DESC",
                     filters=tuple(_criteria(body.get("filterExpression"))))


def _integer(value: Any, pointer: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise invalid(pointer, f"must be an integer of at least {minimum}", value)
    return value


def _criteria(expression: Any) -> Iterable[Criterion]:
    if expression is None:
        return
    for index, item in enumerate(expression if isinstance(expression, list) else [expression]):
        pointer = f"/filterExpression/{index}"
        if not isinstance(item, Mapping):
            raise invalid(pointer, "must be a Criterion object (operandLeft, operator, operandRight)", item)
        left, operator = item.get("operandLeft"), item.get("operator")
        if not isinstance(left, str) or not left:
            raise invalid(f"{pointer}/operandLeft", "must be a field name", left)
        if not isinstance(operator, str) or operator.lower() not in OPERATORS:
            raise invalid(f"{pointer}/operator", f"is {operator!r}; use one of {' '.join(OPERATORS)}", operator)
        yield Criterion(left, operator.lower(), item.get("operandRight"))


# -- fields ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Column:
    """A field the database filters and sorts."""

    expression: ColumnElement[Any]
    kind: Kind = "text"


@dataclass(frozen=True)
class Fields:
    """The names one resource answers to. `json` maps a prefix ("policy") to the JSON it dotted-paths into;
    `fallback` resolves any other name (asset properties), or such names are unknown."""

    columns: Mapping[str, Column]
    json: Mapping[str, Getter] = field(default_factory=dict)
    fallback: Callable[[Any, str], Any] | None = None

    def resolve(self, name: str, pointer: str) -> Column | Getter:
        plain = name.removeprefix(EDC_NS).removeprefix("edc:")
        plain = "id" if plain == "@id" else plain
        if plain in self.columns:
            return self.columns[plain]
        root, _, path = plain.partition(".")
        if root in self.json:
            getter = self.json[root]
            return lambda row: _dig(getter(row), path.split(".") if path else [])
        if self.fallback is not None:
            fallback = self.fallback
            return lambda row: fallback(row, name)
        known = sorted([*self.columns, *(f"{root}.*" for root in self.json)])
        raise invalid(pointer, f"names {name!r}, which is not a field here; use one of {', '.join(known)}", name)


def _dig(value: Any, path: list[str]) -> Any:
    """Follow a dotted path through objects; lists fan out, so the result may be a list of candidates."""
    for index, part in enumerate(path):
        if isinstance(value, list):
            return [_dig(item, path[index:]) for item in value]
        if not isinstance(value, Mapping):
            return None
        value = value.get(part, value.get(EDC_NS + part))
    return value


# -- running -------------------------------------------------------------------------------------------------------
def run(uow: Session, model: type[Any], spec: QuerySpec, fields: Fields, *, default_sort: Column) -> list[Any]:
    """The rows of `model` matching `spec`, in order, offset and limit applied."""
    statement = select(model)
    checks: list[tuple[Getter, Criterion]] = []
    for index, criterion in enumerate(spec.filters):
        target = fields.resolve(criterion.operand_left, f"/filterExpression/{index}/operandLeft")
        if isinstance(target, Column):
            statement = statement.where(_condition(target, criterion, index))
        else:
            checks.append((target, criterion))
    sort = fields.resolve(spec.sort_field, "/sortField") if spec.sort_field else default_sort
    primary_key = model.__mapper__.primary_key[0]
    if not isinstance(sort, Column):
        rows = [row for row in uow.scalars(statement.order_by(primary_key)) if _passes(row, checks)]
        rows.sort(key=lambda row: _sort_key(sort(row)), reverse=spec.descending)
        return rows[spec.offset:spec.offset + spec.limit]
    ordering = sort.expression.desc() if spec.descending else sort.expression.asc()
    statement = statement.order_by(ordering, primary_key)
    if not checks:
        return list(uow.scalars(statement.offset(spec.offset).limit(spec.limit)))
    page: list[Any] = []
    skipped = 0
    for row in uow.scalars(statement.execution_options(yield_per=256)):
        if not _passes(row, checks):
            continue
        if skipped < spec.offset:
            skipped += 1
            continue
        page.append(row)
        if len(page) == spec.limit:
            break
    return page


def _condition(column: Column, criterion: Criterion, index: int) -> ColumnElement[bool]:
    pointer = f"/filterExpression/{index}/operandRight"
    expression, operator = column.expression, criterion.operator
    if operator == "in":
        values = criterion.operand_right if isinstance(criterion.operand_right, list) else [criterion.operand_right]
        coerced = [_coerce(column, v, pointer) for v in values]
        return expression.in_(coerced) if coerced else false()
    if operator == "like":
        if column.kind != "text":
            raise invalid(f"/filterExpression/{index}/operator", "like applies to text fields only", operator)
        return expression.ilike(str(criterion.operand_right))
    value = _coerce(column, criterion.operand_right, pointer)
    if value is None and operator in ("=", "!="):
        return expression.is_(None) if operator == "=" else expression.is_not(None)
    return _SQL_COMPARISONS[operator](expression, value)


_SQL_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {"=": eq, "!=": ne, **_ORDER}


def _coerce(column: Column, value: Any, pointer: str) -> Any:
    if value is None:
        return None
    if column.kind in ("millis", "seconds"):
        try:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return datetime.fromtimestamp(value / (1000 if column.kind == "millis" else 1), UTC)
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except (ValueError, OverflowError, OSError):
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            unit = "epoch milliseconds" if column.kind == "millis" else "epoch seconds"
            raise invalid(pointer, f"must be a time ({unit}, or ISO 8601 with a zone)", value) from None
        return parsed
    if column.kind == "bool":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise invalid(pointer, "must be true or false", value)
    return value if isinstance(value, str) else _text(value)


def _passes(row: Any, checks: list[tuple[Getter, Criterion]]) -> bool:
    return all(_holds(getter(row), c.operator, c.operand_right) for getter, c in checks)


def _candidates(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [leaf for item in value for leaf in _candidates(item)] or [None]
    return [value]


def _holds(value: Any, operator: str, right: Any) -> bool:
    """Python twin of the SQL conditions; a list value (fan-out, or a list property) matches if any item does."""
    candidates = _candidates(value)
    if operator == "!=":
        return all(not _equal(c, right) for c in candidates)
    return any(_holds_one(c, operator, right) for c in candidates)


def _holds_one(value: Any, operator: str, right: Any) -> bool:
    if operator == "=":
        return _equal(value, right)
    if operator == "in":
        return any(_equal(value, r) for r in (right if isinstance(right, list) else [right]))
    if operator == "like":
        return value is not None and _like(str(right)).fullmatch(_text(value)) is not None
    if value is None or right is None:
        return False
    compare = _ORDER[operator]
    try:
        return bool(compare(value, right))
    except TypeError:
        pass
    try:  # "10" < 9 and the like: compare as numbers when both read as numbers
        return bool(compare(float(value), float(right)))
    except (TypeError, ValueError):
        return False


def _equal(value: Any, right: Any) -> bool:
    return value == right or (value is not None and right is not None and _text(value) == _text(right))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _like(pattern: str) -> re.Pattern[str]:
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _sort_key(value: Any) -> tuple[int, Any]:
    candidates = _candidates(value)
    first = candidates[0] if candidates else None
    if first is None:
        return (3, "")
    if isinstance(first, int | float) and not isinstance(first, bool):
        return (0, first)
    if isinstance(first, str):
        return (1, first)
    return (2, _text(first))
