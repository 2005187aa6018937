"""Algorithm bundles: a directory with `sovra-algorithm.json`, travelling as one deterministic .tar.gz.

INTERFACE (lead's skeleton, filled in by the c2d-core helper). The artifact that is signed, pulled and verified
is always the .tar.gz file; its digest is `sha256:<hex>` of those bytes. `pack` is deterministic (sorted entries,
mtime 0, uid/gid 0, mode normalised, gzip mtime 0), so packing the same directory twice gives the same digest.
`unpack` refuses absolute paths, `..`, links and device files, and caps total size and entry count.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from compute_to_data.manifest import Manifest

CHUNK = 1 << 20


class BundleError(ValueError):
    """A bundle that cannot be used (missing manifest, unsafe entry, too large); the message says which."""


def pack(directory: Path, out: Path) -> str:
    """Pack `directory` into a deterministic .tar.gz at `out`; return its digest `sha256:<hex>`."""
    raise NotImplementedError


def digest_stream(stream: BinaryIO) -> str:
    """`sha256:<hex>` of a stream, read in CHUNK blocks (the verification hot path)."""
    raise NotImplementedError


def digest_file(path: Path) -> str:
    raise NotImplementedError


def unpack(archive: Path, dest: Path, *, max_bytes: int = 2 << 30, max_entries: int = 10_000) -> Manifest:
    """Safely extract `archive` into `dest` (which must be empty) and return its parsed manifest."""
    raise NotImplementedError


def read_manifest(archive: Path) -> Manifest:
    """The manifest of a packed bundle, without extracting anything else."""
    raise NotImplementedError
