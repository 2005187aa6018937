"""Pre-started sandboxes: the sandbox and the connector's runner are started before a job comes, used once.

Why: a job's sandboxed run is mostly start-up. bwrap builds its namespaces and mounts, the supervisor's
interpreter starts, and the onnx runner imports numpy and onnxruntime (about 0.3 s of a 0.5 s run on 10,000 rows)
before it reads a single record. A standby has done all of that already and waits for its job.

What stays the same as a cold start, so a standby is no weaker:
- it is single-use: one job, then it exits, and its slot folder is removed;
- its /algorithm and /input are read-only binds of an empty slot folder. The job's files are linked in just
  before the job line, so nothing of the job exists while the runner gets ready;
- the supervisor lowers the runner's rlimits to the job's (prlimit) and pins its CPUs before the runner reads
  anything, and the wall clock starts with the job;
- only the connector's own runners stand by, never an algorithm's code. A python algorithm's file is not there
  before its job, so it starts cold as before.

A job is served by a standby only when the standby was started with limits at least as loose as the job's and
with the same tmpfs and output sizes (those are fixed when bwrap mounts them); every other job starts cold, and
so does any job that finds no standby ready. Taking one starts its replacement in the background.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compute_to_data.sandbox.base import Limits, SandboxSpec
from compute_to_data.sandbox.commands import ONNX_RUNNER

log = logging.getLogger("sovra.sandbox")

# The commands that may stand by, and how they are started to stand by: the connector's runners only.
STANDBY_COMMANDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("python", ONNX_RUNNER): ("python", ONNX_RUNNER, "--standby"),
}
_AT_MOST = ("cpu_seconds", "memory_mb", "max_processes", "max_open_files", "max_file_mb")
_EXACTLY = ("tmpfs_mb", "output_max_bytes")


def serves(spec: SandboxSpec, limits: Limits) -> bool:
    """Whether a standby started with `limits` can run `spec`: one of the runners, no GPU, image or extra
    environment, and limits that the supervisor can only lower to the job's."""
    if tuple(spec.command) not in STANDBY_COMMANDS or spec.gpu or spec.image is not None or spec.env:
        return False
    job = spec.limits
    return all(getattr(job, f) <= getattr(limits, f) for f in _AT_MOST) and all(
        getattr(job, f) == getattr(limits, f) for f in _EXACTLY
    )


@dataclass
class Slot:
    """One standby: its folder (bound as /algorithm and /input) and the started process (backend's handle)."""

    folder: Path
    command: tuple[str, ...]
    handle: Any = None

    @property
    def standby_command(self) -> tuple[str, ...]:
        """How the command is started to stand by (e.g. the onnx runner with --standby)."""
        return STANDBY_COMMANDS.get(self.command, self.command)

    @property
    def algorithm_dir(self) -> Path:
        return self.folder / "algorithm"

    @property
    def input_dir(self) -> Path:
        return self.folder / "input"

    def place(self, spec: SandboxSpec) -> None:
        """Put the job's algorithm and input where the standby sees them (hard links; a copy across devices)."""
        _mirror(Path(spec.algorithm_dir), self.algorithm_dir)
        _mirror(Path(spec.input_dir), self.input_dir)


