"""The compute-to-data job on the wire: a DSP transfer process of format `Compute-PULL`, for both roles.

The consumer (B, the requester) asks for a job with a TransferRequestMessage that carries the extension member
`https://w3id.org/sovra/c2d/v1#computeJob` ({"algorithm", "algorithmProvider", "parameters"}). The provider (A)
checks it (`parse_compute_request`, `request_decision`), stores the transfer REQUESTED and a provider job QUEUED in
one transaction (`accept`), and sends nothing more until the job is final: then `job_finished` (called by the
pipeline in the job's final transaction) queues a TransferStartMessage whose DataAddress opens A's public data
plane, where the release document is served (`release_address` -> `connector.dataplane.release_source`), or a
TransferTerminationMessage with code c2d:REJECTED / c2d:FAILED and the job's reason. While the job runs, A's DSP
GET of the transfer adds `c2d:jobState` (and `c2d:jobReason`).

On B, a start queues the pull of the release document (an outbox job, `connector.services.compute_release`), and a
termination ends B's job REJECTED or FAILED with A's reason (`requester_terminated`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.dsp.messages import COMPUTE_JOB, JOB_REASON, JOB_STATE
from connector.persistence.tables import AgreementRow, ComputeJobRow, TransferRow
from connector.services.policy_scopes import checked_request_context, compute_request_decision
from connector.services.runtime import Runtime
from contracts import InvalidMessageError, Role
from policies import Decision

FORMAT = "Compute-PULL"
PROVIDER, REQUESTER = "provider", "requester"
RELEASED, REJECTED, FAILED, QUEUED = "RELEASED", "REJECTED", "FAILED", "QUEUED"
FINAL_STATES = (RELEASED, REJECTED, FAILED)
CODE_REJECTED, CODE_FAILED = "c2d:REJECTED", "c2d:FAILED"
RELEASE_TYPE = "ComputeRelease"
"""The data address kind of a compute release (served by `connector.dataplane.release_source`)."""
MAX_ID = 512


@dataclass(frozen=True)
class ComputeRequest:
    """What the consumer asked for: B's algorithm dataset, where B's DSP endpoint is, and the job's parameters."""

    algorithm: str
    algorithm_provider: str
    parameters: Mapping[str, Any]

    def member(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "algorithmProvider": self.algorithm_provider,
                "parameters": dict(self.parameters)}


