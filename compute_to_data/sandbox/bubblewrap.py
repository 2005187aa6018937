"""The default backend: bubblewrap (unprivileged namespaces) plus seccomp plus rlimits, no daemon needed.

The sandbox is built from nothing: an empty tmpfs root, remounted read-only at the end, with read-only binds of
/usr (and the /lib*, /bin links), /etc/ld.so.cache, the interpreter's prefix, a tiny venv holding only numpy and
onnxruntime (see pyenv.py), /algorithm, /input and /runtime; a private /tmp and a size-capped /output, both tmpfs;
a fresh /proc of its own pid namespace and a minimal /dev; no /sys. New user, pid, net, ipc, uts and cgroup
namespaces, no further user namespaces, die-with-parent, a new session, a cleared environment.

When the connector runs as root, bwrap itself runs as an unprivileged uid (65534 by default): a user namespace
made by root maps the sandbox to host uid 0, which the kernel exempts from RLIMIT_NPROC and which owns root's
files. The job's /algorithm and /input trees are then made group-readable for that uid's group, and every bind
source is passed as an O_PATH fd, so the unprivileged bwrap needs no search permission on the connector's dirs.

Inside, compute_to_data/runtime/supervisor.py applies the rlimits to the algorithm, enforces the wall clock,
kills every leftover process and streams /output back; the host kills the whole tree (process group; the pid
namespace dies with its init) if the supervisor itself overruns.

With `standby` > 0, the onnx runner's sandboxes are started ahead of their jobs and used once (standby.py).
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import dataclasses
import glob
import json
import math
import os
import random
import select
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from compute_to_data.sandbox import pyenv, seccomp
from compute_to_data.sandbox.base import Availability, Limits, SandboxResult, SandboxSpec, SandboxUnavailable
from compute_to_data.sandbox.outputs import TAIL_BYTES, finish, start_reader
from compute_to_data.sandbox.standby import Slot, StandbyPool, own_folder

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"
NOBODY = 65534
GRACE_SECONDS = 10.0  # beyond wall_seconds, for the sandbox to start and hand /output back
STANDBY_READY_SECONDS = 60.0  # for a standby to import its runtime
READY = b"SOVRA-STANDBY-READY\n"  # the same bytes as compute_to_data/runtime/supervisor.py writes


class BubblewrapSandbox:
    name = "bubblewrap"

    def __init__(
        self,
        bwrap: str = "bwrap",
        run_as: int | None = None,
        standby: int = 0,
        standby_dir: Path | str | None = None,
        standby_limits: Limits | None = None,
    ) -> None:
        """`standby` > 0 keeps that many pre-started sandboxes per runner command (see standby.py), in slot
        folders under `standby_dir`, started with `standby_limits` (jobs with looser limits start cold)."""
        self.bwrap = shutil.which(bwrap) or bwrap
        self.run_as = run_as if run_as is not None else (NOBODY if os.geteuid() == 0 else None)
        self._availability: Availability | None = None
        self._layout: pyenv.PythonLayout | None = None
        self._filter: bytes | None = None
        self._pool: StandbyPool | None = None
        if standby > 0:
            root = own_folder(Path(standby_dir)) if standby_dir is not None else Path(
                tempfile.mkdtemp(prefix="sovra-standby-"))
            self._pool = StandbyPool(standby, root, standby_limits or Limits(), self._launch_standby,
                                     _waiting, _discard)

    # -- availability -------------------------------------------------------------------------------------------
    def available(self) -> Availability:
        if self._availability is None:
            self._availability = self._probe()
        return self._availability

    def prepare(self) -> None:
        """Top up the standbys once jobs have used them (a connector that never computes keeps none); the compute
        worker calls it when it has nothing to do, so that starting them never takes a core from a running job."""
        if self._pool is not None and self._pool.used and self.available().ok:
            self._pool.fill()

    def close(self) -> None:
        """Stop the standbys (a connector stopping; they would die with this process anyway)."""
        if self._pool is not None:
            self._pool.close()

    def _probe(self) -> Availability:
        if not shutil.which(self.bwrap):
            return Availability(False, "bubblewrap: no `bwrap` on PATH; install it (apt-get install bubblewrap)")
        try:
            self._prepare()
        except SandboxUnavailable as exc:
            return Availability(False, str(exc))
        with _TempJob() as job:
            result = self.run(
                SandboxSpec(
                    ["python", "-c", "import numpy, onnxruntime"],
                    job.alg,
                    job.inp,
                    job.out,
                    limits=Limits(wall_seconds=30, cpu_seconds=30),
                )
            )
        if result.exit_code != 0:
            detail = (result.killed_reason or result.stderr_tail.decode(errors="replace")).strip()[-500:]
            return Availability(
                False,
                f"bubblewrap: a test sandbox failed ({detail or 'exit ' + str(result.exit_code)}); unprivileged "
                "user namespaces must be allowed (sysctl kernel.unprivileged_userns_clone=1, "
                "user.max_user_namespaces>0)",
            )
        return Availability(True)

    def _prepare(self) -> tuple[pyenv.PythonLayout, bytes]:
        if self._layout is None:
            self._layout = pyenv.discover()
        if self._filter is None:
            self._filter = seccomp.compile_filter()
        return self._layout, self._filter

    # -- running ------------------------------------------------------------------------------------------------
    def run(self, spec: SandboxSpec) -> SandboxResult:
        if spec.image is not None:
            return _refused("an OCI image runs only on the Docker backend; this executor uses bubblewrap")
        if spec.gpu and not glob.glob("/dev/nvidia*"):
            return _refused("job asks for a GPU; this executor has none")
        slot = self._pool.take(spec) if self._pool is not None else None
        if slot is not None:
            return self._run_standby(slot, spec)
        started = self._start(spec)
        if isinstance(started, SandboxResult):
            return started
        return self._wait(started, spec, time.monotonic())

    def _run_standby(self, slot: Slot, spec: SandboxSpec) -> SandboxResult:
        """The job in a pre-started sandbox: its files linked into the slot, then the job line with its limits."""
        proc: subprocess.Popen = slot.handle
        try:
            slot.place(spec)
            if self.run_as is not None:
                for tree in (slot.algorithm_dir, slot.input_dir):
                    _grant_group_read(tree, self.run_as)
            cpus = _cpu_set(spec.limits.cpus)
            line = json.dumps({**_limit_keys(spec.limits), "cpus": sorted(cpus) if cpus else None})
            begun = time.monotonic()
            assert proc.stdin is not None
            try:
                proc.stdin.write(line.encode() + b"\n")
                proc.stdin.close()
            except OSError:
                pass  # it died while standing by: the stream it left says so
            return dataclasses.replace(self._wait(proc, spec, begun), standby=True)
        finally:
            _kill_group(proc)
            self._pool.finished(slot)  # type: ignore[union-attr]

    def _launch_standby(self, slot: Slot) -> subprocess.Popen:
        template = SandboxSpec(list(slot.standby_command), slot.algorithm_dir, slot.input_dir, slot.folder / "output",
                               limits=self._pool.limits)  # type: ignore[union-attr]
        started = self._start(template, standby=True)
        if isinstance(started, SandboxResult):
            raise SandboxUnavailable(started.killed_reason or "the standby sandbox did not start")
        if not _reads_ready(started, STANDBY_READY_SECONDS):
            _discard(started)
            raise SandboxUnavailable(f"a standby sandbox was not ready within {STANDBY_READY_SECONDS:g} s")
        return started

    def _start(self, spec: SandboxSpec, *, standby: bool = False) -> subprocess.Popen | SandboxResult:
        """Start bwrap for `spec` (a refusal when it cannot start); standby: its stdin is a pipe for the job
        line and its CPUs are pinned when the job comes, not now."""
        gpu_devices = sorted(glob.glob("/dev/nvidia*"))
        try:
            layout, bpf = self._prepare()
        except SandboxUnavailable as exc:
            return _refused(str(exc))
        if self.run_as is not None:
            for tree in (spec.algorithm_dir, spec.input_dir):
                _grant_group_read(Path(tree), self.run_as)
        limits = spec.limits
        binds = {"algorithm": Path(spec.algorithm_dir), "input": Path(spec.input_dir), "runtime": RUNTIME_DIR}
        if not _covered(layout.base_prefix):
            binds["python"] = layout.base_prefix
        for i, (host_dir, _name) in enumerate(layout.site_dirs):
            binds[f"site{i}"] = host_dir
        stage = _Stage(binds) if self.run_as is not None else None
        source = stage.path if stage is not None else (lambda key: str(binds[key]))
        with contextlib.ExitStack() as stack:
            fds: list[int] = []

            def data_fd(content: bytes) -> str:
                fd = os.memfd_create("sovra-sandbox", 0)
                stack.callback(os.close, fd)
                os.write(fd, content)
                os.lseek(fd, 0, os.SEEK_SET)
                fds.append(fd)
                return str(fd)

            if stage is not None:
                stack.enter_context(stage)
            args = [
                self.bwrap,
                "--unshare-all",
                "--unshare-user",
                "--disable-userns",
                "--die-with-parent",
                "--new-session",
                "--clearenv",
                "--cap-drop",
                "ALL",
                "--uid",
                str(NOBODY),
                "--gid",
                str(NOBODY),
                "--hostname",
                "sandbox",
            ]
            args += _system_binds()
            args += ["--ro-bind-data", data_fd(_PASSWD), "/etc/passwd", "--ro-bind-data", data_fd(_GROUP), "/etc/group"]
            args += ["--proc", "/proc", "--dev", "/dev", "--size", str(limits.tmpfs_mb << 20), "--tmpfs", "/dev/shm"]
            if spec.gpu:
                for dev in gpu_devices:
                    args += ["--dev-bind", dev, dev]
            if "python" in binds:
                args += ["--ro-bind", source("python"), str(layout.base_prefix)]
            venv = pyenv.VENV_DIR
            args += [
                "--dir",
                f"{venv}/bin",
                "--symlink",
                str(layout.executable),
                f"{venv}/bin/python",
                "--symlink",
                "python",
                f"{venv}/bin/python3",
                "--ro-bind-data",
                data_fd(layout.pyvenv_cfg().encode()),
                f"{venv}/pyvenv.cfg",
            ]
            for i, (_host_dir, name) in enumerate(layout.site_dirs):
                args += ["--ro-bind", source(f"site{i}"), f"{layout.site_packages}/{name}"]
            args += [
                "--ro-bind",
                source("algorithm"),
                "/algorithm",
                "--ro-bind",
                source("input"),
                "/input",
                "--ro-bind",
                source("runtime"),
                "/runtime",
                "--size",
                str(limits.tmpfs_mb << 20),
                "--perms",
                "0700",
                "--tmpfs",
                "/tmp",
                "--size",
                str(_output_tmpfs_bytes(limits)),
                "--perms",
                "0700",
                "--tmpfs",
                "/output",
                "--remount-ro",
                "/",
                "--remount-ro",
                "/dev",
                "--chdir",
                "/tmp",
                "--seccomp",
                data_fd(bpf),
            ]
            for key, value in _environment(spec.env).items():
                args += ["--setenv", key, value]
            args += [
                "--",
                f"{venv}/bin/python",
                "-I",
                "-S",
                "/runtime/supervisor.py",
                _supervisor_config(limits, list(_environment(spec.env)), standby=standby),
                "--",
                *spec.command,
            ]
            return self._popen(args, fds, stage, cpus=None if standby else _cpu_set(limits.cpus), standby=standby)

    def _popen(
        self, args: list[str], fds: list[int], stage: _Stage | None, *, cpus: set[int] | None, standby: bool
    ) -> subprocess.Popen | SandboxResult:
        run_as = self.run_as

        def preexec() -> None:
            if cpus:
                os.sched_setaffinity(0, cpus)
            if stage is not None:
                stage.mount()
            if run_as is not None:
                os.setgroups([])
                os.setresgid(run_as, run_as, run_as)
                os.setresuid(run_as, run_as, run_as)

        try:
            return subprocess.Popen(
                args,
                stdin=subprocess.PIPE if standby else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=fds,
                preexec_fn=preexec,
                start_new_session=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            how = "staging the binds or dropping privileges" if stage or run_as is not None else "starting bwrap"
            return _refused(f"bubblewrap: {how} failed ({exc}); the connector needs CAP_SYS_ADMIN when run as root")

    def _wait(self, proc: subprocess.Popen, spec: SandboxSpec, started: float) -> SandboxResult:
        """Collect a started sandbox's stream, killing the whole tree past the wall clock plus a grace."""
        limits = spec.limits
        try:
            out_thread, out = start_reader(proc.stdout, _stream_cap(limits))
            err_thread, err = start_reader(proc.stderr, TAIL_BYTES)
            host_timeout = not _exits_within(proc, limits.wall_seconds + GRACE_SECONDS)
            if host_timeout:
                _kill_group(proc)
            proc.wait()
            out_thread.join()
            err_thread.join()
        finally:
            _kill_group(proc)
        return finish(
            out,
            err,
            spec,
            wall_seconds=time.monotonic() - started,
            host_timeout=host_timeout,
            runner_exit=proc.returncode,
        )


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _reads_ready(proc: subprocess.Popen, seconds: float) -> bool:
    """Whether the standby's supervisor says READY in time (read unbuffered: the stream after it is the result)."""
    assert proc.stdout is not None
    fd, line, deadline = proc.stdout.fileno(), b"", time.monotonic() + seconds
    while len(line) < len(READY) and not line.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, len(READY) - len(line)) if ready else b""
        if not chunk:
            return False
        line += chunk
    return line == READY


