"""Data provider A's side of compute-to-data: accept a job, then run it one persisted step at a time.

The job row is the intent: its state names the step that comes next, and every step commits what it learnt
(digest, signer, manifest, limits, input digest...) together with the next state, only while the worker still
holds the job's lease (compare-and-set on owner and state). A worker that dies mid-step leaves a lease that runs
out, and the next claim repeats that step from what earlier steps committed; files a step leaves in the job's
work folder are rebuilt from scratch by the step that owns them.

    QUEUED     sandbox usable? (none: REJECTED, nothing fetched or run)
    FETCHING   rt.algorithm_source.fetch -> archive + DSSE envelope, copied into the job folder
    VERIFYING  digest, signature, signer DID, provenance; manifest; consent (some record consents);
               the compute policy scope; the privacy budget; limits = manifest resources capped
    RUNNING    consenting records' declared columns -> /input/records.jsonl (keys r1..rn), sandbox run
    GATING     gate.gate on /output/results.jsonl (read without following links)
    RELEASED   budget charged, subject results stored, receipt signed  (or REJECTED / FAILED with the reason)

Every final state gets a receipt signed with A's key and runs `compute_transfers.job_finished` in the same
transaction. `job.events` holds connector-written lines only; the algorithm's stdout/stderr are kept in
`job.logs` for A's operator, scrubbed of input values and truncated.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from compute_to_data import bundle, gate, receipts, signing
from compute_to_data.jobs import FINAL, JobState, next_state
from compute_to_data.manifest import Manifest, ManifestError, manifest_to_json, parse_manifest
from compute_to_data.sandbox.base import Limits, SandboxSpec, read_output_file
from compute_to_data.sandbox.outputs import OutputRefused
from connector.dataplane.sources import normalize_address
from connector.persistence.database import Database, after_commit, is_postgres
from connector.persistence.tables import AgreementRow, AssetRow, ComputeJobRow, TransferRow
from connector.services import audit, compute_transfers, consents, policy_scopes, privacy_ledger, subject_results
from connector.services.algorithm_source import (
    AlgorithmFetchError,
    AlgorithmSource,
    FetchedAlgorithm,
    NoAlgorithmSource,
)
from connector.services.runtime import Runtime
from policies.vocab import C2D, ODRL

__all__ = ["AlgorithmFetchError", "AlgorithmSource", "FetchedAlgorithm", "NoAlgorithmSource",
           "accept_compute_request", "run_job", "run_step", "job_json"]

log = logging.getLogger("sovra.compute")

PROVIDER, REQUESTER = "provider", "requester"
ACTIVE_STATES = tuple(s.value for s in JobState if s not in FINAL)
MAX_ATTEMPTS = 5  # claims of one step before the job is given up as FAILED
SUBJECT_FIELD = "subjectField"
DEFAULT_SUBJECT_FIELD = "subject"
# Caps on what a manifest may ask for (the sandbox limits are the manifest's resources, never above these).
CAP_WALL_SECONDS = 600
CAP_MEMORY_MB = 4096
CAP_CPUS = 4.0
OUTPUT_DIR_MAX_BYTES = 16 << 20  # what /output may hold; the gate's release cap is --c2d-max-output-bytes
# What a pre-started sandbox is started with: the caps, so that job_limits() always fits under them and the
# supervisor only ever lowers them to the job's.
STANDBY_LIMITS = Limits(wall_seconds=float(CAP_WALL_SECONDS), cpu_seconds=CAP_WALL_SECONDS, memory_mb=CAP_MEMORY_MB,
                        cpus=CAP_CPUS, output_max_bytes=OUTPUT_DIR_MAX_BYTES)
LOG_KEEP = 4096  # bytes of each of stdout and stderr kept for the operator
REDACTED = "[redacted]"
MIN_SCRUB_LEN = 4
DATASET_MAX_BYTES = 512 << 20


class StepOutcome(Exception):
    """A step ends the job: `state` is REJECTED (a rule said no) or FAILED (something broke)."""

    def __init__(self, state: JobState, reason: str) -> None:
        super().__init__(reason)
        self.state, self.reason = state, reason


def _reject(reason: str) -> StepOutcome:
    return StepOutcome(JobState.REJECTED, reason)


def _fail(reason: str) -> StepOutcome:
    return StepOutcome(JobState.FAILED, reason)


# -- accept ----------------------------------------------------------------------------------------------------------


def accept_compute_request(session: Session, rt: Runtime, *, transfer_row: TransferRow, agreement_row: AgreementRow,
                           algorithm_ref: str, algorithm_provider: str | None,
                           parameters: Mapping[str, Any] | None) -> ComputeJobRow:
    """Store the provider job for a Compute-PULL transfer, QUEUED, in the caller's transaction."""
    now = rt.clock()
    job = ComputeJobRow(
        id=str(uuid.uuid4()), role=PROVIDER, state=JobState.QUEUED.value, transfer_id=transfer_row.id,
        agreement_id=agreement_row.id, counterparty_id=agreement_row.consumer_id,
        counterparty_address=transfer_row.counter_party_address, asset_id=agreement_row.asset_id,
        algorithm_ref=algorithm_ref, algorithm_provider=algorithm_provider, parameters=dict(parameters or {}),
        events=[], attempts=0, created_at=now, updated_at=now)
    session.add(job)
    _event(session, rt, job, f"job requested by {agreement_row.consumer_id} (algorithm {algorithm_ref})")
    session.flush()
    after_commit(session, rt.compute_wake)
    return job


