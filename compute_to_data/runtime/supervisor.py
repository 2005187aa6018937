"""In-sandbox supervisor: runs the algorithm under its limits, then hands everything back through one stream.

Runs inside the sandbox (bubblewrap or Docker) as `python -I -S /runtime/supervisor.py <config json> -- <command>`,
before the algorithm and with nothing but the standard library (it must never import the connector). Why it
exists: /output is a size-capped tmpfs that vanishes with the sandbox, so something inside has to serialise it;
and the kernel limits (rlimits) are set here, after the sandbox's user namespace exists, so they count this job's
processes only.

Steps: mark itself non-dumpable (the algorithm, same uid, cannot open its fds through /proc), start the command
with rlimits in a new session with pipes for stdout/stderr, keep the last 64 KiB of each, kill it at the wall-clock
deadline, then SIGKILL every other process in the sandbox (kill(-1)), and write to its own stdout:

    b"SOVRA-SANDBOX-1\\n" + header JSON line + stdout tail + stderr tail + tar of /output (regular files only)

Standby (config "standby": true): the command starts at once, under the config's limits, with a pipe for stdin,
and gets ready (the onnx runner imports onnxruntime); it says so with one line on its stdout. The supervisor then
writes READY to its own stdout and waits for one JSON line on its stdin: the job's limits. It lowers the
command's rlimits to them (prlimit), pins its CPUs, writes "go" to the command's stdin, and only then starts the
wall clock. An empty line or EOF discards the standby: the command is killed and nothing more is written. The
job's files are in /algorithm and /input by the time the line comes.

The header says exit code / signal, timed_out, tail lengths and any output problem (a link, a special file, a
hard link, more bytes than allowed). The host trusts none of it blindly: it caps what it reads and re-checks the
tar while extracting.
"""

from __future__ import annotations

import base64
import ctypes
import io
import json
import os
import resource
import selectors
import signal
import stat
import subprocess
import sys
import tarfile
import time

MAGIC = b"SOVRA-SANDBOX-1\n"
READY = b"SOVRA-STANDBY-READY\n"  # standby: the command is ready for its job (written before MAGIC)
TAIL = 64 * 1024
OUTPUT = "/output"


def _no_dump() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        pass


def _install_seccomp(bpf: bytes) -> None:
    """Load the connector's seccomp filter (used under Docker, on top of Docker's own profile; bwrap loads it
    itself). Raises, so the algorithm never starts unfiltered."""

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


def _limits(cfg: dict) -> None:
    mb = 1 << 20
    pairs = {
        resource.RLIMIT_CPU: cfg["cpu_seconds"],
        resource.RLIMIT_AS: cfg["memory_mb"] * mb,
        resource.RLIMIT_NPROC: cfg["max_processes"],
        resource.RLIMIT_NOFILE: cfg["max_open_files"],
        resource.RLIMIT_FSIZE: cfg["max_file_mb"] * mb,
        resource.RLIMIT_CORE: 0,
    }
    if not cfg.get("nproc", True):
        del pairs[resource.RLIMIT_NPROC]  # Docker: its pids cgroup limits the job; NPROC would count the host's uid
    for which, value in pairs.items():
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)  # an unprivileged process can only lower its hard limits
        resource.setrlimit(which, (value, value))


