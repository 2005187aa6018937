"""What every data source hands to the public API and to push: metadata and a stream of chunks.

A Source never returns its whole body at once. ``open`` yields a Payload whose ``chunks`` produce at
most CHUNK_SIZE bytes each, so memory stays flat however large the asset is; the context manager
releases the file descriptor or upstream connection even when the consumer disconnects half way.
"""

from __future__ import annotations

import mimetypes
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from connector.dataplane.ranges import ByteRange, ContentRange

CHUNK_SIZE = 64 * 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"


def guess_content_type(filename: str | None) -> str:
    """Guess a media type from a file name, falling back to application/octet-stream."""
    if not filename:
        return DEFAULT_CONTENT_TYPE
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


@dataclass(frozen=True)
class SourceMetadata:
    """What is known about a body: ``size`` is the whole representation, None when unknown."""

    content_type: str
    size: int | None
    filename: str | None
    etag: str | None = None
    last_modified: datetime | None = None
    content_encoding: str | None = None
    accepts_ranges: bool = True

    @property
    def has_validators(self) -> bool:
        return self.etag is not None or self.last_modified is not None


@dataclass(frozen=True)
class Payload:
    """An opened body: its metadata, which part of it is sent, and the chunks to send.

    ``content_range`` is set when only part of the body is sent (answer 206); ``length`` is the number
    of bytes ``chunks`` will produce, None when unknown.
    """

    metadata: SourceMetadata
    chunks: AsyncIterator[bytes]
    length: int | None
    content_range: ContentRange | None = None


class Source(ABC):
    """A readable asset: a file, a directory listing, or an upstream HTTP resource."""

    @abstractmethod
    async def describe(self) -> SourceMetadata:
        """Return metadata without reading the body (an upstream is not contacted)."""

    @abstractmethod
    def open(self, byte_range: ByteRange | None = None) -> AbstractAsyncContextManager[Payload]:
        """Open the body, or the part ``byte_range`` selects; raise RangeNotSatisfiableError if none."""

    async def stream(self, byte_range: ByteRange | None = None) -> AsyncIterator[bytes]:
        """Yield the body (or the selected range) in chunks of at most CHUNK_SIZE bytes."""
        async with self.open(byte_range) as payload:
            async for chunk in payload.chunks:
                yield chunk


class BytesSource(Source):
    """A small body already in memory, such as a directory listing."""

    def __init__(self, body: bytes, metadata: SourceMetadata) -> None:
        self._body = body
        self._metadata = metadata

    async def describe(self) -> SourceMetadata:
        return self._metadata

    @asynccontextmanager
    async def _open(self, byte_range: ByteRange | None) -> AsyncIterator[Payload]:
        span = byte_range.resolve(len(self._body)) if byte_range is not None else None
        first, last = (span.first, span.last) if span else (0, len(self._body) - 1)
        body = self._body[first : last + 1]
        yield Payload(self._metadata, _chunked(body), len(body), span)

    def open(self, byte_range: ByteRange | None = None) -> AbstractAsyncContextManager[Payload]:
        return self._open(byte_range)


async def _chunked(body: bytes) -> AsyncIterator[bytes]:
    view = memoryview(body)
    for start in range(0, len(body), CHUNK_SIZE):
        yield bytes(view[start : start + CHUNK_SIZE])