# -- the worker's entry points --------------------------------------------------------------------------------------


def lease_seconds(rt: Runtime, job: ComputeJobRow) -> float:
    """How long a claim of `job`'s next step may take before another worker may take it over."""
    if job.state == JobState.RUNNING:
        wall = float((job.limits or {}).get("wall_seconds", CAP_WALL_SECONDS))
        return wall + 120.0
    if job.state == JobState.FETCHING:
        return 600.0
    return 120.0


def run_job(db: Database, rt: Runtime, job_id: str, owner: str) -> None:
    """Run the job's steps one after another for as long as the caller holds the lease: each step's commit renews
    it for the next step, so a job is not claimed anew between steps. Never raises for a job's own failure."""
    while run_step(db, rt, job_id, owner):
        pass


def run_step(db: Database, rt: Runtime, job_id: str, owner: str) -> bool:
    """The step `job_id`'s state names; the caller holds the lease. True when it committed the job's next (active)
    state and the caller still holds the job. Never raises for a job's own failure."""
    with db.read_only() as session:
        job = session.get(ComputeJobRow, job_id)
        if job is None or job.lease_owner != owner or job.state not in ACTIVE_STATES:
            return False
        state = JobState(job.state)
    step = _STEPS[state]
    try:
        if job.attempts > MAX_ATTEMPTS:
            raise _fail(f"gave up after {MAX_ATTEMPTS} attempts at {state.value}")
        step(db, rt, job, owner)
    except StepOutcome as outcome:
        _end(db, rt, job_id, owner, state, outcome)
        return False
    except Exception as exc:  # noqa: BLE001 - a bug or I/O error in one step: retried until MAX_ATTEMPTS
        log.exception("compute job %s: step %s failed; it will be retried after its lease", job_id, state.value)
        note = f"step {state.value} broke ({type(exc).__name__}); it is retried when its lease runs out"
        _commit(db, rt, job_id, owner, state, lambda s, j: _event(s, rt, j, note), release=False)
        return False
    return True


def _end(db: Database, rt: Runtime, job_id: str, owner: str, state: JobState, outcome: StepOutcome,
         before: Callable[[ComputeJobRow], None] | None = None) -> None:
    def end(session: Session, job: ComputeJobRow) -> None:
        if before is not None:
            before(job)
        if state == JobState.GATING:  # the records ran: their subjects see the job, without a result
            _store_subjects(session, job.id, {subject: None for subject in _ran_subjects(rt, job.id)})
        finish(session, rt, job, outcome.state, outcome.reason)

    _commit(db, rt, job_id, owner, state, end)


def _commit(db: Database, rt: Runtime, job_id: str, owner: str, expected: JobState,
            mutate: Callable[[Session, ComputeJobRow], None], *, release: bool = True) -> bool:
    """Apply `mutate` if we still hold the job in `expected`. With `release`, a job that moved on to its next step
    keeps its lease, renewed for that step (run_step goes straight on); a final job has none."""
    with db.unit_of_work() as session:
        query = select(ComputeJobRow).where(ComputeJobRow.id == job_id)
        if is_postgres(db.engine):
            query = query.with_for_update()
        job = session.scalar(query)
        if job is None or job.lease_owner != owner or job.state != expected.value:
            log.warning("compute job %s: lost its lease during %s; the result of this step is dropped",
                        job_id, expected.value)
            return False
        mutate(session, job)
        now = rt.clock()
        if release and job.state in ACTIVE_STATES and job.state != expected.value:
            job.lease_until, job.attempts = now + timedelta(seconds=lease_seconds(rt, job)), 1
        elif release:
            job.lease_owner, job.lease_until = None, None
        job.updated_at = now
    return True


def _advance(session: Session, rt: Runtime, job: ComputeJobRow, target: JobState, message: str) -> None:
    job.state = next_state(JobState(job.state), target).value
    job.attempts = 0
    job.updated_at = rt.clock()
    _event(session, rt, job, message)


# -- steps ---------------------------------------------------------------------------------------------------------


