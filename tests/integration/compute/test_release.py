"""Released jobs in the real bubblewrap sandbox: aggregate with noise, subject results, budget, consent changes."""

from __future__ import annotations

import time

from sqlalchemy import select

from compute_to_data.receipts import verify_receipt
from connector.persistence.tables import AuditEventRow, PrivacyBudgetRow, PrivacyChargeRow
from connector.services import audit, subject_results
from tests.integration.compute.conftest import STUDENTS, World


def _subjects(world: World, job_id: str) -> dict[str, object]:
    with world.db.read_only() as session:
        return subject_results.subjects_of(session, job_id)


def test_a_released_job(sandboxed: World) -> None:
    world = sandboxed
    for subject in ("alice", "bob", "carol"):
        world.consent(subject)
    digest = world.publish("career-match", world.b)
    job_id = world.request(dpEpsilon=0.5)
    job = world.run(job_id)
    assert job.state == "RELEASED", (job.reason, job.events, job.logs)
    assert job.algorithm_digest == digest and job.algorithm_signer == world.b.did
    assert job.record_count == 3 and job.input_digest and job.input_digest.startswith("sha256:")
    assert job.backend == "bubblewrap" and job.limits["wall_seconds"] == 30
    # the aggregate is noised: a number near the true mean of the three consenting students, B's only output
    assert set(job.outputs) == {"meanScore"}
    true_mean = (0.7 + 0.6 + 0.5) / 3
    assert isinstance(job.outputs["meanScore"], float) and abs(job.outputs["meanScore"] - true_mean) < 5
    assert job.epsilon_charged == 0.5
    # each consenting student has her own result; dave (no consent) never ran
    assert _subjects(world, job_id) == {"alice": {"score": 0.7}, "bob": {"score": 0.6}, "carol": {"score": 0.5}}
    # the receipt is A's signature over digests, counts, epsilon and outputs
    verified = verify_receipt(job.receipt, world.connector.did_resolver.resolve)
    predicate = verified.statement["predicate"]
    assert predicate["state"] == "RELEASED" and predicate["algorithm"]["digest"] == digest
    assert predicate["input"] == {"digest": job.input_digest, "recordCount": 3}
    assert predicate["epsilonCharged"] == 0.5 and set(predicate["outputs"]) == {"meanScore"}
    # the ledger was charged once, in the release
    with world.db.read_only() as session:
        assert session.get(PrivacyBudgetRow, "students").spent == 0.5
        assert [c.job_id for c in session.scalars(select(PrivacyChargeRow))] == [job_id]
        assert audit.verify_chain(session).ok
        kinds = [r.kind for r in session.scalars(select(AuditEventRow).where(AuditEventRow.job_id == job_id))]
    assert kinds == ["job.queued", "job.fetching", "job.verifying", "job.running", "job.gating", "job.released"]
    # events are the connector's lines only; the algorithm's stderr (which printed names) is scrubbed
    text = repr(job.events)
    for student in STUDENTS:
        assert student["name"] not in text and student["name"] not in repr(job.logs)
    assert "[redacted]" in job.logs["stderr"] and "scoring 3 records" in job.logs["stdout"]
    assert [e["state"] for e in job.events][-1] == "RELEASED"


def test_a_revocation_keeps_her_record_out_of_the_next_job(sandboxed: World) -> None:
    world = sandboxed
    for subject in ("alice", "bob", "carol"):
        world.consent(subject)
    world.publish("career-match", world.b)
    first = world.run(world.request())
    assert first.state == "RELEASED" and first.record_count == 3
    world.consent("carol", "revoke")
    second = world.run(world.request())
    assert second.state == "RELEASED", second.reason
    assert second.record_count == 2
    assert set(_subjects(world, second.id)) == {"alice", "bob"}
    assert second.input_digest != first.input_digest


def test_the_budget_runs_out_across_jobs(sandboxed: World) -> None:
    """Budget 1.0 on the asset: two jobs of 0.5 are released, the third is refused with both numbers."""
    world = sandboxed
    with world.db.unit_of_work() as uow:
        from connector.persistence.tables import AssetRow

        uow.get(AssetRow, "students").properties = {"c2d:subjectField": "subject", "c2d:epsilonBudget": 1.0}
    for subject in ("alice", "bob"):
        world.consent(subject)
    world.publish("career-match", world.b)
    assert world.run(world.request(dpEpsilon=0.5)).state == "RELEASED"
    assert world.run(world.request(dpEpsilon=0.5)).state == "RELEASED"
    third = world.run(world.request(dpEpsilon=0.5))
    assert third.state == "REJECTED" and "epsilon 0.5" in third.reason and "has 0 of its privacy budget 1" \
        in third.reason, third.reason


