"""What every hostile-job test checks from the host, whatever the attack: the job ended REJECTED or FAILED with a
reason, nothing was released, no secret reached anything a person can see, the sandbox left nothing behind, and
the connector still releases a normal job afterwards.

Used by test_hostile_jobs.py; the attacks themselves live there, one test each.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from compute_to_data.receipts import verify_receipt
from compute_to_data.sandbox.base import Availability, Sandbox, SandboxResult, SandboxSpec
from connector.persistence.tables import (
    AuditEventRow,
    ComputeJobRow,
    PrivacyBudgetRow,
    PrivacyChargeRow,
)
from connector.services import audit, subject_results
from connector.services.compute_jobs import job_dir, job_json

BLOCKED = 42  # a hostile algorithm exits with this when every attempt was blocked (so the job FAILS)

# Written before every hostile algorithm: `attempt` runs one try and records what happened; `finish` exits
# BLOCKED when nothing worked, and otherwise leaks what it got every way it can and ends as a good job would, so
# a hole shows up twice: as a RELEASED job and as loot in the logs.
PRELUDE = r'''
import json, os, sys
HOST = json.loads(__HOST__)
REPORT = {}
LOOT = []


def attempt(name, action):
    """Truthy result: the attack worked (kept as loot). Falsy or an exception: it was blocked."""
    try:
        got = action()
    except BaseException as exc:  # SystemExit of a child, OSError, anything: blocked
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        REPORT[name] = "blocked: " + str(why)[:60]
        return None
    if not got:
        REPORT[name] = "blocked: nothing"
        return None
    REPORT[name] = "worked"
    LOOT.append(repr(got)[:4000])
    return got


def write(path, text):
    with open(path, "a") as fh:  # closed here: a buffered write only fails on close
        fh.write(text)
    return "written"


def read(path):
    if os.path.isdir(path):
        return os.listdir(path)
    with open(path, "rb") as fh:
        return fh.read(1 << 20)


def finish():
    print(json.dumps(REPORT, sort_keys=True))
    if not LOOT:
        sys.exit(__BLOCKED__)
    print("LOOT", LOOT)
    print("LOOT", LOOT, file=sys.stderr)
    rows = [json.loads(line) for line in open("/input/records.jsonl")]
    with open("/output/results.jsonl", "w") as out:
        for row in rows:
            out.write(json.dumps({"_record": row["_record"], "score": 0.5}) + "\n")
    sys.exit(0)

'''


def hostile_source(body: str, host: Mapping[str, Any]) -> str:
    """The algorithm's main.py: the prelude with the host facts it attacks, then the attack."""
    prelude = PRELUDE.replace("__HOST__", repr(json.dumps(host))).replace("__BLOCKED__", str(BLOCKED))
    return prelude + body


# -- the sandbox, watched from the host ------------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every entry under `folder` (links as their target, never followed): what a run saw or left."""
    found: dict[str, bytes] = {}
    if not folder.exists():
        return found
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root, name)
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                found[rel] = b"link -> " + os.readlink(path).encode()
            elif path.is_file():
                found[rel] = path.read_bytes()
    return found


@dataclass
class Run:
    spec: SandboxSpec
    input_before: dict[str, bytes]
    algorithm_before: dict[str, bytes]
    input_after: dict[str, bytes] = field(default_factory=dict)
    algorithm_after: dict[str, bytes] = field(default_factory=dict)
    output_after: dict[str, bytes] = field(default_factory=dict)
    result: SandboxResult | None = None


class WatchedSandbox:
    """The real backend; the host keeps what /input and /algorithm held before and after each run and what the
    run left in the job's host output folder."""

    def __init__(self, real: Sandbox) -> None:
        self.real, self.name = real, real.name
        self.runs: list[Run] = []

    def available(self) -> Availability:
        return self.real.available()

    def run(self, spec: SandboxSpec) -> SandboxResult:
        run = Run(spec, snapshot(Path(spec.input_dir)), snapshot(Path(spec.algorithm_dir)))
        self.runs.append(run)
        run.result = self.real.run(spec)
        run.input_after = snapshot(Path(spec.input_dir))
        run.algorithm_after = snapshot(Path(spec.algorithm_dir))
        run.output_after = snapshot(Path(spec.output_dir))
        return run.result


# -- leftovers -------------------------------------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
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


def sandbox_processes() -> list[int]:
    """Our descendants that belong to a sandbox: bwrap, or anything in another pid namespace."""
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


def job_containers() -> list[str]:
    """Job containers this test process started that still exist."""
    try:
        import docker

        client = docker.from_env(timeout=10)
        return [
            c.id for c in client.containers.list(all=True, filters={"label": f"org.sovra.c2d.host-pid={os.getpid()}"})
        ]
    except Exception:  # no docker here: nothing of ours can be left
        return []