def _step_queued(db: Database, rt: Runtime, job: ComputeJobRow, owner: str) -> None:
    if rt.sandbox is None:
        raise _reject(f"no sandbox: {rt.sandbox_problem}")
    availability = rt.sandbox.available()
    if not availability.ok:
        raise _reject(f"no sandbox: {availability.reason}")

    def go(session: Session, row: ComputeJobRow) -> None:
        row.started_at = rt.clock()
        _advance(session, rt, row, JobState.FETCHING,
                 f"fetching algorithm {row.algorithm_ref} from {row.algorithm_provider or row.counterparty_id}")

    _commit(db, rt, job.id, owner, JobState.QUEUED, go)


def _step_fetching(db: Database, rt: Runtime, job: ComputeJobRow, owner: str) -> None:
    folder = job_dir(rt, job.id)
    try:
        fetched = rt.algorithm_source.fetch(job)
    except AlgorithmFetchError as exc:
        raise _fail(f"could not fetch the algorithm: {exc.reason}") from None
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    staged = folder / "algorithm.tar.gz.part"
    shutil.copyfile(fetched.archive, staged, follow_symlinks=False)
    os.replace(staged, folder / "algorithm.tar.gz")
    (folder / "envelope.json").write_text(json.dumps(fetched.envelope))
    size = (folder / "algorithm.tar.gz").stat().st_size
    _commit(db, rt, job.id, owner, JobState.FETCHING, lambda s, j: _advance(
        s, rt, j, JobState.VERIFYING, f"algorithm fetched ({size} bytes); verifying"))


def _step_verifying(db: Database, rt: Runtime, job: ComputeJobRow, owner: str) -> None:
    folder = job_dir(rt, job.id)
    archive = folder / "algorithm.tar.gz"
    if not archive.is_file():
        raise _fail("the fetched algorithm is missing from the job's work folder")
    digest = bundle.digest_file(archive)
    try:
        envelope = json.loads((folder / "envelope.json").read_text())
    except (OSError, ValueError):
        envelope = None
    if not envelope:
        raise _reject(f"the algorithm {digest} is unsigned: its provider published no DSSE envelope")
    try:
        verified = signing.verify_artifact(envelope, digest, _resolver(rt))
    except signing.SignatureCheckError as exc:
        raise _reject(f"algorithm verification failed ({exc.check}): {exc.reason}") from None
    try:
        manifest = bundle.read_manifest(archive)
    except (bundle.BundleError, ManifestError) as exc:
        raise _reject(f"the algorithm bundle is unusable: {_without_path(exc, archive)}") from None
    if manifest.kind == "oci" and (rt.sandbox is None or rt.sandbox.name != "docker"):
        raise _reject("an oci algorithm needs the docker sandbox backend")

    with db.read_only() as session:
        agreement, asset = _agreement_and_asset(session, job)
    purpose = job_purpose(job, agreement)
    if purpose is None:
        raise _reject("the job declares no purpose (parameters.purpose) and its agreement names none; "
                      "consent is given per purpose")
    subjects = {subject for subject, _record in _dataset(rt, asset)}
    epsilon = _epsilon(job)
    min_aggregation = _min_aggregation(rt, job)

    def decide(session: Session, row: ComputeJobRow) -> None:
        consenting = consents.consenting(session, rt, provider=row.counterparty_id, purpose=purpose) & subjects
        row.algorithm_digest, row.algorithm_signer = digest, verified.signer_did
        row.manifest = manifest_to_json(manifest)
        if not consenting:
            raise _reject("no consenting records: no data subject of this dataset has a live consent for "
                          f"{row.counterparty_id} and purpose {purpose}")
        ledger = privacy_ledger.budget_row(session, rt, asset)
        parameters = {**row.parameters, C2D + "algorithm": digest, C2D + "algorithmSigner": verified.signer_did,
                      C2D + "minAggregationSize": min_aggregation, ODRL + "purpose": purpose}
        if epsilon is not None:
            parameters[C2D + "dpEpsilon"] = epsilon
        decision = policy_scopes.compute_decision(rt, agreement, parameters, state={
            "dp_epsilon_spent": ledger.spent, "consent_given": True})
        if not decision.permitted:
            raise _reject(f"the agreement's policy does not permit this job: {decision.explain()}")
        try:
            privacy_ledger.check(ledger, epsilon or 0.0)
        except privacy_ledger.BudgetExceeded as exc:
            raise _reject(str(exc)) from None
        limits = job_limits(rt, manifest)
        row.limits, row.backend = asdict(limits), rt.sandbox.name if rt.sandbox else None
        _advance(session, rt, row, JobState.RUNNING,
                 f"verified {digest} signed by {verified.signer_did}; policy permits; "
                 f"{len(consenting)} consenting records; running in {row.backend}")

    try:
        _commit(db, rt, job.id, owner, JobState.VERIFYING, decide)
    except StepOutcome as outcome:  # keep what was verified on the job, for the receipt
        _end(db, rt, job.id, owner, JobState.VERIFYING, outcome,
             before=lambda j: _keep_verified(j, digest, verified.signer_did, manifest))