def _exits_within(proc: subprocess.Popen, seconds: float) -> bool:
    """Wait for the process to exit, woken by its pidfd the moment it does (Popen.wait(timeout) polls every
    50 ms, which is a tenth of a short job)."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        return True  # already reaped
    try:
        ready, _, _ = select.select([pidfd], [], [], seconds)
        return bool(ready)
    finally:
        os.close(pidfd)


def _discard(proc: subprocess.Popen) -> None:
    """Stop a standby that was never used, and close its pipes."""
    _kill_group(proc)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def _waiting(proc: subprocess.Popen) -> bool:
    return proc.poll() is None



def _refused(reason: str) -> SandboxResult:
    return SandboxResult(None, False, 0.0, b"", b"", 0, killed_reason=reason)


def _output_tmpfs_bytes(limits: Limits) -> int:
    return limits.output_max_bytes + (64 << 10)  # room for directory entries; the cap itself is checked on bytes


def _stream_cap(limits: Limits) -> int:
    return 2 * TAIL_BYTES + _output_tmpfs_bytes(limits) * 2 + (1 << 20)  # tails + tar with its headers


def _supervisor_config(
    limits: Limits,
    env_keys: list[str],
    encoding: str = "raw",
    bpf: bytes | None = None,
    nproc: bool = True,
    standby: bool = False,
) -> str:
    """What the in-sandbox supervisor needs (compute_to_data/runtime/supervisor.py reads exactly these keys)."""
    return json.dumps(
        {
            "standby": standby,
            "nproc": nproc,
            "seccomp": base64.b64encode(bpf).decode() if bpf else None,
            "env_keys": sorted(env_keys),
            "encoding": encoding,
            **_limit_keys(limits),
        }
    )


def _limit_keys(limits: Limits) -> dict[str, float | int]:
    """The job's part of the supervisor config; a standby gets it on stdin when its job comes."""
    return {
        "wall_seconds": limits.wall_seconds,
        "cpu_seconds": limits.cpu_seconds,
        "memory_mb": limits.memory_mb,
        "max_processes": limits.max_processes,
        "max_open_files": limits.max_open_files,
        "max_file_mb": limits.max_file_mb,
        "output_max_bytes": limits.output_max_bytes,
    }


