"""Algorithm bundles: a directory with `sovra-algorithm.json`, travelling as one deterministic .tar.gz.

INTERFACE (lead's skeleton, filled in by the c2d-core helper). The artifact that is signed, pulled and verified
is always the .tar.gz file; its digest is `sha256:<hex>` of those bytes. `pack` is deterministic (sorted entries,
mtime 0, uid/gid 0, mode normalised, gzip mtime 0), so packing the same directory twice gives the same digest.
`unpack` refuses absolute paths, `..`, links and device files, and caps total size and entry count.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from compute_to_data.manifest import MANIFEST_FILE, Manifest, ManifestError, parse_manifest

CHUNK = 1 << 20


class BundleError(ValueError):
    """A bundle that cannot be used (missing manifest, unsafe entry, too large); the message says which."""


MAX_MANIFEST_BYTES = 1 << 20
_SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".hg", ".svn"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


def pack(directory: Path, out: Path) -> str:
    """Pack `directory` into a deterministic .tar.gz at `out`; return its digest `sha256:<hex>`.

    Entries are sorted by path; mtime 0, uid/gid 0, no user names, modes 0755 (directories and executables) or
    0644; the gzip header carries no name and mtime 0. Caches (`__pycache__`, *.pyc) and VCS folders are left
    out, so running an algorithm locally does not change its digest. Symlinks and special files are refused.
    """
    directory = Path(directory)
    manifest = directory_manifest(directory)
    out = Path(out)
    entries = _walk(directory, skip=out.resolve())
    _check_references(manifest, {name for name, path in entries if path.is_file()})
    out.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", suffix=".part", delete=False)
    try:
        with handle, gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0, compresslevel=9) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, path in entries:
                _add(tar, name, path)
        os.replace(handle.name, out)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return digest_file(out)


def directory_manifest(directory: Path) -> Manifest:
    """The parsed manifest of an unpacked bundle folder (BundleError when there is none, ManifestError when bad)."""
    if not directory.is_dir():
        raise BundleError(f"{directory} is not a directory; give the folder that holds {MANIFEST_FILE}")
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file() or manifest_path.is_symlink():
        raise BundleError(f"{directory} has no {MANIFEST_FILE}; write the manifest at the top of the folder")
    return _parse_manifest_bytes(manifest_path.read_bytes())


def _walk(directory: Path, *, skip: Path) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        base = Path(root)
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        for name in dirs:
            path = base / name
            if path.is_symlink():
                raise BundleError(f"{path} is a symlink; bundles hold only regular files and folders (copy the "
                                  "target in instead)")
            found.append((path.relative_to(directory).as_posix(), path))
        for name in sorted(files):
            path = base / name
            if name.endswith(_SKIPPED_SUFFIXES) or path.resolve() == skip:
                continue
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise BundleError(f"{path} is a symlink; bundles hold only regular files and folders (copy the "
                                  "target in instead)")
            if not stat.S_ISREG(mode):
                raise BundleError(f"{path} is not a regular file (device, socket or pipe); remove it")
            found.append((path.relative_to(directory).as_posix(), path))
    return sorted(found)


def _add(tar: tarfile.TarFile, name: str, path: Path) -> None:
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    if path.is_dir():
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        return
    info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
    with path.open("rb") as source:
        info.size = os.fstat(source.fileno()).st_size
        tar.addfile(info, source)


def digest_stream(stream: BinaryIO) -> str:
    """`sha256:<hex>` of a stream, read in CHUNK blocks (the verification hot path)."""
    hasher = hashlib.sha256()
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        while block := stream.read(CHUNK):
            hasher.update(block)
        return "sha256:" + hasher.hexdigest()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    while count := readinto(buffer):
        hasher.update(view[:count])
    return "sha256:" + hasher.hexdigest()


def digest_file(path: Path) -> str:
    with Path(path).open("rb", buffering=0) as stream:
        return digest_stream(stream)


def unpack(archive: Path, dest: Path, *, max_bytes: int = 2 << 30, max_entries: int = 10_000) -> Manifest:
    """Safely extract `archive` into `dest` (which must be empty) and return its parsed manifest.

    Nothing is extracted by tarfile itself: every entry is checked (name, type, count, size, duplicates) and
    regular files are written by this function with normal modes, so no entry can land outside `dest`, become a
    link, a device or a setuid file. On any problem `dest` is emptied again and BundleError says which entry.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise BundleError(f"{dest} is not empty; unpack into a fresh folder")
    try:
        _extract(Path(archive), dest, max_bytes=max_bytes, max_entries=max_entries)
        manifest_path = dest / MANIFEST_FILE
        if not manifest_path.is_file():
            raise BundleError(f"{archive} has no {MANIFEST_FILE} at its top level")
        manifest = _parse_manifest_bytes(manifest_path.read_bytes())
        _check_references(manifest, {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()})
        return manifest
    except BaseException:
        _empty(dest)
        raise