def _keep_verified(job: ComputeJobRow, digest: str, signer: str, manifest: Manifest) -> None:
    job.algorithm_digest, job.algorithm_signer, job.manifest = digest, signer, manifest_to_json(manifest)


def _step_running(db: Database, rt: Runtime, job: ComputeJobRow, owner: str) -> None:
    if rt.sandbox is None:
        raise _reject(f"no sandbox: {rt.sandbox_problem}")
    folder = job_dir(rt, job.id)
    archive = folder / "algorithm.tar.gz"
    if not archive.is_file() or bundle.digest_file(archive) != job.algorithm_digest:
        raise _fail("the verified algorithm changed or vanished from the job's work folder before it ran")
    manifest = parse_manifest(job.manifest)
    with db.read_only() as session:
        agreement, asset = _agreement_and_asset(session, job)
        purpose = job_purpose(job, agreement) or ""
        consenting = consents.consenting(session, rt, provider=job.counterparty_id, purpose=purpose)
    staged = _staged_input(rt, asset, manifest, consenting)
    records, record_subjects = staged.records, staged.record_subjects
    if not records:
        raise _reject("no consenting records: every consent for this job was revoked before it ran")

    for name in ("algorithm", "input", "output"):
        shutil.rmtree(folder / name, ignore_errors=True)
    algorithm_dir, input_dir, output_dir = folder / "algorithm", folder / "input", folder / "output"
    algorithm_dir.mkdir()
    try:
        bundle.unpack(archive, algorithm_dir)
    except (bundle.BundleError, ManifestError) as exc:  # signed, yet unsafe to unpack (a link, '..', a device)
        raise _reject(f"the algorithm bundle is unusable: {_without_path(exc, archive)}") from None
    input_dir.mkdir()
    (input_dir / "records.jsonl").write_bytes(staged.jsonl)
    (input_dir / "parameters.json").write_text(json.dumps(job.parameters or {}))
    (folder / "record_subjects.json").write_bytes(orjson.dumps(record_subjects))
    output_dir.mkdir()
    output_dir.chmod(0o777)  # the sandbox's own user writes here; the job folder (0700) keeps others out
    input_digest = staged.digest
    limits = Limits(**(job.limits or {}))
    spec = SandboxSpec(command=_command(manifest), algorithm_dir=algorithm_dir, input_dir=input_dir,
                       output_dir=output_dir, limits=limits, gpu=manifest.resources.gpu, image=manifest.image)
    running = _start_run(rt.sandbox, spec)
    try:
        staged.complete()  # while the sandbox runs: GATING and the scrubber need them
    except Exception:  # noqa: BLE001 - then the gate indexes the input itself, and refuses what it cannot
        log.exception("compute job %s: indexing the staged input failed", job.id)
    secrets = staged.secrets if staged.secrets is not None else input_strings(records)
    try:
        result = running.result()
    except Exception as exc:  # noqa: BLE001 - the backend broke: the job failed, the connector stays up
        log.exception("compute job %s: the sandbox failed", job.id)
        raise _fail(f"the sandbox failed to run the job ({type(exc).__name__})") from None
    logs = {"stdout": scrub(result.stdout_tail, secrets), "stderr": scrub(result.stderr_tail, secrets),
            "exitCode": result.exit_code, "wallSeconds": round(result.wall_seconds, 3)}
    problem = run_problem(result, limits)
    subjects = set(record_subjects.values())

    def ran(session: Session, row: ComputeJobRow) -> None:
        row.input_digest, row.record_count, row.logs = input_digest, len(records), logs
        if problem is not None:
            _store_subjects(session, row.id, {subject: None for subject in subjects})
            finish(session, rt, row, JobState.FAILED, problem)
            return
        _advance(session, rt, row, JobState.GATING,
                 f"the algorithm ran on {len(records)} records in {result.wall_seconds:.2f} s"
                 f"{' (a pre-started sandbox)' if result.standby else ''}; gating its output")

    if problem is None:
        _hand_over(job.id, staged)
    _commit(db, rt, job.id, owner, JobState.RUNNING, ran)


def _start_run(sandbox: Any, spec: SandboxSpec) -> Future[Any]:
    """The sandbox run in a thread of its own, so the worker prepares the gate meanwhile (the run mostly waits)."""
    future: Future[Any] = Future()

    def run() -> None:
        try:
            future.set_result(sandbox.run(spec))
        except BaseException as exc:  # noqa: BLE001 - handed to the worker, which fails the job
            future.set_exception(exc)

    threading.Thread(target=run, name="sovra-compute-run", daemon=True).start()
    return future