class StandbyPool:
    """Keeps `size` standbys per runner command ready; `launch(slot)` starts one and returns its handle,
    `alive(handle)` says whether it still waits, `discard(handle)` stops it."""

    def __init__(
        self,
        size: int,
        root: Path,
        limits: Limits,
        launch: Callable[[Slot], Any],
        alive: Callable[[Any], bool],
        discard: Callable[[Any], None],
        commands: Sequence[tuple[str, ...]] = tuple(STANDBY_COMMANDS),
    ) -> None:
        self.size, self.root, self.limits = size, Path(root), limits
        self._launch, self._alive, self._discard = launch, alive, discard
        self._commands = tuple(commands)
        self._ready: dict[tuple[str, ...], list[Slot]] = {c: [] for c in self._commands}
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._filler: threading.Thread | None = None
        self._closed = False
        self.used = False  # a job has asked for a standby: until then none is kept (a connector may never compute)

    def fill(self) -> None:
        """Start what is missing, in the background (starting a standby takes a few hundred ms of CPU).

        One long-lived thread starts them all: bwrap's --die-with-parent kills a sandbox when the *thread* that
        started it ends, so a standby must never be started from a thread that may end before its job comes."""
        with self._lock:
            if self._closed:
                return
            if self._filler is None:
                self._filler = threading.Thread(target=self._fill_forever, name="sovra-sandbox-standby", daemon=True)
                self._filler.start()
        self._wanted.set()

    def _fill_forever(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            try:
                if not self._fill():
                    return
            except Exception:  # noqa: BLE001 - e.g. the slot folder went: the next fill() tries again
                if self._closed:
                    return
                log.exception("could not prepare a standby sandbox; jobs start cold")

    def _fill(self) -> bool:
        """Start standbys until every command has `size` ready; False once the pool is closed."""
        while True:
            with self._lock:
                missing = [c for c in self._commands if len(self._ready[c]) < self.size]
                if self._closed or not missing:
                    return not self._closed
            slot = self._new_slot(missing[0])
            try:
                slot.handle = self._launch(slot)
            except Exception:  # noqa: BLE001 - no standby: jobs start cold, as without a pool
                log.exception("could not start a standby sandbox; jobs start cold")
                shutil.rmtree(slot.folder, ignore_errors=True)
                return True
            with self._lock:
                if not self._closed:
                    self._ready[slot.command].append(slot)
                    continue
            self._drop(slot)
            return False

    def take(self, spec: SandboxSpec) -> Slot | None:
        """A live standby for `spec`, or None: the caller starts cold, and the pool starts filling now."""
        if not serves(spec, self.limits):
            return None
        self.used = True
        taken = None
        with self._lock:
            ready = self._ready.get(tuple(spec.command), [])
            while ready and taken is None:
                slot = ready.pop(0)
                if self._alive(slot.handle):
                    taken = slot
                else:
                    self._drop(slot)
        if taken is None:
            self.fill()
        return taken

    def finished(self, slot: Slot) -> None:
        """The job in `slot` is done: its folder goes. Its replacement starts at the next fill(): the backend's
        prepare(), called when the compute worker is idle (starting one costs a core that a job may need)."""
        shutil.rmtree(slot.folder, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            slots = [s for ready in self._ready.values() for s in ready]
            for ready in self._ready.values():
                ready.clear()
        self._wanted.set()
        for slot in slots:
            self._drop(slot)
        shutil.rmtree(self.root, ignore_errors=True)

    def _new_slot(self, command: tuple[str, ...]) -> Slot:
        folder = self.root / uuid.uuid4().hex
        for sub in ("algorithm", "input"):
            (folder / sub).mkdir(parents=True, mode=0o700)
        return Slot(folder, command)

    def _drop(self, slot: Slot) -> None:
        try:
            self._discard(slot.handle)
        finally:
            shutil.rmtree(slot.folder, ignore_errors=True)


def own_folder(parent: Path) -> Path:
    """This process's folder for slots under `parent` (named by pid), after removing those of processes that are
    gone: a connector killed with its standbys leaves their slots behind."""
    parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for entry in parent.iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid() and not _alive(int(entry.name)):
            shutil.rmtree(entry, ignore_errors=True)
    folder = parent / str(os.getpid())
    folder.mkdir(exist_ok=True, mode=0o700)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mirror(source: Path, target: Path) -> None:
    """Recreate `source`'s directories under `target` and hard-link its regular files (copy across devices).
    Links in `source` are skipped: the job folders hold only what the connector wrote and safely unpacked."""
    for root, dirs, files in os.walk(source):
        rel = Path(root).relative_to(source)
        for name in dirs:
            (target / rel / name).mkdir(exist_ok=True, mode=0o700)
        for name in files:
            src, dst = Path(root) / name, target / rel / name
            if src.is_symlink() or not src.is_file():
                continue
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
