"""Hostile algorithms at the sandbox level (issue 5, item 8), one test each, on every backend.

Each algorithm tries the attack and reports what happened; each test asserts the real effect on the host (a
listener that received nothing, a marker file untouched, no leftover processes, nothing copied out) and that
the run ended failed/killed or the action was blocked. Limits are small so the suite stays quick.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from compute_to_data.sandbox.base import read_output_file
from tests.sandbox.limits import SMALL

PROJECT = Path(__file__).resolve().parents[2]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _sandbox_processes() -> list[int]:
    """Our descendants that belong to a sandbox: bwrap itself or anything in another pid namespace (other
    fixtures' long-lived children, e.g. connector servers, are not counted)."""
    own_ns = os.readlink("/proc/self/ns/pid")
    found = []
    for pid in _descendants(os.getpid()):
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
            other_ns = os.readlink(f"/proc/{pid}/ns/pid") != own_ns
        except OSError:
            continue
        if other_ns or argv0.endswith(b"bwrap"):
            found.append(pid)
    return found


def _our_containers() -> list[str]:
    try:
        import docker

        client = docker.from_env(timeout=10)
        flt = {"label": f"org.sovra.c2d.host-pid={os.getpid()}"}
        return [c.id for c in client.containers.list(all=True, filters=flt)]
    except Exception:
        return []


@pytest.fixture(autouse=True)
def host_stays_healthy() -> Iterator[None]:
    """After every hostile run: no sandbox process or container left behind, and the host can still fork."""
    yield
    deadline = time.monotonic() + 5
    while (_sandbox_processes() or _our_containers()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _sandbox_processes() == [], "sandbox processes outlived the run"
    assert _our_containers() == [], "a job container was left behind"
    assert subprocess.run([sys.executable, "-c", "print(1)"], capture_output=True).stdout == b"1\n"


def _report(result) -> dict:
    lines = [line for line in result.stdout_tail.decode(errors="replace").splitlines() if line.startswith("{")]
    assert lines, result
    return json.loads(lines[-1])


# -- network ---------------------------------------------------------------------------------------------------


def _host_addresses() -> list[str]:
    addrs = {"127.0.0.1"}
    try:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.connect(("10.255.255.255", 9))
        addrs.add(probe.getsockname()[0])
        probe.close()
    except OSError:
        pass
    return sorted(addrs)


def test_outbound_tcp_reaches_nothing(run_python) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("0.0.0.0", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    result = run_python(
        f"""
        import json, socket
        report = {{}}
        for host in {_host_addresses()!r} + ["1.1.1.1"]:
            try:
                s = socket.create_connection((host, {port} if host != "1.1.1.1" else 80), timeout=2)
                s.sendall(b"LEAK")
                report[host] = "connected"
            except OSError as exc:
                report[host] = f"blocked: {{exc}}"
        print(json.dumps(report))
        """
    )
    report = _report(result)
    assert all(v.startswith("blocked") for v in report.values()), report
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody ever connected
    listener.close()


def test_outbound_udp_reaches_nothing(run_python) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("0.0.0.0", 0))
    receiver.setblocking(False)
    port = receiver.getsockname()[1]
    result = run_python(
        f"""
        import json, socket
        report = {{}}
        for host in {_host_addresses()!r}:
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.sendto(b"LEAK", (host, {port}))
                report[host] = "sent"
            except OSError as exc:
                report[host] = f"blocked: {{exc}}"
        print(json.dumps(report))
        """
    )
    report = _report(result)
    assert all(v.startswith("blocked") for v in report.values()), report
    time.sleep(0.2)
    with pytest.raises(BlockingIOError):
        receiver.recvfrom(100)  # no datagram arrived
    receiver.close()


def test_dns_resolution_fails(run_python, sandbox) -> None:
    result = run_python(
        """
        import json, os, socket
        report = {"resolv.conf": os.path.exists("/etc/resolv.conf")}
        for name in ("example.com", "localhost.localdomain", "host.docker.internal"):
            try:
                report[name] = socket.getaddrinfo(name, 53)[0][4][0]
            except OSError as exc:
                report[name] = f"blocked: {exc}"
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b"\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x07example\\x03com\\x00\\x00\\x01\\x00\\x01",
                     ("8.8.8.8", 53))
            s.settimeout(2)
            report["raw"] = repr(s.recvfrom(512))
        except OSError as exc:
            report["raw"] = f"blocked: {exc}"
        print(json.dumps(report))
        """
    )
    report = _report(result)
    has_resolv_conf = report.pop("resolv.conf")
    assert has_resolv_conf is (sandbox.name == "docker")  # Docker always mounts one, even with network none
    assert all(str(v).startswith("blocked") for v in report.values()), report


def test_af_inet_sockets_are_refused_by_seccomp(run_python) -> None:
    """Even inside an empty network namespace, creating an INET/NETLINK/PACKET socket fails: seccomp is active."""
    result = run_python(
        """
        import json, socket
        report = {}
        for fam in ("AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"):
            try:
                socket.socket(getattr(socket, fam), socket.SOCK_DGRAM if fam != "AF_PACKET" else socket.SOCK_RAW)
                report[fam] = "created"
            except OSError as exc:
                report[fam] = exc.errno
        a, b = socket.socketpair(socket.AF_UNIX)
        a.send(b"x")
        report["AF_UNIX"] = b.recv(1).decode()
        print(json.dumps(report))
        """
    )
    report = _report(result)
    assert report.pop("AF_UNIX") == "x"
    assert set(report.values()) == {97}, report  # EAFNOSUPPORT from the filter


# -- host files ------------------------------------------------------------------------------------------------


def test_connector_data_dir_keys_and_db_are_unreachable(run_python, job, host_secret: Path) -> None:
    key = host_secret / "keys" / "did-key.pem"
    before = key.read_bytes()
    result = run_python(
        """
        import json, os
        report, loot = {}, []
        data = os.environ["TARGET"]
        for path in (data, data + "/keys/did-key.pem", data + "/sovra.db", "/proc/1/root" + data + "/keys/did-key.pem",
                     "/proc/self/root" + data):
            try:
                if os.path.isdir(path):
                    loot.append(str(os.listdir(path)))
                with open(path, "rb") as fh:
                    loot.append(fh.read().decode(errors="replace"))
                report[path] = "read"
            except OSError as exc:
                report[path] = f"blocked: {exc.strerror}"
        for root, dirs, files in os.walk("/", onerror=lambda e: None):
            dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/usr", "/dev")]
            for name in files:
                try:
                    with open(os.path.join(root, name), "rb") as fh:
                        if b"SECRET" in fh.read():
                            loot.append(os.path.join(root, name))
                except OSError:
                    pass
        open("/output/loot.txt", "w").write("\\n".join(loot))
        print(json.dumps(report))
        """,
        env={"TARGET": str(host_secret)},
    )
    report = _report(result)
    assert all(v.startswith("blocked") for v in report.values()), report
    loot = read_output_file(job.output, "loot.txt", 1 << 20) if result.exit_code == 0 else b""
    assert b"SECRET" not in loot and b"SECRET" not in result.stdout_tail + result.stderr_tail
    assert key.read_bytes() == before


def _interpreter_path_parts() -> dict[str, set[str]]:
    """Directories the sandbox shows on the way to the interpreter's prefix (e.g. /root/.pyenv/...): only those."""
    parts: dict[str, set[str]] = {}
    prefix = Path(sys.base_prefix).resolve()
    for parent in [*reversed(prefix.parents), prefix][1:]:
        parts.setdefault(str(parent.parent), set()).add(parent.name)
    return parts


def test_other_host_files_are_unreachable(run_python) -> None:
    targets = [
        "/etc/shadow",
        "/etc/hostname",
        "/etc/machine-id",
        "/root",
        "/home",
        str(PROJECT),
        str(PROJECT / "pyproject.toml"),
        "/var/lib",
        "/run",
        "/var/run/docker.sock",
        "/etc/ssh",
        "/work",
    ]
    result = run_python(
        f"""
        import json, os
        report = {{}}
        for path in {targets!r}:
            try:
                report[path] = sorted(os.listdir(path)) if os.path.isdir(path) else open(path, "rb").read().hex()
            except OSError as exc:
                report[path] = f"blocked: {{exc.strerror}}"
        print(json.dumps(report))
        """
    )
    report = _report(result)
    allowed_dirs = _interpreter_path_parts()
    for path, seen in report.items():
        if isinstance(seen, list):
            assert set(seen) <= allowed_dirs.get(path, set()), (path, seen)
        elif not seen.startswith("blocked"):
            host = Path(path)
            assert not host.is_file() or bytes.fromhex(seen) != host.read_bytes(), f"host file {path} was readable"


def test_proc_and_sys_show_nothing_of_the_host(run_python, sandbox) -> None:
    result = run_python(
        """
        import json, os
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
        cmds = []
        for p in pids:
            try:
                cmds.append(open(f"/proc/{p}/cmdline", "rb").read().replace(b"\\0", b" ").decode())
            except OSError:
                pass
        sys_entries = os.listdir("/sys") if os.path.isdir("/sys") else None
        try:
            open("/sys/kernel/uevent_helper", "w").write("/tmp/x")
            sys_write = "written"
        except OSError as exc:
            sys_write = f"blocked: {exc.strerror}"
        try:
            open("/proc/sys/kernel/hostname", "w").write("pwned")
            proc_write = "written"
        except OSError as exc:
            proc_write = f"blocked: {exc.strerror}"
        print(json.dumps({"pids": pids, "cmds": cmds, "sys": sys_entries, "sys_write": sys_write,
                          "proc_write": proc_write}))
        """
    )
    report = _report(result)
    assert len(report["pids"]) <= 4, report  # init/supervisor/algorithm only
    assert not any(word in c for c in report["cmds"] for word in ("pytest", "dockerd", "containerd", "init")), report
    if sandbox.name == "bubblewrap":
        assert report["sys"] is None
    assert report["sys_write"].startswith("blocked") and report["proc_write"].startswith("blocked")
    assert socket.gethostname() != "pwned"


def test_writing_outside_output_fails(run_python, job) -> None:
    records = (job.input / "records.jsonl").read_bytes()
    result = run_python(
        """
        import json
        report = {}
        for path in ("/algorithm/main.py", "/algorithm/new.py", "/input/records.jsonl", "/input/x", "/x", "/usr/x",
                     "/etc/passwd", "/runtime/supervisor.py", "/opt/sovra/venv/lib/evil.pth", "/dev/x",
                     "/dev/shm/../x", "/proc/x"):
            try:
                open(path, "a").write("pwned")
                report[path] = "written"
            except OSError as exc:
                report[path] = f"blocked: {exc.strerror}"
        print(json.dumps(report))
        """
    )
    report = _report(result)
    assert all(v.startswith("blocked") for v in report.values()), [k for k, v in report.items() if "blocked" not in v]
    assert b"pwned" not in (job.algorithm / "main.py").read_bytes().replace(b'write("pwned")', b"")
    assert not (job.algorithm / "new.py").exists() and not (job.input / "x").exists()
    assert (job.input / "records.jsonl").read_bytes() == records


# -- links -----------------------------------------------------------------------------------------------------


def test_symlink_in_output_is_refused_and_not_followed(run_python, job, host_secret: Path) -> None:
    key = host_secret / "keys" / "did-key.pem"
    result = run_python(
        """
        import os
        os.symlink(os.environ["TARGET"], "/output/results.jsonl")
        os.symlink("/etc/passwd", "/output/passwd")
        os.mkdir("/output/d")
        os.symlink("/", "/output/d/root")
        """,
        env={"TARGET": str(key)},
    )
    assert result.exit_code is None and "symbolic link" in (result.killed_reason or ""), result
    assert not job.output.exists() or [p for p in job.output.rglob("*")] == []
    assert b"SECRET" not in result.stdout_tail + result.stderr_tail


def test_hardlink_escapes_fail(run_python, job) -> None:
    result = run_python(
        """
        import json, os
        report = {}
        for src in ("/input/records.jsonl", "/algorithm/main.py", "/etc/passwd"):
            try:
                os.link(src, "/output/" + os.path.basename(src))
                report[src] = "linked"
            except OSError as exc:
                report[src] = f"blocked: {exc.strerror}"
        open("/output/a.txt", "w").write("x")
        os.link("/output/a.txt", "/output/b.txt")
        print(json.dumps(report))
        """
    )
    report = _report(result)
    assert all(v.startswith("blocked") for v in report.values()), report
    assert result.exit_code is None and "hard link" in (result.killed_reason or ""), result
    assert not job.output.exists() or list(job.output.iterdir()) == []


# -- resources -------------------------------------------------------------------------------------------------


def test_process_limit_stops_forking(run_python) -> None:
    limits = replace(SMALL, max_processes=16)
    result = run_python(
        """
        import json, os, time
        forks, error = 0, None
        while forks < 200:
            try:
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                forks += 1
            except OSError as exc:
                error = exc.strerror
                break
        print(json.dumps({"forks": forks, "error": error}))
        """,
        limits=limits,
    )
    report = _report(result)
    assert report["error"] and report["forks"] <= limits.max_processes, report


def test_fork_bomb_is_contained(run_python) -> None:
    limits = replace(SMALL, wall_seconds=4, max_processes=16)
    result = run_python(
        """
        import os, time
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.01)
        """,
        limits=limits,
    )
    assert result.timed_out and result.killed_reason.startswith("timeout"), result


def test_memory_bomb_fails(run_python) -> None:
    result = run_python(
        """
        chunks = []
        while True:
            chunks.append(bytearray(64 << 20))
        """,
        limits=replace(SMALL, memory_mb=256),
    )
    assert result.exit_code != 0 and result.output_bytes == 0, result
    assert b"MemoryError" in result.stderr_tail or result.killed_reason, result


def test_cpu_spin_past_the_wall_clock_is_killed(run_python) -> None:
    started = time.monotonic()
    result = run_python("while True: pass", limits=replace(SMALL, wall_seconds=2, cpu_seconds=60))
    assert result.timed_out and result.exit_code is None and result.killed_reason.startswith("timeout"), result
    assert time.monotonic() - started < 15


def test_cpu_time_limit_kills(run_python) -> None:
    result = run_python("while True: pass", limits=replace(SMALL, wall_seconds=20, cpu_seconds=1))
    assert result.exit_code is None and not result.timed_out, result
    assert result.killed_reason.startswith(("cpu time", "killed by SIGKILL")), result


def test_disk_fill_of_tmp_hits_the_tmpfs_cap(run_python) -> None:
    result = run_python(
        """
        import json
        written, error = 0, None
        try:
            with open("/tmp/fill", "wb") as fh:
                while written < (64 << 20):
                    fh.write(b"x" * (1 << 20))
                    fh.flush()
                    written += 1 << 20
        except OSError as exc:
            error = exc.strerror
        print(json.dumps({"written": written, "error": error}))
        raise SystemExit(1 if error else 0)
        """
    )
    report = _report(result)
    assert report["error"] and report["written"] <= SMALL.tmpfs_mb << 20, report
    assert result.exit_code == 1


def test_disk_fill_of_output_is_capped_and_refused(run_python, job) -> None:
    result = run_python(
        """
        import json
        written, error, i = 0, None, 0
        try:
            while written < (64 << 20):
                with open(f"/output/part{i}", "wb") as fh:
                    fh.write(b"x" * (256 << 10))
                written += 256 << 10
                i += 1
        except OSError as exc:
            error = exc.strerror
        print(json.dumps({"written": written, "error": error}))
        """
    )
    report = _report(result)
    assert report["error"] and report["written"] <= SMALL.output_max_bytes + (64 << 10), report
    assert result.exit_code is None and "exceed the cap" in (result.killed_reason or ""), result
    assert not job.output.exists() or list(job.output.iterdir()) == []


def test_huge_output_and_stdout_flood(run_python, job) -> None:
    result = run_python(
        """
        import sys
        sys.stdout.write("y" * (8 << 20))
        sys.stderr.write("z" * (8 << 20))
        with open("/output/results.jsonl", "w") as fh:
            for i in range(100000):
                fh.write('{"_record": "r1", "v": "%s"}\\n' % ("x" * 64))
        """
    )
    assert result.exit_code is None and result.killed_reason, result
    assert len(result.stdout_tail) <= 64 << 10 and len(result.stderr_tail) <= 64 << 10
    assert not job.output.exists() or list(job.output.iterdir()) == []


def test_endless_stdout_flood_still_times_out(run_python) -> None:
    started = time.monotonic()
    result = run_python(
        """
        import os
        block = b"x" * 65536
        while True:
            os.write(1, block)
            os.write(2, block)
        """,
        limits=replace(SMALL, wall_seconds=2),
    )
    assert result.timed_out and result.killed_reason.startswith("timeout"), result
    assert len(result.stdout_tail) <= 64 << 10 and time.monotonic() - started < 15


def test_single_file_over_the_file_size_limit(run_python) -> None:
    result = run_python(
        """
        with open("/tmp/big", "wb") as fh:
            fh.write(b"x" * (9 << 20))
        """,
        limits=replace(SMALL, max_file_mb=2, tmpfs_mb=16),
    )
    # Python ignores SIGXFSZ, so the write fails with EFBIG; a program that does not is killed by the signal.
    assert result.exit_code != 0, result
    assert b"File too large" in result.stderr_tail or "file size" in (result.killed_reason or ""), result


# -- processes and privileges ----------------------------------------------------------------------------------


def test_signals_cannot_reach_the_host(run_python) -> None:
    victim = subprocess.Popen(["sleep", "30"])
    try:
        result = run_python(
            """
            import json, os, signal
            report = {}
            for name, target in (("victim", int(os.environ["VICTIM"])), ("ppid", os.getppid()), ("init", 1),
                                 ("all", -1)):
                try:
                    os.kill(target, signal.SIGKILL)
                    report[name] = "sent"
                except OSError as exc:
                    report[name] = f"blocked: {exc.strerror}"
            print(json.dumps(report))
            """,
            env={"VICTIM": str(victim.pid)},
        )
        assert victim.poll() is None, "a host process was killed from inside the sandbox"
        # Killing its own supervisor only fails the job; it never reaches anything outside.
        if result.killed_reason is None:
            report = _report(result)
            assert report["victim"].startswith("blocked"), report
        else:
            assert result.exit_code is None and "supervisor" in result.killed_reason, result
    finally:
        victim.kill()
        victim.wait()


def test_setuid_and_capabilities_are_refused(run_python) -> None:
    result = run_python(
        """
        import json, os, stat
        report = {}
        for name, call in (("setuid", lambda: os.setuid(0)), ("setgid", lambda: os.setgid(0)),
                           ("setresuid", lambda: os.setresuid(0, 0, 0)), ("chown", lambda: os.chown("/tmp", 0, 0))):
            try:
                call()
                report[name] = "allowed"
            except OSError as exc:
                report[name] = f"blocked: {exc.strerror}"
        status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
        report["caps"] = status["CapEff"].strip()
        report["nnp"] = status["NoNewPrivs"].strip()
        suid = []
        for d in ("/usr/bin", "/usr/sbin", "/bin"):
            if os.path.isdir(d):
                suid += [os.path.join(d, f) for f in os.listdir(d)
                         if os.path.isfile(os.path.join(d, f)) and os.stat(os.path.join(d, f)).st_mode & stat.S_ISUID]
        report["suid_runs"] = []
        import subprocess
        for path in suid[:5]:
            out = subprocess.run([path, "--help"], capture_output=True, timeout=5)
            report["suid_runs"].append(os.geteuid())
        report["euid"] = os.geteuid()
        print(json.dumps(report))
        """
    )
    report = _report(result)
    assert all(report[k].startswith("blocked") for k in ("setuid", "setgid", "setresuid", "chown")), report
    assert int(report["caps"], 16) == 0 and report["nnp"] == "1" and report["euid"] != 0, report


def test_ptrace_is_refused(run_python) -> None:
    result = run_python(
        """
        import ctypes, json, os, signal, time
        libc = ctypes.CDLL(None, use_errno=True)
        report = {}
        child = os.fork()
        if child == 0:
            time.sleep(5)
            os._exit(0)
        for name, args in (("attach_child", (16, child, 0, 0)), ("attach_parent", (16, os.getppid(), 0, 0)),
                           ("attach_init", (16, 1, 0, 0)), ("seize_child", (0x4206, child, 0, 0))):
            rc = libc.ptrace(*args)
            report[name] = "allowed" if rc == 0 else f"blocked: {os.strerror(ctypes.get_errno())}"
        try:
            fd = os.open(f"/proc/{child}/mem", os.O_RDONLY)
            report["proc_mem"] = "opened"
            os.close(fd)
        except OSError as exc:
            report["proc_mem"] = f"blocked: {exc.strerror}"
        os.kill(child, signal.SIGKILL)
        print(json.dumps(report))
        """
    )
    report = _report(result)
    for name in ("attach_child", "attach_parent", "attach_init", "seize_child"):
        assert report[name].startswith("blocked"), report


def test_new_namespaces_are_refused(run_python) -> None:
    result = run_python(
        """
        import ctypes, json, os
        libc = ctypes.CDLL(None, use_errno=True)
        report = {}
        for name, flag in (("user", 0x10000000), ("net", 0x40000000), ("mount", 0x00020000)):
            rc = libc.unshare(flag)
            report[name] = "allowed" if rc == 0 else f"blocked: {os.strerror(ctypes.get_errno())}"
        print(json.dumps(report))
        """
    )
    report = _report(result)
    assert all(v.startswith("blocked") for v in report.values()), report