def _step_gating(db: Database, rt: Runtime, job: ComputeJobRow, owner: str) -> None:
    folder = job_dir(rt, job.id)
    manifest = parse_manifest(job.manifest)
    staged = _STAGED.pop(job.id, None)
    if staged is None or staged.digest != job.input_digest:  # another worker ran it, or a restart: the disk
        records = [json.loads(line) for line in (folder / "input" / "records.jsonl").read_bytes().splitlines()
                   if line]
        record_subjects = json.loads((folder / "record_subjects.json").read_text())
        index = None
    else:
        records, record_subjects, index = staged.records, staged.record_subjects, staged.index
    try:
        results = read_output_file(folder / "output", "results.jsonl", OUTPUT_DIR_MAX_BYTES)
    except FileNotFoundError:
        results = b""  # the gate says what no output means
    except OutputRefused as exc:
        raise _reject(f"output refused: {exc}") from None
    request = gate.GateRequest(manifest=manifest, records=records, record_subjects=record_subjects,
                               results_jsonl=results, epsilon=_epsilon(job),
                               min_aggregation=_min_aggregation(rt, job),
                               max_output_bytes=rt.settings.c2d_max_output_bytes, index=index)
    outcome = gate.gate(request)
    if not outcome.released:
        raise _reject("the release gate refused the output: " + "; ".join(outcome.reasons or ["no reason given"]))

    def release(session: Session, row: ComputeJobRow) -> None:
        asset = session.get(AssetRow, row.asset_id) if row.asset_id else None
        if asset is None:
            raise _fail(f"the dataset {row.asset_id} no longer exists")
        if outcome.epsilon_charged > 0:
            try:
                privacy_ledger.charge(session, rt, asset, job_id=row.id, epsilon=outcome.epsilon_charged)
            except privacy_ledger.BudgetExceeded as exc:
                _store_subjects(session, row.id, {subject: None for subject in set(record_subjects.values())})
                finish(session, rt, row, JobState.REJECTED, str(exc))
                return
        row.epsilon_charged = outcome.epsilon_charged
        row.outputs = dict(outcome.aggregates)
        results = outcome.subject_results
        _store_subjects(session, row.id, {subject: results.get(subject) for subject in set(record_subjects.values())})
        finish(session, rt, row, JobState.RELEASED,
               f"released {len(outcome.aggregates)} aggregates over {outcome.records_used} records "
               f"(epsilon {outcome.epsilon_charged:g} charged) and {len(outcome.subject_results)} subject results")

    _commit(db, rt, job.id, owner, JobState.GATING, release)


def _ran_subjects(rt: Runtime, job_id: str) -> set[str]:
    try:
        return set(json.loads((job_dir(rt, job_id) / "record_subjects.json").read_text()).values())
    except (OSError, ValueError):
        return set()


def _store_subjects(session: Session, job_id: str, results: Mapping[str, Any]) -> None:
    subject_results.store(session, job_id, results)


_STEPS: dict[JobState, Callable[[Database, Runtime, ComputeJobRow, str], None]] = {
    JobState.QUEUED: _step_queued,
    JobState.FETCHING: _step_fetching,
    JobState.VERIFYING: _step_verifying,
    JobState.RUNNING: _step_running,
    JobState.GATING: _step_gating,
}


# -- the end of a job -------------------------------------------------------------------------------------------------


def finish(session: Session, rt: Runtime, job: ComputeJobRow, state: JobState, message: str) -> None:
    """Make the job final: reason, receipt, audit, the transfer's follow-up, all in the caller's transaction."""
    job.state = next_state(JobState(job.state), state).value
    job.reason = None if state == JobState.RELEASED else message
    job.finished_at = rt.clock()
    job.updated_at = job.finished_at
    job.lease_owner, job.lease_until = None, None
    _event(session, rt, job, message)
    job.receipt = sign_receipt(session, rt, job)
    if job.receipt is None:
        _event(session, rt, job, "no run receipt: this connector has no signing key", state=job.state)
    compute_transfers.job_finished(session, rt, job)
    after_commit(session, lambda: discard_job_dir(rt, job.id))  # the staged records go with the job


def sign_receipt(session: Session, rt: Runtime, job: ComputeJobRow) -> dict[str, Any] | None:
    if rt.signing_key is None:
        return None
    agreement = session.get(AgreementRow, job.agreement_id)
    manifest = job.manifest or {}
    outputs = {name: receipts.output_digest(value) for name, value in (job.outputs or {}).items()}
    facts = receipts.RunFacts(
        job_id=job.id, state=job.state, reasons=tuple([job.reason] if job.reason else []),
        algorithm={"name": manifest.get("name"), "version": manifest.get("version"),
                   "digest": job.algorithm_digest, "signer": job.algorithm_signer, "ref": job.algorithm_ref},
        input_digest=job.input_digest or "", record_count=job.record_count or 0, agreement_id=job.agreement_id,
        policy_id=(agreement.policy.get("@id") if agreement is not None and agreement.policy else None),
        sandbox={"backend": job.backend, "limits": job.limits or {}}, outputs=outputs,
        epsilon_charged=job.epsilon_charged or 0.0,
        started=(job.started_at or job.created_at).isoformat(), finished=(job.finished_at or rt.clock()).isoformat())
    return receipts.sign_receipt(facts, rt.signing_key, rt.settings.participant_id)