def test_an_output_below_the_minimum_aggregation_is_refused(sandboxed: World) -> None:
    world = sandboxed
    world.consent("alice")
    world.consent("bob")
    world.publish("career-match", world.b)
    job = world.run(world.request(minAggregationSize=3))
    assert job.state == "REJECTED" and "release gate refused" in job.reason, job.reason
    with world.db.read_only() as session:
        assert session.get(PrivacyBudgetRow, "students").spent == 0.0
    assert job.outputs is None
    assert _subjects(world, job.id) == {"alice": None, "bob": None}


def test_an_algorithm_that_crashes_is_failed(sandboxed: World) -> None:
    world = sandboxed
    world.consent("alice")
    world.consent("bob")
    world.publish("career-match", world.b, main="import sys\nprint('Alice Liddell', file=sys.stderr)\nsys.exit(3)\n")
    job = world.run(world.request())
    assert job.state == "FAILED" and "exited with an error" in job.reason, job.reason
    assert job.logs["exitCode"] == 3 and "code 3" not in job.reason  # the code stays with A's operator
    assert "Alice Liddell" not in repr(job.logs) and "[redacted]" in job.logs["stderr"]


def test_a_link_as_output_never_leaves(sandboxed: World) -> None:
    world = sandboxed
    world.consent("alice")
    world.consent("bob")
    world.publish("career-match", world.b, main="import os\nos.symlink('/input/records.jsonl', "
                                                 "'/output/results.jsonl')\n")
    job = world.run(world.request())
    assert job.state in ("REJECTED", "FAILED") and "link" in job.reason, (job.state, job.reason)
    assert job.outputs is None and _subjects(world, job.id) == {"alice": None, "bob": None}
    assert "Alice" not in repr(job.events) and "Alice" not in (job.reason or "")


def test_raw_rows_in_the_output_are_refused(sandboxed: World) -> None:
    world = sandboxed
    world.consent("alice")
    world.consent("bob")
    leak = ("import json\nrows=[json.loads(l) for l in open('/input/records.jsonl')]\n"
            "open('/output/results.jsonl','w').write(''.join(json.dumps({'_record': r['_record'], 'score': 0.5, "
            "'name': r['name']})+'\\n' for r in rows))\n")
    world.publish("career-match", world.b, main=leak)
    job = world.run(world.request())
    assert job.state == "REJECTED" and "release gate refused" in job.reason, job.reason
    assert "Alice" not in job.reason and job.outputs is None


class SpyingSandbox:
    """The real sandbox, with a copy of what each run was given: to prove what reached /input."""

    def __init__(self, real: object) -> None:
        self.real, self.name, self.inputs = real, real.name, []  # type: ignore[attr-defined]

    def available(self) -> object:
        return self.real.available()  # type: ignore[attr-defined]

    def run(self, spec: object) -> object:
        folder = spec.input_dir  # type: ignore[attr-defined]
        self.inputs.append({p.name: p.read_text() for p in folder.iterdir()})
        return self.real.run(spec)  # type: ignore[attr-defined]


def test_only_consenting_records_and_declared_columns_reach_the_input(sandboxed: World) -> None:
    import json

    from connector.services.compute_jobs import job_dir

    world = sandboxed
    spy = SpyingSandbox(world.rt.sandbox)
    world.rt.sandbox = spy  # type: ignore[assignment]
    world.consent("alice")
    world.consent("dave")
    world.consent("bob", provider="did:web:someone-else.example")
    world.publish("career-match", world.b)
    job = world.run(world.request(minAggregationSize=2))
    assert job.state == "RELEASED", job.reason
    [given] = spy.inputs
    assert set(given) == {"records.jsonl", "parameters.json"}
    records = [json.loads(line) for line in given["records.jsonl"].splitlines()]
    assert records == [{"_record": "r1", "name": "Alice Liddell", "python": 8, "sql": 6},
                       {"_record": "r2", "name": "Dave Grohl", "python": 9, "sql": 2}]
    assert "subject" not in given["records.jsonl"] and "email" not in given["records.jsonl"]
    assert json.loads(given["parameters.json"])["dpEpsilon"] == 0.5
    assert not job_dir(world.rt, job.id).exists(), "the staged input must not outlive the job"
    trash = job_dir(world.rt, job.id).parent.parent / "trash"
    for _ in range(100):  # the cleanup thread deletes what the job's end renamed away
        if not any(trash.iterdir()):
            break
        time.sleep(0.02)
    assert not any(trash.iterdir()), "the ended job's folder is still in the trash"


def test_what_a_crash_left_in_the_trash_goes_at_the_next_idle_pass(sandboxed: World) -> None:
    from connector.services.compute_jobs import empty_trash, job_dir

    leftover = job_dir(sandboxed.rt, "x").parent.parent / "trash" / "crashed-job-1234" / "input"
    leftover.mkdir(parents=True)
    (leftover / "records.jsonl").write_text('{"_record": "r1"}\n')
    empty_trash(sandboxed.rt)
    assert not any(leftover.parent.parent.iterdir())
