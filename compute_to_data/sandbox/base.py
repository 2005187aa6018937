"""One interface for every sandbox backend; the compute service never knows which one runs a job.

INTERFACE (lead's skeleton, filled in by the sandbox helper). Contract for every backend:
- inside the sandbox: /algorithm (read-only, the unpacked bundle), /input (read-only: records.jsonl and
  parameters.json), /output (writable, capped at limits.output_max_bytes), /tmp private tmpfs, /runtime
  (read-only, the connector's in-sandbox runners, e.g. onnx_runner.py); `python` on PATH with numpy and
  onnxruntime importable; no network at all; a clean environment (only what SandboxSpec.env gives, plus PATH,
  HOME=/tmp, LANG); a non-root user; the limits below enforced by the kernel, and wall_seconds by the backend
  killing the whole process tree.
- `available()` says whether the backend can run here and, if not, why (fail closed: the caller refuses jobs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class SandboxUnavailable(RuntimeError):
    """No usable sandbox: the message names the backend, what is missing and how to fix it."""


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 60.0
    cpu_seconds: int = 60
    memory_mb: int = 1024
    max_processes: int = 64
    max_open_files: int = 256
    max_file_mb: int = 256
    output_max_bytes: int = 16 << 20
    tmpfs_mb: int = 64
    cpus: float = 1.0


@dataclass(frozen=True)
class SandboxSpec:
    command: Sequence[str]  # e.g. ["python", "/algorithm/main.py"] or ["python", "/runtime/onnx_runner.py"]
    algorithm_dir: Path
    input_dir: Path
    output_dir: Path
    limits: Limits = Limits()
    env: Mapping[str, str] = field(default_factory=dict)
    gpu: bool = False
    image: str | None = None  # oci kind (Docker only): "sha256:<hex>"


@dataclass(frozen=True)
class SandboxResult:
    exit_code: int | None
    timed_out: bool
    wall_seconds: float
    stdout_tail: bytes  # last 64 KiB; never shown to the algorithm provider unscrubbed
    stderr_tail: bytes
    output_bytes: int
    killed_reason: str | None = None  # "timeout", "memory", "output cap", ...
    standby: bool = False  # ran in a pre-started sandbox (standby.py)


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""


class Sandbox(Protocol):
    name: str

    def available(self) -> Availability: ...

    def run(self, spec: SandboxSpec) -> SandboxResult: ...


BACKENDS = ("bubblewrap", "docker")


def create_sandbox(backend: str, **options: object) -> Sandbox:
    """The backend by name ("bubblewrap" | "docker"); raises SandboxUnavailable when it cannot run here.

    Options go to the backend's constructor (bubblewrap: bwrap, run_as, standby, standby_dir, standby_limits;
    docker: image, client). The backend is
    probed once here (a real test sandbox), so a connector that starts without a usable sandbox says why."""
    if backend == "bubblewrap":
        from compute_to_data.sandbox.bubblewrap import BubblewrapSandbox

        sandbox: Sandbox = BubblewrapSandbox(**options)  # type: ignore[arg-type]
    elif backend == "docker":
        from compute_to_data.sandbox.docker import DockerSandbox

        sandbox = DockerSandbox(**options)  # type: ignore[arg-type]
    else:
        raise SandboxUnavailable(f"unknown sandbox backend {backend!r}; choose one of {', '.join(BACKENDS)} (or none)")
    availability = sandbox.available()
    if not availability.ok:
        raise SandboxUnavailable(availability.reason)
    return sandbox


def read_output_file(output_dir: Path | str, name: str, max_bytes: int) -> bytes:
    """Read one output file of a finished run without following links (see outputs.read_output_file)."""
    from compute_to_data.sandbox.outputs import read_output_file as read

    return read(output_dir, name, max_bytes)