# -- helpers ----------------------------------------------------------------------------------------------------------


def job_dir(rt: Runtime, job_id: str) -> Path:
    return _work_root(rt) / "jobs" / job_id


def _work_root(rt: Runtime) -> Path:
    return Path(rt.settings.c2d_work_dir or rt.settings.data_dir / "c2d")


_CLEANER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sovra-c2d-cleanup")


def discard_job_dir(rt: Runtime, job_id: str) -> None:
    """Remove an ended job's folder (its staged records among them). It is renamed away at once, so nothing of
    the job is left under jobs/, and deleted by a thread of its own: the job's release is on its way meanwhile.
    What a crash leaves in the trash goes at the next `empty_trash`."""
    trash = _work_root(rt) / "trash"
    target = trash / f"{job_id}-{uuid.uuid4().hex[:8]}"
    try:
        trash.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.rename(job_dir(rt, job_id), target)
    except FileNotFoundError:
        return
    except OSError:
        shutil.rmtree(job_dir(rt, job_id), ignore_errors=True)
        return
    _CLEANER.submit(shutil.rmtree, target, True)


def empty_trash(rt: Runtime) -> None:
    """Delete what discard_job_dir left behind (after a crash, or a cleanup thread that did not get to it)."""
    trash = _work_root(rt) / "trash"
    if trash.is_dir():
        for entry in trash.iterdir():
            shutil.rmtree(entry, ignore_errors=True)


def _resolver(rt: Runtime) -> signing.DidDocumentResolver:
    def resolve(did: str) -> Mapping[str, Any]:
        if rt.resolve_did is None:
            raise signing.SignatureCheckError("signer", f"cannot resolve {did}: this connector has no DID resolver")
        try:
            return rt.resolve_did(did)
        except signing.SignatureCheckError:
            raise
        except Exception as exc:  # noqa: BLE001 - resolution failed: the signer is not trusted
            raise signing.SignatureCheckError("signer", f"cannot resolve the signer's DID {did}: {exc}") from None

    return resolve


def _without_path(exc: Exception, archive: Path) -> str:
    """A bundle error for the reason B sees: the job folder's path on this host is none of B's business."""
    return str(exc).replace(str(archive), "the bundle")


def _agreement_and_asset(session: Session, job: ComputeJobRow) -> tuple[AgreementRow, AssetRow]:
    agreement = session.get(AgreementRow, job.agreement_id)
    if agreement is None:
        raise _reject(f"the agreement {job.agreement_id} does not exist here")
    asset = session.get(AssetRow, job.asset_id or agreement.asset_id)
    if asset is None:
        raise _fail(f"the dataset {job.asset_id} does not exist here")
    return agreement, asset


def job_purpose(job: ComputeJobRow, agreement: AgreementRow | None) -> str | None:
    """The purpose consent is checked against: the job's own, else the one its agreement was made for."""
    for source in (job.parameters or {}, (agreement.request_context if agreement else None) or {}):
        for key in ("purpose", ODRL + "purpose", "odrl:purpose"):
            value = source.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def _epsilon(job: ComputeJobRow) -> float | None:
    value = (job.parameters or {}).get("dpEpsilon", (job.parameters or {}).get(C2D + "dpEpsilon"))
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise _reject(f"parameters.dpEpsilon must be a number above 0, not {value!r}")
    return float(value)


def _min_aggregation(rt: Runtime, job: ComputeJobRow) -> int:
    value = (job.parameters or {}).get("minAggregationSize", (job.parameters or {}).get(C2D + "minAggregationSize"))
    asked = int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0
    return max(asked, rt.settings.c2d_min_aggregation)


def job_limits(rt: Runtime, manifest: Manifest) -> Limits:
    """The manifest's resources, never above the caps; the rest of the sandbox defaults stay."""
    resources = manifest.resources
    wall = max(1, min(int(resources.timeout_s), CAP_WALL_SECONDS))
    return Limits(wall_seconds=float(wall), cpu_seconds=wall, memory_mb=max(64, min(resources.memory_mb,
                                                                                    CAP_MEMORY_MB)),
                  cpus=max(0.1, min(float(resources.cpu), CAP_CPUS)), output_max_bytes=OUTPUT_DIR_MAX_BYTES)


def _command(manifest: Manifest) -> list[str]:
    if manifest.kind == "onnx":
        return ["python", "/runtime/onnx_runner.py"]
    if manifest.kind == "python":
        return ["python", "/algorithm/" + (manifest.entrypoint or "main.py")]
    return [manifest.entrypoint] if manifest.entrypoint else []


