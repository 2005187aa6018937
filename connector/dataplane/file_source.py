"""Serve files and directories that lie inside the configured file root, and nothing else.

Every path is resolved (symlinks included) before it is checked, so ``..`` segments, absolute paths
and symlinks that point out of the root are all refused the same way. A directory asset serves only
files inside that directory, never its siblings under the root. The final open uses O_NOFOLLOW, so a
symlink swapped in after the check is not followed; a rename of a parent directory in that window is
not defended against, which needs write access to the root anyway.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio.to_thread

from connector.dataplane.errors import SourceNotFoundError, SourceRefusedError
from connector.dataplane.payload import CHUNK_SIZE, BytesSource, Payload, Source, SourceMetadata
from connector.dataplane.payload import guess_content_type as _guess
from connector.dataplane.ranges import ByteRange

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | os.O_CLOEXEC


def confine(path: Path, root: Path, *, reason: str = "outside_root") -> Path:
    """Resolve ``path`` (relative paths against ``root``) and refuse it unless it lies under ``root``."""
    if "\x00" in str(path):
        raise SourceRefusedError(repr(str(path)), "invalid_path", "the path contains a NUL byte")
    try:
        resolved = (root / path).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise SourceRefusedError(str(path), "invalid_path", "the path cannot be resolved") from exc
    if not resolved.is_relative_to(root):
        raise SourceRefusedError(str(path), reason, f"the path resolves outside {root}")
    return resolved


def path_kind(path: Path) -> str | None:
    """Return "dir", "file" or None (missing, unreadable, too long, or neither a directory nor a file)."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else None


def file_metadata(path: Path, info: os.stat_result) -> SourceMetadata:
    """Metadata from one stat; the ETag changes whenever the inode, size or mtime does."""
    return SourceMetadata(
        content_type=_guess(path.name),
        size=info.st_size,
        filename=path.name,
        etag=f'"{info.st_ino:x}-{info.st_size:x}-{info.st_mtime_ns:x}"',
        last_modified=datetime.fromtimestamp(info.st_mtime, UTC).replace(microsecond=0),
    )


class FileSource(Source):
    """One regular file, already confined to the root by ``confine``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def describe(self) -> SourceMetadata:
        try:
            info = await anyio.to_thread.run_sync(os.stat, self.path)
        except OSError as exc:
            raise SourceNotFoundError(str(self.path)) from exc
        if not stat.S_ISREG(info.st_mode):
            raise SourceNotFoundError(str(self.path))
        return file_metadata(self.path, info)

    def open(self, byte_range: ByteRange | None = None) -> AbstractAsyncContextManager[Payload]:
        return self._open(byte_range)

    @asynccontextmanager
    async def _open(self, byte_range: ByteRange | None) -> AsyncIterator[Payload]:
        try:
            fd = await anyio.to_thread.run_sync(os.open, self.path, _OPEN_FLAGS)
        except OSError as exc:
            raise SourceNotFoundError(str(self.path)) from exc
        try:
            # Describe the file we actually opened, so size and ETag match the bytes we send.
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise SourceNotFoundError(str(self.path))
            metadata = file_metadata(self.path, info)
            span = byte_range.resolve(info.st_size) if byte_range is not None else None
            first, length = (span.first, span.length) if span else (0, info.st_size)
            yield Payload(metadata, _read_chunks(fd, first, length), length, span)
        finally:
            os.close(fd)


async def _read_chunks(fd: int, offset: int, length: int) -> AsyncIterator[bytes]:
    """Read ``length`` bytes from ``offset`` with pread in a worker thread; stop early if the file shrank."""
    remaining = length
    while remaining > 0:
        chunk = await anyio.to_thread.run_sync(os.pread, fd, min(CHUNK_SIZE, remaining), offset)
        if not chunk:
            return
        offset += len(chunk)
        remaining -= len(chunk)
        yield chunk


@dataclass(frozen=True)
class DirectoryEntry:
    """A file inside a directory asset, by its path relative to the directory (always with /)."""

    path: str
    size: int


class DirectorySource(Source):
    """A directory asset: its body is a JSON listing, and ``child`` opens the files inside it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def describe(self) -> SourceMetadata:
        return SourceMetadata(content_type="application/json", size=None, filename=None)

    def open(self, byte_range: ByteRange | None = None) -> AbstractAsyncContextManager[Payload]:
        return self._open(byte_range)

    @asynccontextmanager
    async def _open(self, byte_range: ByteRange | None) -> AsyncIterator[Payload]:
        entries = await self.files()
        listing = {
            "directory": self.path.name,
            "files": [{"path": entry.path, "size": entry.size, "contentType": _guess(entry.path)} for entry in entries],
        }
        body = json.dumps(listing, separators=(",", ":")).encode()
        metadata = SourceMetadata(content_type="application/json", size=len(body), filename=None)
        async with BytesSource(body, metadata).open(byte_range) as payload:
            yield payload

    async def files(self) -> list[DirectoryEntry]:
        """List regular files below the directory, sorted; symlinks that leave it are skipped."""
        return await anyio.to_thread.run_sync(self._walk)

    def child(self, subpath: str) -> Source:
        """Open the file or sub-directory at ``subpath``; refuse anything resolving outside this directory."""
        target = confine(Path(subpath.lstrip("/")), self.path, reason="outside_asset")
        kind = path_kind(target)
        if kind is None:
            raise SourceNotFoundError(subpath)
        return DirectorySource(target) if kind == "dir" else FileSource(target)

    def _walk(self) -> list[DirectoryEntry]:
        entries = []
        # followlinks=False: a symlinked directory could loop or leave the asset; its files are not listed.
        for folder, _dirs, names in os.walk(self.path, followlinks=False):
            for name in names:
                candidate = Path(folder, name)
                resolved = candidate.resolve()
                if not resolved.is_relative_to(self.path):
                    continue
                try:
                    info = resolved.stat()
                except OSError:  # removed while we walked
                    continue
                if stat.S_ISREG(info.st_mode):
                    relative = candidate.relative_to(self.path).as_posix()
                    entries.append(DirectoryEntry(relative, info.st_size))
        return sorted(entries, key=lambda entry: entry.path)
