"""Parse and resolve single byte ranges (RFC 9110 §14, formerly RFC 7233).

Only one range per request is served. A header this module cannot honour (another unit, several
ranges, bad syntax, last < first) parses to None, and the caller then sends the whole body with 200,
which RFC 9110 §14.2 allows. A well-formed range that selects no byte raises
RangeNotSatisfiableError, which becomes 416.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from connector.dataplane.errors import RangeNotSatisfiableError

# 19 digits keep every position below 2**63, so no header can make us build a giant integer.
_SPEC = re.compile(r"^\s*(\d{0,19})\s*-\s*(\d{0,19})\s*$")
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d{1,19})-(\d{1,19})|\*)/(\d{1,19}|\*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ContentRange:
    """The part of a body being sent: inclusive ``first``..``last`` of ``size`` bytes (None if unknown)."""

    first: int
    last: int
    size: int | None

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def header_value(self) -> str:
        total = "*" if self.size is None else str(self.size)
        return f"bytes {self.first}-{self.last}/{total}"


@dataclass(frozen=True)
class ByteRange:
    """One requested range before the body size is known.

    ``first=None`` is a suffix range (the last ``last`` bytes); ``last=None`` is open-ended.
    """

    first: int | None
    last: int | None

    def resolve(self, size: int) -> ContentRange:
        """Clip the range to a body of ``size`` bytes; raise RangeNotSatisfiableError if nothing is left."""
        if self.first is None:
            suffix = self.last or 0
            if suffix == 0 or size == 0:
                raise RangeNotSatisfiableError(size)
            return ContentRange(max(0, size - suffix), size - 1, size)
        if self.first >= size:
            raise RangeNotSatisfiableError(size)
        last = size - 1 if self.last is None else min(self.last, size - 1)
        return ContentRange(self.first, last, size)

    def header_value(self) -> str:
        """Serialise for a Range header, e.g. when passing the request on to an upstream."""
        first = "" if self.first is None else str(self.first)
        last = "" if self.last is None else str(self.last)
        return f"bytes={first}-{last}"


def parse_range(value: str | None) -> ByteRange | None:
    """Parse a Range header into one ByteRange, or None when it should be ignored."""
    if not value:
        return None
    unit, sep, spec = value.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = _SPEC.match(spec)
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:
        return ByteRange(None, int(last_text))
    first = int(first_text)
    last = int(last_text) if last_text else None
    if last is not None and last < first:
        return None
    return ByteRange(first, last)


def parse_content_range(value: str | None) -> ContentRange | None:
    """Parse an upstream's Content-Range for a satisfied range; None for ``*`` forms or bad syntax."""
    if not value:
        return None
    match = _CONTENT_RANGE.match(value)
    if match is None or match.group(1) is None:
        return None
    first, last = int(match.group(1)), int(match.group(2))
    size = None if match.group(3) == "*" else int(match.group(3))
    if last < first or (size is not None and last >= size):
        return None
    return ContentRange(first, last, size)


def unsatisfied_size(value: str | None) -> int | None:
    """Read the size from a 416 answer's ``Content-Range: bytes */size``; None when absent."""
    match = _CONTENT_RANGE.match(value or "")
    if match is None or match.group(3) == "*":
        return None
    return int(match.group(3))
