"""Host side of the supervisor's stream: parse it with caps, extract only regular files, read outputs link-free.

What comes out of a sandbox is hostile input. So the host never follows a link the algorithm made, never writes
outside the job's output dir, never reads more than the caps allow, and says in `killed_reason` why it refused.
Refusals never name the file: its name is the algorithm's choice and could carry data (a reason reaches the
algorithm's provider).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import tarfile
import threading
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from compute_to_data.sandbox.base import SandboxResult, SandboxSpec

MAGIC = b"SOVRA-SANDBOX-1\n"  # the same bytes as compute_to_data/runtime/supervisor.py writes
TAIL_BYTES = 64 * 1024


class OutputRefused(ValueError):
    """An output the caller must not use; the message says which file and why."""


@dataclass
class CappedRead:
    data: bytes = b""
    overflow: bool = False


def read_capped(stream: BinaryIO, cap: int, into: CappedRead) -> None:
    """Read a pipe to EOF keeping at most `cap` bytes (the rest is drained and dropped, `overflow` set)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read(65536):
        if size < cap:
            chunks.append(chunk[: cap - size])
        size += len(chunk)
    into.data = b"".join(chunks)
    into.overflow = size > cap


def start_reader(stream: BinaryIO, cap: int) -> tuple[threading.Thread, CappedRead]:
    box = CappedRead()
    thread = threading.Thread(target=read_capped, args=(stream, cap, box), daemon=True)
    thread.start()
    return thread, box


@dataclass(frozen=True)
class Stream:
    header: dict
    stdout_tail: bytes
    stderr_tail: bytes
    tar: bytes


def parse_stream(data: bytes) -> Stream:
    """Split the supervisor's stream; OutputRefused when it is not one (the supervisor died or was impersonated)."""
    if not data.startswith(MAGIC):
        raise OutputRefused("the sandbox supervisor returned no result (it was killed or never started)")
    line_end = data.find(b"\n", len(MAGIC))
    try:
        header = json.loads(data[len(MAGIC) : line_end])
        out_len, err_len = int(header["stdout_len"]), int(header["stderr_len"])
    except (ValueError, KeyError, TypeError) as exc:
        raise OutputRefused(f"the sandbox supervisor's header is unreadable ({exc})") from exc
    start = line_end + 1
    out = data[start : start + out_len]
    err = data[start + out_len : start + out_len + err_len]
    return Stream(header, out, err, data[start + out_len + err_len :])


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or not path.parts or any(p in ("..", ".", "") for p in path.parts) or "\0" in name:
        raise OutputRefused("an output name is not a plain relative path")
    return path


def extract_outputs(tar_bytes: bytes, output_dir: Path, max_bytes: int) -> int:
    """Write the tar's regular files under output_dir (created 0700); total bytes. Links and others are refused."""
    output_dir.mkdir(parents=True, exist_ok=True)
    total = 0
    if not tar_bytes.strip(b"\0"):
        return 0
    with tarfile.open(fileobj=BytesIO(tar_bytes), mode="r:") as tar:
        for member in tar:
            rel = _safe_name(member.name)
            if not member.isreg():
                raise OutputRefused("an output is not a regular file")
            total += member.size
            if total > max_bytes:
                raise OutputRefused(f"outputs exceed the cap of {max_bytes} bytes")
            src = tar.extractfile(member)
            assert src is not None
            _write_new(output_dir, rel, src.read())
    return total


def _open_dir(base: Path, parts: tuple[str, ...], create: bool) -> int:
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in parts:
            if create:
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except OSError:
        os.close(fd)
        raise
    return fd


def _write_new(base: Path, rel: PurePosixPath, data: bytes) -> None:
    dir_fd = _open_dir(base, rel.parts[:-1], create=True)
    try:
        fd = os.open(rel.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    finally:
        os.close(dir_fd)


def read_output_file(output_dir: Path | str, name: str, max_bytes: int) -> bytes:
    """Read one output without following links: refuses symlinks (in any path part), hard links, non-regular
    files and files over max_bytes. FileNotFoundError when it is absent."""
    rel = _safe_name(name)
    try:
        dir_fd = _open_dir(Path(output_dir), rel.parts[:-1], create=False)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise OutputRefused(f"an output's path has a part that is not a plain directory ({exc.strerror})") from exc
    try:
        try:
            fd = os.open(rel.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise OutputRefused(f"an output is a link or cannot be opened ({exc.strerror})") from exc
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OutputRefused("an output is not a regular file")
        if st.st_nlink != 1:
            raise OutputRefused("an output is a hard link")
        if st.st_size > max_bytes:
            raise OutputRefused(f"an output has {st.st_size} bytes, more than the {max_bytes} allowed")
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise OutputRefused(f"an output grew past {max_bytes} bytes while being read")
    return data


def finish(
    out: CappedRead,
    err: CappedRead,
    spec: SandboxSpec,
    *,
    wall_seconds: float,
    host_timeout: bool,
    runner_exit: int | None,
) -> SandboxResult:
    """Turn what the runner (bwrap, a container) handed back into a SandboxResult, extracting outputs on success.

    `out` is the supervisor's stream, `err` the runner's own stderr (bwrap's or the daemon's complaints)."""
    limits = spec.limits

    def failed(reason: str, stderr: bytes = err.data, timed_out: bool = False) -> SandboxResult:
        return SandboxResult(None, timed_out, wall_seconds, b"", stderr[-TAIL_BYTES:], 0, killed_reason=reason)

    if host_timeout:
        return failed(f"timeout: the sandbox ran past {limits.wall_seconds:g} s and was killed", timed_out=True)
    if out.overflow:
        return failed(f"output cap: the sandbox wrote more than {limits.output_max_bytes} bytes of output")
    try:
        stream = parse_stream(out.data)
    except OutputRefused as exc:
        runner = f" (runner exit {runner_exit})" if runner_exit else ""
        return failed(f"sandbox failed: {exc}{runner}")
    head = stream.header
    exit_code = head.get("exit_code")
    reason: str | None = None
    if head.get("timed_out"):
        reason = f"timeout: the algorithm ran past {limits.wall_seconds:g} s; its processes were killed"
    elif head.get("signal"):
        reason = _signal_reason(int(head["signal"]), limits)
    elif head.get("output_error"):
        reason = f"output refused: {head['output_error']}"
    output_bytes = 0
    if reason is not None:
        exit_code = None  # killed, timed out or refused: there is no exit status to act on
    elif exit_code == 0:
        try:
            output_bytes = extract_outputs(stream.tar, Path(spec.output_dir), limits.output_max_bytes)
        except (OutputRefused, tarfile.TarError) as exc:
            reason, exit_code = f"output refused: {exc}", None
        except OSError as exc:  # its text would name the file
            reason, exit_code = f"output refused: an output could not be written ({exc.strerror})", None
    return SandboxResult(
        exit_code=exit_code,
        timed_out=bool(head.get("timed_out")),
        wall_seconds=wall_seconds,
        stdout_tail=stream.stdout_tail,
        stderr_tail=stream.stderr_tail,
        output_bytes=output_bytes,
        killed_reason=reason,
    )


def _signal_reason(signum: int, limits) -> str:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    if signum == signal.SIGXCPU:
        return f"cpu time: the algorithm used more than {limits.cpu_seconds} s of CPU ({name})"
    if signum == signal.SIGXFSZ:
        return f"file size: the algorithm wrote a file over {limits.max_file_mb} MiB ({name})"
    return f"killed by {name}"
