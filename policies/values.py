"""Typed values for constraint comparison: XSD literals read once (at compile time for right operands).

Comparisons happen in the XSD value space, not on strings: `"5.00"^^xsd:decimal` equals `5`, dateTimes compare
across time zones, and an `xsd:duration` is compared through a reference instant because its order is partial
(P1M against P30D depends on the month). A value that cannot be read as the kind a left operand needs raises
`ValueError` with a message that says what was expected; the validator and compiler turn it into an issue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from policies.vocab import KNOWN_PREFIXES

XSD = "http://www.w3.org/2001/XMLSchema#"
_DATE_TYPES = frozenset({XSD + "date"})
_DATETIME_TYPES = frozenset({XSD + "dateTime", XSD + "dateTimeStamp"})
_NUMBER_TYPES = frozenset({XSD + t for t in ("integer", "decimal", "double", "float", "int", "long", "short",
                                             "nonNegativeInteger", "positiveInteger", "unsignedInt")})


class Kind(StrEnum):
    """What a left operand's value is, and so how its right operand is read."""

    DATETIME = "dateTime"
    DURATION = "duration"
    NUMBER = "number"
    IRI = "iri"
    STRING = "string"
    BOOLEAN = "boolean"


@dataclass(frozen=True, slots=True)
class Duration:
    """An xsd:duration split the way XSD orders it: whole months, plus an exact number of seconds."""

    months: int
    seconds: float
    text: str

    def add_to(self, instant: datetime) -> datetime:
        """`instant` moved by this duration; months move the calendar month (day clamped to the month's end)."""
        if self.months:
            month_index = instant.month - 1 + self.months
            year, month = instant.year + month_index // 12, month_index % 12 + 1
            day = min(instant.day, _days_in_month(year, month))
            instant = instant.replace(year=year, month=month, day=day)
        return instant + timedelta(seconds=self.seconds)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Elapsed:
    """A left value for `elapsedTime`: the span from `start` to `end`, compared against a Duration."""

    start: datetime
    end: datetime

    def __str__(self) -> str:
        return format_duration(self.end - self.start)


def _days_in_month(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


_DURATION = re.compile(
    r"^(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> Duration:
    match = _DURATION.match(text.strip())
    if not match or text.strip() in ("P", "-P") or text.strip().endswith("T"):
        raise ValueError(f"{text!r} is not an xsd:duration; write it like P30D, PT12H or P1Y2M")
    sign = -1 if match.group(1) else 1
    years, months, weeks, days, hours, minutes = (int(g or 0) for g in match.groups()[1:7])
    seconds = float(match.group(8) or 0)
    total_seconds = ((weeks * 7 + days) * 86400 + hours * 3600 + minutes * 60 + seconds) * sign
    return Duration(months=(years * 12 + months) * sign, seconds=total_seconds, text=text.strip())


def format_duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}P{int(days)}DT{int(hours)}H{int(minutes)}M{secs:g}S"
    return text


def parse_datetime(text: str, *, date_only_ok: bool = True) -> datetime:
    """An aware datetime from xsd:dateTime (naive values are taken as UTC) or xsd:date (its midnight, UTC)."""
    raw = text.strip()
    try:
        if len(raw) == 10 and date_only_ok:
            day = date.fromisoformat(raw)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"{text!r} is not an xsd:dateTime; write it like 2026-01-31T23:59:59Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def has_timezone(text: str) -> bool:
    raw = text.strip()
    return raw.endswith("Z") or bool(re.search(r"[+-]\d\d:\d\d$", raw))


def parse_number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean, not a number")
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(Decimal(str(value).strip()))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{value!r} is not a number; write it like 10 or 0.5") from None


def parse_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ValueError(f"{value!r} is not an xsd:boolean; write true or false")


def literal(value: Any) -> tuple[Any, str | None]:
    """The raw lexical value and datatype IRI of an expanded-JSON-LD value object or a plain JSON scalar."""
    if isinstance(value, dict):
        if "@id" in value:
            return value["@id"], "@id"
        return value.get("@value"), value.get("@type")
    return value, None


def coerce(value: Any, kind: Kind) -> Any:
    """Read one value (plain or JSON-LD value object) as `kind`; raises ValueError saying what was expected."""
    raw, datatype = literal(value)
    if raw is None:
        raise ValueError("the value is empty")
    if kind is Kind.STRING and isinstance(raw, str):
        return raw
    if kind is Kind.DATETIME:
        if isinstance(raw, datetime):
            return raw if raw.tzinfo else raw.replace(tzinfo=UTC)
        if datatype not in (None, *_DATETIME_TYPES, *_DATE_TYPES, XSD + "string"):
            raise ValueError(f"{raw!r} is typed {datatype}, but an xsd:dateTime is needed")
        return parse_datetime(str(raw))
    if kind is Kind.DURATION:
        if isinstance(raw, Duration):
            return raw
        return parse_duration(str(raw))
    if kind is Kind.NUMBER:
        return parse_number(raw)
    if kind is Kind.BOOLEAN:
        return parse_boolean(raw)
    if kind is Kind.IRI:
        prefix, sep, rest = str(raw).partition(":")
        if sep and prefix in KNOWN_PREFIXES and not rest.startswith("//"):
            return KNOWN_PREFIXES[prefix] + rest
    return str(raw)


def to_json(value: Any) -> Any:
    """A JSON-serialisable rendering of a typed value, for compliance reports."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Duration | Elapsed):
        return str(value)
    if isinstance(value, frozenset | set | tuple | list):
        return sorted((to_json(v) for v in value), key=str)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def is_absolute_iri(text: str) -> bool:
    """True for `scheme:rest` (urn:, did:, http:, ...); false for a bare term that no context defined."""
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text))