def _job_limits(cfg: dict, pid: int) -> None:
    """Lower a standing-by command's rlimits to the job's (prlimit: same uid, so no privilege needed). The CPU
    limit is the job's allowance on top of what the command spent getting ready; every other limit is absolute."""
    mb = 1 << 20
    with open(f"/proc/{pid}/stat", "rb") as fh:
        fields = fh.read().rsplit(b")", 1)[1].split()
    spent = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    pairs = {
        resource.RLIMIT_CPU: int(spent) + 1 + cfg["cpu_seconds"],
        resource.RLIMIT_AS: cfg["memory_mb"] * mb,
        resource.RLIMIT_NPROC: cfg["max_processes"],
        resource.RLIMIT_NOFILE: cfg["max_open_files"],
        resource.RLIMIT_FSIZE: cfg["max_file_mb"] * mb,
    }
    if not cfg.get("nproc", True):
        del pairs[resource.RLIMIT_NPROC]
    for which, value in pairs.items():
        _soft, hard = resource.prlimit(pid, which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.prlimit(pid, which, (value, value))
    if cfg.get("cpus"):
        os.sched_setaffinity(pid, cfg["cpus"])


def _await_job(cfg: dict, proc: subprocess.Popen) -> bool:
    """Standby: the command is started and getting ready (imports). Once it says so (one line on its stdout, or
    it died), tell the host READY; wait for the host's job line, then apply the job's limits and let the command
    go. False when the host closed the pipe instead (the standby is discarded)."""
    _read_line(proc.stdout.fileno())
    sys.stdout.buffer.write(READY)
    sys.stdout.buffer.flush()
    line = sys.stdin.buffer.readline()
    if not line.strip():
        return False
    cfg.update(json.loads(line))
    _job_limits(cfg, proc.pid)
    try:
        proc.stdin.write(b"go\n")
        proc.stdin.close()
    except OSError:
        pass  # it died while standing by: its exit status tells
    return True


def _read_line(fd: int, limit: int = 256) -> bytes:
    """One short line, a byte at a time (nothing after it is consumed: the rest is the command's stdout tail)."""
    line = b""
    while len(line) < limit and not line.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        line += chunk
    return line


def _run(cfg: dict, command: list[str]) -> tuple[dict, bytes, bytes] | None:
    bpf = base64.b64decode(cfg["seccomp"]) if cfg.get("seccomp") else None
    standby = bool(cfg.get("standby"))

    def preexec() -> None:
        _limits(cfg)
        if bpf is not None:
            _install_seccomp(bpf)

    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE if standby else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=preexec,
            start_new_session=True,
            close_fds=True,
            cwd="/tmp",
            env={k: v for k, v in os.environ.items() if k in cfg["env_keys"]},  # not PWD (bwrap), HOSTNAME (docker)
        )
    except (OSError, subprocess.SubprocessError) as exc:  # a failing preexec (limits, seccomp) lands here too
        error = f"cannot start {command[0]}: {exc}".encode()
        if standby:
            sys.stdin.buffer.readline()  # answer when the job comes, as a cold run would
        return {"exit_code": 127, "signal": None, "timed_out": False}, b"", error
    if standby:
        if not _await_job(cfg, proc):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session (start_new_session)
            proc.wait()
            return None
        started = time.monotonic()
    tails = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    sel = selectors.DefaultSelector()
    for f in (proc.stdout, proc.stderr):
        os.set_blocking(f.fileno(), False)
        sel.register(f.fileno(), selectors.EVENT_READ)
    exited = os.pidfd_open(proc.pid)  # readable once the algorithm exits: no polling delay
    sel.register(exited, selectors.EVENT_READ)
    deadline = started + cfg["wall_seconds"]
    timed_out = False
    while proc.poll() is None:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        for key, _ in sel.select(left):
            if key.fd != exited:
                _drain(key.fd, tails, sel)
    sel.unregister(exited)
    os.close(exited)
    targets = [lambda: os.killpg(proc.pid, signal.SIGKILL)]
    if os.getpid() <= 2:  # first in a pid namespace of our own (Docker: 1, under bwrap's init: 2); never the host's
        targets.append(lambda: os.kill(-1, signal.SIGKILL))
    for target in targets:
        try:
            target()  # the algorithm's session, then every process in this sandbox but us (and its init)
        except (ProcessLookupError, PermissionError):
            pass
    rc = proc.wait()
    for fd in list(sel.get_map()):
        _drain(fd, tails, sel, final=True)
    head = {"exit_code": None if timed_out or rc < 0 else rc, "signal": -rc if rc < 0 else None, "timed_out": timed_out}
    return head, bytes(tails[proc.stdout.fileno()]), bytes(tails[proc.stderr.fileno()])


def _drain(fd: int, tails: dict, sel: selectors.BaseSelector, final: bool = False) -> None:
    """Read what the pipe holds into its tail; while the algorithm runs, at most 1 MiB per call, so a flood
    cannot keep the supervisor from its clock."""
    reads = 0
    while final or reads < 16:
        reads += 1
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            if final:
                sel.unregister(fd)
            return
        if not chunk:
            sel.unregister(fd)
            return
        buf = tails[fd]
        buf += chunk
        if len(buf) > TAIL:
            del buf[: len(buf) - TAIL]


def _collect(max_bytes: int) -> tuple[list[tuple[str, str]], str | None]:
    """Regular files under /output as (path, relative name); the first problem found, if any."""
    files: list[tuple[str, str]] = []
    total = 0
    for root, dirs, names in os.walk(OUTPUT, followlinks=False):
        for name in sorted(dirs + names):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, OUTPUT)
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                continue
            if stat.S_ISLNK(st.st_mode):
                return files, "an output is a symbolic link; only regular files may be written to /output"
            if not stat.S_ISREG(st.st_mode):
                return files, "an output is not a regular file; only regular files may be written to /output"
            if st.st_nlink > 1:
                return files, "an output is a hard link; write each output as its own file"
            total += st.st_size
            if total > max_bytes:
                return files, f"outputs exceed the cap of {max_bytes} bytes"
            files.append((path, rel))
    return files, None


def main(argv: list[str]) -> int:
    _no_dump()
    cfg = json.loads(argv[1])
    command = argv[argv.index("--") + 1 :]
    ran = _run(cfg, command)
    if ran is None:
        return 0  # a standby that was never used
    head, out_tail, err_tail = ran
    files, problem = _collect(cfg["output_max_bytes"])
    head.update(stdout_len=len(out_tail), stderr_len=len(err_tail), output_error=problem)
    encoded = cfg.get("encoding") == "base64"  # Docker's log driver is not binary-safe
    sink = io.BytesIO() if encoded else sys.stdout.buffer
    sink.write(MAGIC + json.dumps(head).encode() + b"\n" + out_tail + err_tail)
    if problem is None:
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for path, rel in files:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd, "rb") as fh:
                    info = tar.gettarinfo(arcname=rel, fileobj=fh)
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    info.mode = 0o644
                    tar.addfile(info, fh)
    if encoded:
        sys.stdout.buffer.write(base64.encodebytes(sink.getvalue()))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