def parse_compute_request(message: Mapping[str, Any]) -> ComputeRequest:
    """The `computeJob` member of a Compute-PULL request, checked; InvalidMessageError (400) names the problem."""
    member = message.get(COMPUTE_JOB)
    where = COMPUTE_JOB
    if member is None:
        raise InvalidMessageError(f"format Compute-PULL needs the member {where}: "
                                  '{"algorithm": "<dataset id>", "algorithmProvider": "<DSP URL>", "parameters": {}}')
    if not isinstance(member, Mapping):
        raise InvalidMessageError(f"{where} must be an object with algorithm, algorithmProvider and parameters")
    algorithm = member.get("algorithm")
    if not isinstance(algorithm, str) or not algorithm or len(algorithm) > MAX_ID:
        raise InvalidMessageError(f"{where}/algorithm must be the algorithm's dataset id at the algorithm provider "
                                  f"(a non-empty string of at most {MAX_ID} characters)")
    provider = member.get("algorithmProvider")
    parts = urlsplit(provider) if isinstance(provider, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidMessageError(f"{where}/algorithmProvider must be the algorithm provider's DSP base URL "
                                  "(http or https)")
    # The job's parameters are declared left-operand values, checked like a negotiation's requestContext.
    parameters = checked_request_context(member.get("parameters", {}), where=f"{where}/parameters")
    return ComputeRequest(algorithm=algorithm, algorithm_provider=provider.rstrip("/"),  # type: ignore[union-attr]
                          parameters=parameters or {})


def request_decision(rt: Runtime, agreement: AgreementRow, request: ComputeRequest) -> Decision:
    """The transfer scope of a Compute-PULL: the compute action (never odrl:use) with the declared parameters."""
    return compute_request_decision(rt, agreement, dict(request.parameters))


# -- provider (A) ------------------------------------------------------------------------------------------------------
def accept(uow: Session, rt: Runtime, *, transfer: TransferRow, agreement: AgreementRow,
           request: ComputeRequest) -> ComputeJobRow:
    """Store the provider job for `transfer` in the caller's transaction (the pipeline takes it from there)."""
    from connector.services import compute_jobs  # the pipeline imports this module for its final hook

    return compute_jobs.accept_compute_request(
        uow, rt, transfer_row=transfer, agreement_row=agreement, algorithm_ref=request.algorithm,
        algorithm_provider=request.algorithm_provider, parameters=dict(request.parameters))


def job_for_transfer(uow: Session, transfer: TransferRow) -> ComputeJobRow | None:
    role = PROVIDER if transfer.role == Role.PROVIDER else REQUESTER
    return uow.scalars(select(ComputeJobRow).where(ComputeJobRow.transfer_id == transfer.id,
                                                   ComputeJobRow.role == role)).first()


def job_finished(session: Session, rt: Runtime, job: ComputeJobRow) -> None:
    """The provider's job is final: release it to the requester through its transfer, or say why not.

    RELEASED queues our TransferStartMessage (its DataAddress, with a token bound to the transfer, is built when
    it is sent); REJECTED / FAILED queue a TransferTerminationMessage with code c2d:REJECTED / c2d:FAILED and the
    job's reason. Runs in the job's final transaction, so the message leaves exactly when the state is stored.
    """
    from connector.services import transfers
    from contracts.transfer import TransferMessage, TransferState, reached_state

    if job.role != PROVIDER or job.transfer_id is None or job.state not in FINAL_STATES:
        return
    transfer = session.get(TransferRow, job.transfer_id)
    if transfer is None or transfer.transfer_type != FORMAT or transfer.role != Role.PROVIDER:
        return  # only the transfer B asked us for carries the job's outcome
    if reached_state(TransferState(transfer.state)) in (TransferState.COMPLETED, TransferState.TERMINATED):
        return  # the requester gave up meanwhile
    if job.state == RELEASED:
        transfers.send(session, rt, transfer, TransferMessage.START)
    else:
        code = CODE_REJECTED if job.state == REJECTED else CODE_FAILED
        transfers.send(session, rt, transfer, TransferMessage.TERMINATION,
                       {"code": code, "reason": job.reason or job.state.lower()})


def release_document(job: ComputeJobRow) -> dict[str, Any]:
    """What the requester pulls: the released aggregates and A's signed receipt, nothing else."""
    return {"jobId": job.id, "outputs": job.outputs or {}, "receipt": job.receipt}


def release_address(uow: Session, transfer: TransferRow) -> dict[str, Any] | None:
    """The data address the public data plane serves for a started Compute-PULL: the job's release document."""
    job = job_for_transfer(uow, transfer)
    if job is None or job.state != RELEASED:
        return None
    return {"type": RELEASE_TYPE, "document": release_document(job)}


def job_members(uow: Session, transfer: TransferRow) -> dict[str, Any]:
    """The extension members of A's TransferProcess body for a Compute-PULL: the job's state and reason."""
    if transfer.transfer_type != FORMAT or transfer.role != Role.PROVIDER:
        return {}
    job = job_for_transfer(uow, transfer)
    if job is None:
        return {}
    return {JOB_STATE: job.state, **({JOB_REASON: job.reason} if job.reason else {})}


# -- requester (B) -----------------------------------------------------------------------------------------------------
def requester_terminated(uow: Session, rt: Runtime, transfer: TransferRow, *, code: Any,
                         reason: str | None) -> None:
    """A terminated our Compute-PULL: our job ends REJECTED (c2d:REJECTED) or FAILED (anything else)."""
    job = job_for_transfer(uow, transfer)
    if job is None or job.state in FINAL_STATES:
        return
    state = REJECTED if code == CODE_REJECTED else FAILED
    finish_requester_job(job, rt, state, reason or f"the provider terminated the transfer ({code or 'no code'})")


def requester_refused(uow: Session, rt: Runtime, transfer: TransferRow, *, kind: str, reason: str) -> None:
    """Our Compute-PULL request (or a later message) could not be delivered: A refused it (its policy, a bad
    request) or never answered. A refusal of the request is A's no (REJECTED); anything else FAILED."""
    job = job_for_transfer(uow, transfer)
    if job is None or job.state in FINAL_STATES:
        return
    refused = kind == "TransferRequestMessage" and not reason.startswith("gave up")
    finish_requester_job(job, rt, REJECTED if refused else FAILED,
                         f"the provider refused the job request: {reason}" if refused else f"{kind} failed: {reason}")


def requester_failed(uow: Session, rt: Runtime, transfer: TransferRow, reason: str) -> None:
    job = job_for_transfer(uow, transfer)
    if job is not None and job.state not in FINAL_STATES:
        finish_requester_job(job, rt, FAILED, reason)


def finish_requester_job(job: ComputeJobRow, rt: Runtime, state: str, reason: str | None, **fields: Any) -> None:
    now = rt.clock()
    job.state = state
    job.reason = reason
    for name, value in fields.items():
        setattr(job, name, value)
    job.finished_at = job.finished_at or now
    job.updated_at = now
    add_event(job, rt, state, reason or state.lower())


def add_event(job: ComputeJobRow, rt: Runtime, state: str, message: str) -> None:
    job.events = [*(job.events or []), {"at": rt.clock().isoformat(), "state": state, "message": message}]


ALGORITHM_ENVELOPE = "https://w3id.org/sovra/c2d/v1#algorithmEnvelope"
ALGORITHM_DIGEST = "https://w3id.org/sovra/c2d/v1#algorithmDigest"


class ComputeJobRequestError(ValueError):
    """A job request the requester's connector refuses before anything is sent; `pointer` names the field."""

    def __init__(self, pointer: str, problem: str) -> None:
        super().__init__(f"field {pointer} {problem}")
        self.pointer, self.problem = pointer, problem


def algorithm_digest_of(properties: Mapping[str, Any]) -> str | None:
    for key in (ALGORITHM_DIGEST, "algorithmDigest"):
        if isinstance(properties.get(key), str):
            return str(properties[key])
    return None


def request_job(uow: Session, rt: Runtime, *, agreement_id: str, dsp_base: str, algorithm: str,
                parameters: Mapping[str, Any]) -> ComputeJobRow:
    """Requester (B): store our job QUEUED and its Compute-PULL transfer, whose request the outbox sends."""
    from connector.persistence.tables import AssetRow
    from connector.services import transfers

    agreement = uow.get(AgreementRow, agreement_id)
    if agreement is None or agreement.role != Role.CONSUMER:
        raise ComputeJobRequestError("/agreementId", f"names no contract agreement we consume ({agreement_id}); "
                                                     "negotiate the dataset first")
    if not agreement.finalized:
        raise ComputeJobRequestError("/agreementId", f"names agreement {agreement_id}, which is not finalized yet")
    asset = uow.get(AssetRow, algorithm)
    if asset is None:
        raise ComputeJobRequestError("/algorithm", f"names no asset of ours ({algorithm}); publish the algorithm "
                                                   "first (POST /api/management/v3/algorithms)")
    digest = algorithm_digest_of(asset.properties or {})
    if digest is None:
        raise ComputeJobRequestError("/algorithm", f"asset {algorithm} is not a signed algorithm (it has no "
                                                   f"{ALGORITHM_DIGEST} property); publish it through "
                                                   "/v3/algorithms")
    request = ComputeRequest(algorithm=algorithm, algorithm_provider=rt.settings.dsp_url, parameters=parameters)
    transfer = transfers.initiate(uow, rt, counter_party_address=dsp_base, agreement_id=agreement.id,
                                  transfer_type=FORMAT, data_destination=None,
                                  compute_job=request.member())
    now = rt.clock()
    job = ComputeJobRow(
        id=rt.new_id(), role=REQUESTER, state=QUEUED, transfer_id=transfer.id, agreement_id=agreement.id,
        counterparty_id=agreement.provider_id, counterparty_address=dsp_base, asset_id=agreement.asset_id,
        algorithm_ref=algorithm, algorithm_provider=rt.settings.dsp_url, algorithm_digest=digest,
        parameters=dict(parameters), events=[], attempts=0, created_at=now, updated_at=now)
    add_event(job, rt, QUEUED, f"requested from {agreement.provider_id} over DSP (transfer {transfer.id})")
    uow.add(job)
    return job


def mirror_provider_state(job: ComputeJobRow, rt: Runtime, body: Mapping[str, Any]) -> bool:
    """Take A's non-final job state from its TransferProcess body (final states arrive as DSP messages)."""
    state = body.get(JOB_STATE)
    if job.role != REQUESTER or job.state in FINAL_STATES or not isinstance(state, str):
        return False
    if state in FINAL_STATES or state == job.state or state not in ("QUEUED", "FETCHING", "VERIFYING", "RUNNING",
                                                                      "GATING"):
        return False
    job.state = state
    job.updated_at = rt.clock()
    add_event(job, rt, state, f"the provider reports {state}")
    return True