def _dataset(rt: Runtime, asset: AssetRow) -> list[tuple[str, dict[str, Any]]]:
    """(subject id, record) for every record of a File JSONL dataset under the file root."""
    return _dataset_version(rt, asset)[1]


def _dataset_version(rt: Runtime, asset: AssetRow) -> tuple[tuple[Any, ...], list[tuple[str, dict[str, Any]]]]:
    """The dataset's records and the key of this version of its file (path, inode, size, mtime, subject field)."""
    address = normalize_address(asset.data_address or {})
    path = address.get("path")
    if not isinstance(path, str):
        raise _fail(f"dataset {asset.id} has no File data address; compute jobs read JSONL files")
    resolved = Path(path).resolve()
    root = rt.settings.file_root
    if root is not None and not resolved.is_relative_to(Path(root).resolve()):
        raise _fail(f"dataset {asset.id} lies outside the connector's file root")
    field_name = privacy_ledger.asset_property(asset, SUBJECT_FIELD) or DEFAULT_SUBJECT_FIELD
    try:
        stat = resolved.stat()
        if stat.st_size > DATASET_MAX_BYTES:
            raise _fail(f"dataset {asset.id} is larger than {DATASET_MAX_BYTES} bytes")
        key = (str(resolved), stat.st_ino, stat.st_size, stat.st_mtime_ns, field_name)
        cached = _DATASETS.get(key)
        if cached is not None:
            return key, cached
        raw = resolved.read_bytes()
    except OSError as exc:
        raise _fail(f"dataset {asset.id} cannot be read ({exc.strerror})") from None
    rows = _parse_dataset(asset.id, raw, field_name)
    if stat.st_size <= DATASET_CACHE_MAX_BYTES:
        with _DATASETS_LOCK:
            _DATASETS[key] = rows
            while len(_DATASETS) > DATASET_CACHE_ENTRIES:
                _DATASETS.pop(next(iter(_DATASETS)))
    return key, rows


# Parsed datasets by (path, inode, size, mtime): repeated jobs on an unchanged file skip re-reading it. The records
# are shared: callers copy what they hand on (_input_records builds new dicts).
DATASET_CACHE_ENTRIES = 4
DATASET_CACHE_MAX_BYTES = 64 << 20
_DATASETS: dict[tuple[Any, ...], list[tuple[str, dict[str, Any]]]] = {}
_DATASETS_LOCK = threading.Lock()


def _parse_dataset(asset_id: str, raw: bytes, field_name: str) -> list[tuple[str, dict[str, Any]]]:
    rows: list[tuple[str, dict[str, Any]]] = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise _fail(f"dataset {asset_id}: line {number} is not JSON") from None
        subject = record.get(field_name) if isinstance(record, dict) else None
        if isinstance(subject, str | int) and not isinstance(subject, bool):
            rows.append((str(subject), record))
    return rows


@dataclass
class _Input:
    """A job's staged input: what /input/records.jsonl holds, and what the gate and the log scrubber look up in it.
    Built from (dataset version, input columns, consenting subjects) alone, so jobs that share those share it."""

    records: list[dict[str, Any]]
    record_subjects: dict[str, str]
    jsonl: bytes
    digest: str
    index: gate.InputIndex | None = None  # built while the first job's sandbox runs
    secrets: list[str] | None = None

    def complete(self) -> None:
        if self.index is None:
            self.index = gate.index_input(self.records)
        if self.secrets is None:
            self.secrets = input_strings(self.records)


def _staged_input(rt: Runtime, asset: AssetRow, manifest: Manifest, consenting: frozenset[str]) -> _Input:
    version, _rows = _dataset_version(rt, asset)
    key = (version, tuple(manifest.inputs), consenting)
    cached = _INPUTS.get(key)
    if cached is not None:
        return cached
    records, record_subjects = _input_records(rt, asset, manifest, consenting)
    jsonl = _jsonl(records)
    staged = _Input(records, record_subjects, jsonl, "sha256:" + hashlib.sha256(jsonl).hexdigest())
    with _DATASETS_LOCK:
        _INPUTS[key] = staged
        while len(_INPUTS) > INPUT_CACHE_ENTRIES:
            _INPUTS.pop(next(iter(_INPUTS)))
    return staged


# Staged inputs by (dataset version, columns, consenting subjects): a provider runs many jobs on an unchanged dataset
# and consent set, and staging 10,000 records costs more than the rest of a job's bookkeeping. Shared, never mutated.
INPUT_CACHE_ENTRIES = 2
_INPUTS: dict[tuple[Any, ...], _Input] = {}