def assert_nothing_left_behind() -> None:
    deadline = time.monotonic() + 5
    while (sandbox_processes() or job_containers()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sandbox_processes() == [], "sandbox processes outlived the job"
    assert job_containers() == [], "a job container was left behind"
    assert subprocess.run([sys.executable, "-c", "print(1)"], capture_output=True, timeout=30).stdout == b"1\n"


# -- what must never be seen -----------------------------------------------------------------------------------------


@dataclass
class Secrets:
    """Byte strings that must appear nowhere a person (B, the operator, the logs) can see. `input_only` may reach
    /input (the consenting records' declared values) but must still be scrubbed from every log."""

    never: dict[str, bytes]
    input_only: dict[str, bytes]

    def found_in(self, blob: bytes, *, allow_input: bool = False) -> list[str]:
        hits = [label for label, secret in self.never.items() if secret in blob]
        if not allow_input:
            hits += [label for label, secret in self.input_only.items() if secret in blob]
        return hits


def key_secrets(key_file: Path) -> dict[str, bytes]:
    """The key file's base64 body, line by line (any one of them in the open would be a leak)."""
    lines = [line for line in key_file.read_bytes().splitlines() if line and not line.startswith(b"-----")]
    return {f"key line {n}": line for n, line in enumerate(lines) if len(line) >= 16}


def _receipt_text(envelope: Mapping[str, Any]) -> bytes:
    payload = base64.b64decode(envelope.get("payload", ""))
    return json.dumps(envelope).encode() + payload


def job_is_contained(
    world: Any, sandbox: WatchedSandbox, secrets: Secrets, job: ComputeJobRow, state: str, keyword: str, log_text: str
) -> None:
    """The job ended `state` with a reason matching `keyword`; nothing released or charged; a receipt that
    verifies; no secret in B's view, the receipt, events, audit, operator logs or the connector's log; the staged
    input gone; the sandbox's view of /input and /algorithm unchanged and free of anything not consented."""
    assert job.state == state, (job.state, job.reason, job.logs)
    assert job.reason and re.search(keyword, job.reason), (keyword, job.reason, job.logs)
    # nothing released: no aggregates, no subject results, no epsilon
    assert not job.outputs and not job.epsilon_charged, (job.outputs, job.epsilon_charged)
    with world.db.read_only() as session:
        subjects = subject_results.subjects_of(session, job.id)
        assert [result for result in subjects.values() if result is not None] == []
        budget = session.get(PrivacyBudgetRow, job.asset_id)
        assert budget is None or budget.spent == 0.0
        assert list(session.scalars(select(PrivacyChargeRow))) == []
        events = [row.detail for row in session.scalars(select(AuditEventRow).where(AuditEventRow.job_id == job.id))]
        assert audit.verify_chain(session).ok
    # the receipt exists, verifies against A's DID and says what happened
    assert job.receipt is not None
    verified = verify_receipt(job.receipt, world.connector.did_resolver.resolve)
    predicate = verified.statement["predicate"]
    assert verified.signer_did == world.connector.settings.participant_id
    assert predicate["state"] == state and predicate["epsilonCharged"] == 0 and predicate["outputs"] == {}
    assert verified.statement["subject"] == []
    # nothing leaks: what B sees, the receipt, the events and audit, the operator's logs, the connector's log
    seen = {
        "B's view of the job": json.dumps(job_json(job, operator=False)).encode(),
        "the receipt": _receipt_text(job.receipt),
        "the audit log": json.dumps(events).encode(),
        "the operator's view of the job": json.dumps(job_json(job, operator=True)).encode(),
        "the connector's log": log_text.encode(),
    }
    for where, blob in seen.items():
        assert secrets.found_in(blob) == [], f"{where} shows {secrets.found_in(blob)}"
    assert not job_dir(world.rt, job.id).exists(), "the job's staged input outlived it"
    for run in sandbox.runs:
        given = b"".join(run.input_before.values())
        assert secrets.found_in(given, allow_input=True) == [], f"/input held {secrets.found_in(given, True)}"
        assert run.input_after == run.input_before, "the run changed /input"
        assert run.algorithm_after == run.algorithm_before, "the run changed /algorithm"
        leftovers = b"".join(run.output_after.values())
        assert secrets.found_in(leftovers, allow_input=True) == [], "a secret reached the host's output folder"
    assert_nothing_left_behind()


def report_of(job: ComputeJobRow) -> dict[str, str]:
    """The hostile algorithm's own account (its last JSON line on stdout, as kept for A's operator)."""
    lines = [line for line in ((job.logs or {}).get("stdout") or "").splitlines() if line.startswith("{")]
    assert lines, f"the algorithm printed no report: {job.logs}"
    return json.loads(lines[-1])


def all_blocked(report: Mapping[str, str], names: Iterable[str] = ()) -> None:
    worked = [name for name, what in report.items() if not what.startswith("blocked")]
    assert worked == [], f"attacks that worked: {worked} ({report})"
    missing = [name for name in names if name not in report]
    assert missing == [], f"attempts never made: {missing}"