def _extract(archive: Path, dest: Path, *, max_bytes: int, max_entries: int) -> None:
    seen: set[str] = set()
    total = 0
    try:
        with tarfile.open(archive, mode="r|gz") as tar:
            for count, member in enumerate(tar, start=1):
                if count > max_entries:
                    raise BundleError(f"{archive} holds more than {max_entries} entries; bundles are capped")
                if member.isdir() and PurePosixPath(member.name).as_posix() == ".":
                    continue  # `tar -C dir .` starts with the folder itself
                name = _safe_name(member.name, archive)
                if name in seen:
                    raise BundleError(f"{archive}: entry {name!r} appears twice (a later copy would replace the "
                                      "checked one)")
                seen.add(name)
                target = dest / name
                if member.isdir():
                    target.mkdir(mode=0o755, parents=True, exist_ok=True)
                    continue
                _check_type(member, name, archive)
                total += member.size
                if total > max_bytes:
                    raise BundleError(f"{archive} unpacks to more than {max_bytes} bytes; bundles are capped")
                target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # regular files always have content
                with target.open("xb") as sink:
                    shutil.copyfileobj(source, sink, CHUNK)
                target.chmod(0o755 if member.mode & 0o111 else 0o644)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BundleError(f"{archive} is not a readable .tar.gz ({exc})") from None
    except OSError as exc:
        raise BundleError(f"{archive}: cannot write entry into {dest} ({exc.strerror}); entries that clash "
                          "(a file and a folder of the same name) need a repacked bundle") from None


def _safe_name(raw: str, archive: Path) -> str:
    if "\x00" in raw or "\\" in raw:
        raise BundleError(f"{archive}: entry {raw!r} has a backslash or NUL in its name")
    path = PurePosixPath(raw)
    if path.is_absolute():
        raise BundleError(f"{archive}: entry {raw!r} is an absolute path; bundles hold relative paths only")
    if ".." in path.parts:
        raise BundleError(f"{archive}: entry {raw!r} contains '..' and would land outside the bundle")
    name = path.as_posix()
    if name in ("", "."):
        raise BundleError(f"{archive}: entry {raw!r} has an empty name")
    return name


def _check_type(member: tarfile.TarInfo, name: str, archive: Path) -> None:
    if member.issym():
        raise BundleError(f"{archive}: entry {name!r} is a symlink; bundles hold only regular files and folders")
    if member.islnk():
        raise BundleError(f"{archive}: entry {name!r} is a hard link; bundles hold only regular files and folders")
    if member.ischr() or member.isblk():
        raise BundleError(f"{archive}: entry {name!r} is a device file; bundles hold only regular files and folders")
    if not member.isreg():
        raise BundleError(f"{archive}: entry {name!r} is a special file (fifo or unknown type); bundles hold only "
                          "regular files and folders")


def _empty(dest: Path) -> None:
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def read_manifest(archive: Path) -> Manifest:
    """The manifest of a packed bundle, without extracting anything else."""
    try:
        with tarfile.open(archive, mode="r|gz") as tar:
            for member in tar:
                if PurePosixPath(member.name).as_posix() != MANIFEST_FILE:
                    continue
                if not member.isreg():
                    raise BundleError(f"{archive}: {MANIFEST_FILE} is not a regular file")
                if member.size > MAX_MANIFEST_BYTES:
                    raise BundleError(f"{archive}: {MANIFEST_FILE} is over {MAX_MANIFEST_BYTES} bytes")
                source = tar.extractfile(member)
                assert source is not None
                return _parse_manifest_bytes(source.read())
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BundleError(f"{archive} is not a readable .tar.gz ({exc})") from None
    raise BundleError(f"{archive} has no {MANIFEST_FILE} at its top level")


def _parse_manifest_bytes(raw: bytes) -> Manifest:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ManifestError("", f"not valid JSON ({exc})", "write the manifest as one UTF-8 JSON object") from None
    return parse_manifest(data)


def _check_references(manifest: Manifest, files: set[str]) -> None:
    """The files the manifest names must be regular files in the bundle."""
    if manifest.kind == "python" and manifest.entrypoint not in files:
        raise BundleError(f"the entrypoint {manifest.entrypoint!r} named in {MANIFEST_FILE} is not in the bundle")
    if manifest.onnx is not None and manifest.onnx.model not in files:
        raise BundleError(f"the model {manifest.onnx.model!r} named in {MANIFEST_FILE} is not in the bundle")