def _input_records(rt: Runtime, asset: AssetRow, manifest: Manifest,
                   consenting: frozenset[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The consenting records, cut to the declared input columns, keyed r1..rn (the subject id never goes in)."""
    records: list[dict[str, Any]] = []
    record_subjects: dict[str, str] = {}
    for subject, record in _dataset(rt, asset):
        if subject not in consenting:
            continue
        key = f"r{len(records) + 1}"
        records.append({**{c: record[c] for c in manifest.inputs if c in record}, "_record": key})  # key wins
        record_subjects[key] = subject
    return records, record_subjects


def _jsonl(records: Sequence[Mapping[str, Any]]) -> bytes:
    """The staged records as JSONL, keys sorted: orjson, or json for a dataset with what orjson refuses (an int
    over 64 bits)."""
    dumps, option = orjson.dumps, orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
    try:
        return b"".join([dumps(r, option=option) for r in records])
    except TypeError:
        return b"".join(json.dumps(r, ensure_ascii=False, sort_keys=True).encode() + b"\n" for r in records)


# RUNNING hands the staged records to GATING in memory when the same process goes on (the usual case); GATING falls
# back to the staged files, so a restart or another worker loses nothing. Keyed by job id, checked by input digest.
_STAGED: dict[str, _Input] = {}
_STAGED_MAX = 8


def _hand_over(job_id: str, staged: _Input) -> None:
    while len(_STAGED) >= _STAGED_MAX:
        _STAGED.pop(next(iter(_STAGED)), None)
    _STAGED[job_id] = staged


_STRING_FREE = frozenset({int, float, bool, type(None)})


def input_strings(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every string value in the input of length >= MIN_SCRUB_LEN, longest first (what scrubbing hides)."""
    kinds: Counter[type] = Counter()
    for record in records:
        kinds.update(map(type, record.values()))
    if set(kinds) <= _STRING_FREE | {str} and kinds[str] == sum("_record" in r for r in records):
        return []  # flat records whose only strings are their `_record` keys (all-number data, one C pass)
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            if len(value) >= MIN_SCRUB_LEN:
                found.add(value)
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    for record in records:
        walk({k: v for k, v in record.items() if k != "_record"})
    return sorted(found, key=lambda s: (-len(s), s))


def scrub(raw: bytes, secrets: Sequence[str], *, keep: int = LOG_KEEP) -> str:
    """The algorithm's output for A's operator: input values redacted, then only the last `keep` bytes."""
    text = raw.decode("utf-8", errors="replace")
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    encoded = text.encode()
    if len(encoded) > keep:
        text = "[truncated] " + encoded[-keep:].decode("utf-8", errors="ignore")
    return text


def run_problem(result: Any, limits: Limits) -> str | None:
    """Why a finished sandbox run counts as FAILED, in the connector's words; None when it succeeded."""
    if result.timed_out:
        return f"the algorithm ran past its wall-clock limit of {limits.wall_seconds:g} s and was killed"
    if result.killed_reason:
        return f"the sandbox stopped the algorithm: {result.killed_reason}"
    if result.exit_code != 0:
        # The code itself stays in the operator's logs: in the reason it would be eight bits per job that the
        # algorithm chose, sent to the requester outside the release gate.
        return "the algorithm exited with an error (its exit status is in the data provider's logs)"
    return None


def _event(session: Session, rt: Runtime, job: ComputeJobRow, message: str, *, state: str | None = None) -> None:
    """One connector-written line on the job and in the audit log (never algorithm output or input data)."""
    now = rt.clock()
    entry = {"at": now.isoformat(), "state": state or job.state, "message": message}
    job.events = [*(job.events or []), entry]
    audit.append(session, rt, "job." + entry["state"].lower(), actor=rt.settings.participant_id, job_id=job.id,
                 detail={"message": message, "state": entry["state"]})


# -- views ----------------------------------------------------------------------------------------------------------


def job_json(job: ComputeJobRow, *, operator: bool = True) -> dict[str, Any]:
    """The job as the APIs show it; `operator` adds the provider-only parts (scrubbed logs, limits)."""
    body: dict[str, Any] = {
        "@type": "ComputeJob", "@id": job.id, "role": job.role, "state": job.state, "reason": job.reason,
        "agreementId": job.agreement_id, "assetId": job.asset_id, "counterPartyId": job.counterparty_id,
        "algorithm": {"ref": job.algorithm_ref, "provider": job.algorithm_provider, "digest": job.algorithm_digest,
                      "signer": job.algorithm_signer},
        "recordCount": job.record_count, "inputDigest": job.input_digest, "epsilonCharged": job.epsilon_charged,
        "backend": job.backend, "events": list(job.events or []), "createdAt": job.created_at.isoformat(),
        "startedAt": job.started_at.isoformat() if job.started_at else None,
        "finishedAt": job.finished_at.isoformat() if job.finished_at else None,
    }
    if operator:
        body.update({"parameters": job.parameters, "limits": job.limits, "outputs": job.outputs,
                     "logs": job.logs, "transferId": job.transfer_id, "attempts": job.attempts})
    return body
