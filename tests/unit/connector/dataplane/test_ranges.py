from __future__ import annotations

import pytest

from connector.dataplane.errors import RangeNotSatisfiableError
from connector.dataplane.ranges import (
    ByteRange,
    ContentRange,
    parse_content_range,
    parse_range,
    unsatisfied_size,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=100-", ByteRange(100, None)),
        ("bytes=-500", ByteRange(None, 500)),
        ("BYTES = 5 - 9", ByteRange(5, 9)),
        ("bytes=7-7", ByteRange(7, 7)),
    ],
)
def test_single_ranges_parse(header, expected):
    assert parse_range(header) == expected


@pytest.mark.parametrize(
    "header",
    [None, "", "bytes=", "bytes=-", "bytes=9-3", "bytes=0-1,5-6", "items=0-5", "bytes=a-b", "0-5", "bytes=1-2-3"],
)
def test_headers_to_ignore_parse_to_none(header):
    assert parse_range(header) is None


@pytest.mark.parametrize(
    ("byte_range", "size", "expected"),
    [
        (ByteRange(0, 99), 1000, ContentRange(0, 99, 1000)),
        (ByteRange(900, 5000), 1000, ContentRange(900, 999, 1000)),
        (ByteRange(10, None), 1000, ContentRange(10, 999, 1000)),
        (ByteRange(None, 100), 1000, ContentRange(900, 999, 1000)),
        (ByteRange(None, 5000), 1000, ContentRange(0, 999, 1000)),
        (ByteRange(999, None), 1000, ContentRange(999, 999, 1000)),
    ],
)
def test_ranges_resolve_against_the_size(byte_range, size, expected):
    assert byte_range.resolve(size) == expected


@pytest.mark.parametrize(
    ("byte_range", "size"),
    [(ByteRange(1000, None), 1000), (ByteRange(5000, 6000), 1000), (ByteRange(None, 0), 1000), (ByteRange(0, 0), 0)],
)
def test_unsatisfiable_ranges_raise_with_the_size(byte_range, size):
    with pytest.raises(RangeNotSatisfiableError) as caught:
        byte_range.resolve(size)
    assert caught.value.size == size


def test_content_range_formats_and_measures():
    span = ContentRange(100, 199, 5000)
    assert span.header_value() == "bytes 100-199/5000"
    assert span.length == 100
    assert ContentRange(0, 9, None).header_value() == "bytes 0-9/*"


@pytest.mark.parametrize("byte_range", [ByteRange(0, 99), ByteRange(100, None), ByteRange(None, 500)])
def test_range_header_round_trips(byte_range):
    assert parse_range(byte_range.header_value()) == byte_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes 0-99/1000", ContentRange(0, 99, 1000)),
        ("bytes 10-19/*", ContentRange(10, 19, None)),
        ("bytes */1000", None),
        ("bytes 5-2/10", None),
        ("bytes 0-10/10", None),
        ("garbage", None),
        (None, None),
    ],
)
def test_upstream_content_range_parses(header, expected):
    assert parse_content_range(header) == expected


def test_unsatisfied_size_reads_the_star_form():
    assert unsatisfied_size("bytes */1234") == 1234
    assert unsatisfied_size("bytes */*") is None
    assert unsatisfied_size(None) is None