def _environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = {str(k): str(v) for k, v in extra.items()}
    env.update(PATH=pyenv.PATH_ENV, HOME="/tmp", LANG="C.UTF-8")
    return env


def _cpu_set(cpus: float) -> set[int] | None:
    """A random subset of the allowed CPUs, ceil(cpus) of them (random so concurrent jobs spread out)."""
    allowed = sorted(os.sched_getaffinity(0))
    want = max(1, math.ceil(cpus))
    return set(random.sample(allowed, want)) if want < len(allowed) else None


def _covered(path: Path) -> bool:
    return path == Path("/usr") or Path("/usr") in path.parents


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    if Path("/etc/ld.so.cache").is_file():
        args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    return args


def _grant_group_read(tree: Path, gid: int) -> None:
    """Let the unprivileged sandbox uid's group read a job tree (never following a link)."""
    for entry in _walk(tree):
        st = os.lstat(entry)
        if stat.S_ISLNK(st.st_mode):
            continue
        extra = stat.S_IRGRP | (stat.S_IXGRP if stat.S_ISDIR(st.st_mode) else 0)
        if st.st_gid != gid:
            os.chown(entry, -1, gid, follow_symlinks=False)
        if st.st_mode & extra != extra:
            os.chmod(entry, stat.S_IMODE(st.st_mode) | extra)


