"""Data provider A's side of compute-to-data: accept a job, then run it step by step.

Pipeline (one step per worker claim, each committing its result; see workers/compute.py).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy.orm import Session

from compute_to_data.jobs import FINAL, JobState
from connector.persistence.database import Database
from connector.persistence.tables import AgreementRow, ComputeJobRow, TransferRow
from connector.services import audit
from connector.services.algorithm_source import (
    AlgorithmFetchError,
    AlgorithmSource,
    FetchedAlgorithm,
    NoAlgorithmSource,
)
from connector.services.runtime import Runtime

__all__ = ["AlgorithmFetchError", "AlgorithmSource", "FetchedAlgorithm", "NoAlgorithmSource",
           "accept_compute_request", "run_step"]

log = logging.getLogger("sovra.compute")

PROVIDER, REQUESTER = "provider", "requester"
ACTIVE_STATES = tuple(s.value for s in JobState if s not in FINAL)


def accept_compute_request(session: Session, rt: Runtime, *, transfer_row: TransferRow, agreement_row: AgreementRow,
                           algorithm_ref: str, algorithm_provider: str | None,
                           parameters: dict[str, Any] | None) -> ComputeJobRow:
    """Store the provider job for a Compute-PULL transfer, QUEUED, in the caller's transaction."""
    now = rt.clock()
    job = ComputeJobRow(
        id=str(uuid.uuid4()), role=PROVIDER, state=JobState.QUEUED.value, transfer_id=transfer_row.id,
        agreement_id=agreement_row.id, counterparty_id=agreement_row.consumer_id,
        counterparty_address=transfer_row.counter_party_address, asset_id=agreement_row.asset_id,
        algorithm_ref=algorithm_ref, algorithm_provider=algorithm_provider, parameters=dict(parameters or {}),
        events=[], attempts=0, created_at=now, updated_at=now)
    _event(session, rt, job, "job requested by " + agreement_row.consumer_id)
    session.add(job)
    session.flush()
    return job


def lease_seconds(rt: Runtime, job: ComputeJobRow) -> float:
    return 120.0


def run_step(db: Database, rt: Runtime, job_id: str, owner: str) -> None:
    """Run the step `job_id`'s state names; the caller holds the lease."""
    return None


def _event(session: Session, rt: Runtime, job: ComputeJobRow, message: str, *, state: str | None = None) -> None:
    """One connector-written line on the job and in the audit log (never algorithm output or input data)."""
    now = rt.clock()
    entry = {"at": now.isoformat(), "state": state or job.state, "message": message}
    job.events = [*(job.events or []), entry]
    audit.append(session, rt, "job." + entry["state"].lower(), actor=rt.settings.participant_id, job_id=job.id,
                 detail={"message": message})