def _walk(tree: Path) -> Iterator[str]:
    yield str(tree)
    for root, dirs, files in os.walk(tree):
        for name in dirs + files:
            yield os.path.join(root, name)


class _Stage:
    """Bind sources an unprivileged bwrap can reach, when the connector runs as root.

    bwrap resolves every source path as the uid it runs as, and root's dirs (/root, a 0700 data dir) are closed
    to 65534. So, in the forked child only, before dropping privileges: a private mount namespace, a fresh tmpfs
    on /tmp, and each source bind-mounted (from an fd opened earlier, as root) to /tmp/<key>. The host's mounts
    are untouched and the mounts vanish with the child. Needs CAP_SYS_ADMIN, which root has."""

    ROOT = "/tmp"

    def __init__(self, binds: Mapping[str, Path]) -> None:
        self.binds = dict(binds)
        self._libc = ctypes.CDLL(None, use_errno=True)

    def path(self, key: str) -> str:
        return f"{self.ROOT}/{key}"

    def __enter__(self) -> _Stage:
        for host in self.binds.values():
            if not host.exists():
                raise SandboxUnavailable(f"bubblewrap: bind source {host} does not exist")
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def _mount(self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
        def enc(v: str | None) -> bytes | None:
            return v.encode() if v is not None else None

        if self._libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"sandbox staging: mount {target}: {os.strerror(err)}")

    def mount(self) -> None:
        """Runs in the child between fork and exec (preexec)."""
        if self._libc.unshare(0x00020000) != 0:  # CLONE_NEWNS
            err = ctypes.get_errno()
            raise OSError(err, f"sandbox staging: unshare(CLONE_NEWNS): {os.strerror(err)}")
        self._mount(None, "/", None, (1 << 14) | (1 << 18), None)  # MS_REC | MS_PRIVATE
        # opened in this namespace (a mount from another one cannot be bound), before /tmp is covered
        fds = {key: os.open(host, os.O_PATH | os.O_CLOEXEC) for key, host in self.binds.items()}
        self._mount("tmpfs", self.ROOT, "tmpfs", 2 | 4 | 8, "mode=0755,size=1m")  # nosuid, nodev, noexec
        for key, fd in fds.items():
            target = self.path(key)
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                os.mkdir(target, 0o755)
            else:
                os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
            self._mount(f"/proc/self/fd/{fd}", target, None, 4096 | (1 << 14), None)  # MS_BIND | MS_REC
            os.close(fd)


_PASSWD = b"root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/tmp:/usr/sbin/nologin\n"
_GROUP = b"root:x:0:\nnogroup:x:65534:\n"


class _TempJob:
    """A throwaway job tree for the availability probe."""

    def __enter__(self) -> _TempJob:
        import tempfile

        self._dir = tempfile.TemporaryDirectory(prefix="sovra-probe-")
        root = Path(self._dir.name)
        self.alg, self.inp, self.out = root / "algorithm", root / "input", root / "output"
        for d in (self.alg, self.inp):
            d.mkdir()
        return self

    def __exit__(self, *exc: object) -> None:
        self._dir.cleanup()
