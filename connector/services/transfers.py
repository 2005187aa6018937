"""Transfer process use cases for both roles, with the same shape as `negotiations`.

The provider re-evaluates the agreement's policy when a transfer is requested (transfer scope), and its data plane
serves a pull only while the transfer is STARTED: suspending or terminating revokes access at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.persistence.tables import (
    AgreementRow,
    AssetRow,
    EdrRow,
    NegotiationRow,
    TransferRow,
)
from connector.services import compute_transfers
from connector.services.followups import Step, Trigger
from connector.services.negotiations import check_callback, repeated
from connector.services.outbox import enqueue, record_event
from connector.services.policy_scopes import count_use, transfer_decision
from connector.services.processes import load, take_scripted_step
from connector.services.runtime import Runtime
from contracts import InvalidMessageError, Role
from contracts.negotiation import NegotiationState
from contracts.negotiation import reached_state as negotiation_reached
from contracts.transfer import TransferMessage as M
from contracts.transfer import TransferState as S
from contracts.transfer import command, next_state, pending_state, reached_state

PROCESS = "transfer"
PULL, PUSH, COMPUTE = "HttpData-PULL", "HttpData-PUSH", compute_transfers.FORMAT
FORMATS = (PULL, PUSH)
"""What an operator may start through /v3/transferprocesses; a Compute-PULL is started by a compute job."""
PROVIDED_FORMATS = (PULL, PUSH, COMPUTE)
"""What we answer as a provider: Compute-PULL runs a compute-to-data job and releases its gated outputs."""
PUSH_JOB = "PushData"  # an outbox job that is not a DSP message: the provider streams to the consumer
RELEASE_JOB = "PullRelease"  # an outbox job that is not a DSP message: the consumer pulls a compute release
JOBS = (PUSH_JOB, RELEASE_JOB)


def get_for_peer(uow: Session, pid: str, participant_id: str, *, lock: bool = False) -> TransferRow:
    return load(uow, TransferRow, pid, what="transfer process", peer=participant_id, lock=lock)


def get_local(uow: Session, transfer_id: str, *, lock: bool = False) -> TransferRow:
    return load(uow, TransferRow, transfer_id, what="transfer process", lock=lock)


def _command(uow: Session, rt: Runtime, row: TransferRow, kind: M, params: dict[str, Any] | None = None, *,
             delay: float = 0.0) -> None:
    decided = command(S(row.state), kind, role=Role(row.role), process_id=row.id)
    row.state = decided.pending
    row.updated_at = rt.clock()
    enqueue(uow, rt, process_type=PROCESS, process_id=row.id, message=kind.value, params=params, delay=delay)


def _check_pids(row: TransferRow, message: dict[str, Any]) -> None:
    ours, theirs = ("consumerPid", "providerPid") if row.role == Role.CONSUMER else ("providerPid", "consumerPid")
    if message.get(ours) != row.id:
        raise InvalidMessageError(f"{ours} {message.get(ours)!r} does not match transfer {row.id}", process_id=row.id)
    if row.role == Role.CONSUMER and row.provider_pid is None:
        row.provider_pid = message.get(theirs)
    elif message.get(theirs) != (row.provider_pid if row.role == Role.CONSUMER else row.consumer_pid):
        raise InvalidMessageError(f"{theirs} {message.get(theirs)!r} does not match transfer {row.id}",
                                  process_id=row.id)


def _apply_inbound(uow: Session, rt: Runtime, row: TransferRow, kind: M, message: dict[str, Any]) -> None:
    _check_pids(row, message)
    row.state = next_state(S(row.state), kind, sender=Role(row.role).peer, process_id=row.id)
    row.updated_at = rt.clock()
    record_event(uow, rt, process_id=row.id, direction="in", message=kind.value, state=row.state)


# -- provider --------------------------------------------------------------------------------------------------------
def provider_on_request(uow: Session, rt: Runtime, *, participant_id: str,
                        message: dict[str, Any]) -> tuple[TransferRow, bool]:
    consumer_pid = message["consumerPid"]
    existing = uow.scalars(select(TransferRow).where(
        TransferRow.role == Role.PROVIDER, TransferRow.counter_party_id == participant_id,
        TransferRow.consumer_pid == consumer_pid)).first()
    if existing is not None:
        return existing, False
    callback = check_callback(rt, message.get("callbackAddress", ""))
    agreement = _agreement_for(uow, message["agreementId"], participant_id)
    transfer_format = message.get("format")
    if transfer_format not in PROVIDED_FORMATS:
        raise InvalidMessageError(f"format {transfer_format!r} is not offered; use one of "
                                  f"{', '.join(PROVIDED_FORMATS)}")
    destination = message.get("dataAddress")
    if transfer_format == PUSH and not destination:
        raise InvalidMessageError(f"format {PUSH} needs a dataAddress to push to")
    compute_request = None
    if transfer_format == COMPUTE:
        compute_request = compute_transfers.parse_compute_request(message)
        decision = compute_transfers.request_decision(rt, agreement, compute_request)
        if not decision.permitted:
            raise InvalidMessageError(f"agreement {agreement.id} does not permit this compute job: "
                                      f"{decision.explain()}")
    else:
        decision = transfer_decision(rt, agreement)
        if not decision.permitted:
            raise InvalidMessageError(f"agreement {agreement.id} no longer permits a transfer: {decision.explain()}")
        count_use(agreement)
    now = rt.clock()
    row = TransferRow(
        id=rt.new_id(), role=Role.PROVIDER, state=S.INITIAL, consumer_pid=consumer_pid,
        counter_party_id=participant_id, counter_party_address=callback, agreement_id=agreement.id,
        asset_id=agreement.asset_id, transfer_type=transfer_format, data_destination=destination,
        created_at=now, updated_at=now,
    )
    row.provider_pid = row.id
    row.state = next_state(S.INITIAL, M.REQUEST, sender=Role.CONSUMER, process_id=row.id)
    uow.add(row)
    record_event(uow, rt, process_id=row.id, direction="in", message=M.REQUEST.value, state=row.state)
    if compute_request is not None:  # no start until the job is final (compute_transfers.job_finished)
        uow.flush()
        compute_transfers.accept(uow, rt, transfer=row, agreement=agreement, request=compute_request)
        return row, True
    scripted = rt.script.transfer_step(row, Trigger.CREATED)
    run_step(uow, rt, row, scripted or Step.START, delay=rt.script.pace_seconds if scripted else 0.0)
    return row, True


def _agreement_for(uow: Session, agreement_id: str, participant_id: str) -> AgreementRow:
    agreement = uow.get(AgreementRow, agreement_id, with_for_update=True)  # its use counter changes below
    if agreement is None or agreement.role != Role.PROVIDER or agreement.consumer_id != participant_id:
        raise InvalidMessageError(f"agreement {agreement_id} does not exist between us and {participant_id}")
    negotiation = uow.get(NegotiationRow, agreement.negotiation_id)
    if negotiation is None or negotiation_reached(NegotiationState(negotiation.state)) != NegotiationState.FINALIZED:
        raise InvalidMessageError(f"agreement {agreement_id} is not finalized")
    return agreement


def active_source(uow: Session, transfer_id: str) -> dict[str, Any] | None:
    """The data address a pull transfer we provide serves while it is started; None revokes access.

    An HttpData-PULL serves its asset; a Compute-PULL serves only its job's release document, never the asset."""
    row = uow.get(TransferRow, transfer_id)
    if row is None or row.role != Role.PROVIDER or reached_state(S(row.state)) != S.STARTED:
        return None
    if row.transfer_type == COMPUTE:
        return compute_transfers.release_address(uow, row)
    asset = uow.get(AssetRow, row.asset_id) if row.asset_id else None
    return None if asset is None else dict(asset.data_address)


# -- consumer --------------------------------------------------------------------------------------------------------
def initiate(uow: Session, rt: Runtime, *, counter_party_address: str, agreement_id: str, transfer_type: str,
             data_destination: dict[str, Any] | None, compute_job: dict[str, Any] | None = None) -> TransferRow:
    """Consumer: ask the provider for a transfer. `compute_job` (Compute-PULL only) travels in the request as the
    `computeJob` extension member (see `compute_transfers`)."""
    agreement = uow.get(AgreementRow, agreement_id)
    if agreement is None or agreement.role != Role.CONSUMER:
        raise InvalidMessageError(f"contract agreement {agreement_id} does not exist; negotiate it first")
    if not agreement.finalized:
        raise InvalidMessageError(f"contract agreement {agreement_id} is not finalized yet")
    allowed = (*FORMATS, COMPUTE) if compute_job is not None else FORMATS
    if transfer_type not in allowed:
        raise InvalidMessageError(f"transferType {transfer_type!r} is not supported; use one of {', '.join(allowed)}")
    if transfer_type == PUSH and not data_destination:
        raise InvalidMessageError(f"transferType {PUSH} needs a dataDestination to push to")
    now = rt.clock()
    row = TransferRow(
        id=rt.new_id(), role=Role.CONSUMER, state=S.INITIAL, provider_pid=None,
        counter_party_id=agreement.provider_id, counter_party_address=counter_party_address.rstrip("/"),
        agreement_id=agreement.id, asset_id=agreement.asset_id, transfer_type=transfer_type,
        data_destination=data_destination if transfer_type == PUSH else None, created_at=now, updated_at=now,
    )
    row.consumer_pid = row.id
    uow.add(row)
    _command(uow, rt, row, M.REQUEST, {"computeJob": compute_job} if compute_job is not None else None)
    return row


# -- inbound for either role -------------------------------------------------------------------------------------------
def on_message(uow: Session, rt: Runtime, *, participant_id: str, pid: str, kind: M,
               message: dict[str, Any]) -> TransferRow:
    row = get_for_peer(uow, pid, participant_id, lock=True)
    if repeated(uow, rt, row.id, message.get("@id")):
        return row
    if kind is M.START and row.role == Role.PROVIDER and S(row.state) != S.SUSPENDED:
        raise InvalidMessageError(f"transfer {row.id}: a consumer may send a start only to resume a suspended "
                                  "transfer", process_id=row.id)
    _apply_inbound(uow, rt, row, kind, message)
    if kind is M.START and row.role == Role.PROVIDER and row.transfer_type == PULL:
        _answer_resume(uow, rt, row)
    if kind is M.START and row.role == Role.CONSUMER and message.get("dataAddress"):
        _store_edr(uow, rt, row, message["dataAddress"])
    if kind in (M.TERMINATION, M.SUSPENSION) and message.get("reason"):
        row.error_detail = "; ".join(map(str, message["reason"]))
    if row.transfer_type == COMPUTE and row.role == Role.CONSUMER:
        if kind is M.START:  # pull the release document after commit, as persisted intent
            enqueue(uow, rt, process_type=PROCESS, process_id=row.id, message=RELEASE_JOB)
        elif kind is M.TERMINATION:
            compute_transfers.requester_terminated(uow, rt, row, code=message.get("code"),
                                                   reason=row.error_detail)
        return row
    if kind is M.START and row.role == Role.CONSUMER:
        run_step(uow, rt, row, rt.script.transfer_step(row, Trigger.STARTED) or Step.HOLD,
                 delay=rt.script.pace_seconds)
    return row


def send(uow: Session, rt: Runtime, row: TransferRow, kind: M, params: dict[str, Any] | None = None) -> None:
    """Queue one of our own messages on `row`, judged by the state table (for the compute-to-data hooks)."""
    _command(uow, rt, row, kind, params)
    if kind is M.TERMINATION and params and params.get("reason"):
        row.error_detail = str(params["reason"])


def run_step(uow: Session, rt: Runtime, row: TransferRow, step: Step, *, delay: float = 0.0) -> None:
    """Take one of our own moves on `row`, judged by the state table like any operator command."""
    match step:
        case Step.HOLD:
            pass
        case Step.REQUEST if row.role == Role.CONSUMER:
            _command(uow, rt, row, M.REQUEST, delay=delay)
        case Step.START:
            _command(uow, rt, row, M.START, delay=delay)
        case Step.SUSPEND:
            _command(uow, rt, row, M.SUSPENSION, {"code": "suspended", "reason": "suspended"}, delay=delay)
        case Step.COMPLETE:
            _command(uow, rt, row, M.COMPLETION, delay=delay)
        case Step.TERMINATE:
            _command(uow, rt, row, M.TERMINATION, {"code": "terminated", "reason": "terminated"}, delay=delay)
            row.error_detail = "terminated"
        case _:
            raise ValueError(f"a {Role(row.role).lower()} cannot take step {step.value} in a transfer")


def _answer_resume(uow: Session, rt: Runtime, row: TransferRow) -> None:
    """A consumer resumed a pull: answer with our own start, whose DataAddress carries a fresh token.

    Only our start message hands the consumer an endpoint and token, and Eclipse EDC's consumer waits for it
    (state RESUMED) before it uses the transfer again. The transfer counts as STARTED meanwhile.
    """
    _command(uow, rt, row, M.START)


def _store_edr(uow: Session, rt: Runtime, row: TransferRow, address: dict[str, Any]) -> None:
    edr = uow.get(EdrRow, row.id)
    if edr is None:
        uow.add(EdrRow(transfer_id=row.id, agreement_id=row.agreement_id, asset_id=row.asset_id,
                       provider_id=row.counter_party_id, data_address=address, created_at=rt.clock()))
    else:
        edr.data_address = address
        edr.created_at = rt.clock()


# -- operator commands -----------------------------------------------------------------------------------------------
def suspend(uow: Session, rt: Runtime, transfer_id: str, reason: str | None) -> TransferRow:
    row = get_local(uow, transfer_id, lock=True)
    _command(uow, rt, row, M.SUSPENSION, {"reason": reason})
    return row


def resume(uow: Session, rt: Runtime, transfer_id: str) -> TransferRow:
    row = get_local(uow, transfer_id, lock=True)
    _command(uow, rt, row, M.START)
    return row


def complete(uow: Session, rt: Runtime, transfer_id: str) -> TransferRow:
    row = get_local(uow, transfer_id, lock=True)
    _command(uow, rt, row, M.COMPLETION)
    return row


def terminate(uow: Session, rt: Runtime, transfer_id: str, reason: str | None) -> TransferRow:
    row = get_local(uow, transfer_id, lock=True)
    _command(uow, rt, row, M.TERMINATION, {"reason": reason})
    row.error_detail = reason
    return row


# -- acknowledgements --------------------------------------------------------------------------------------------------
_AFTER = {M.REQUEST: S.REQUESTED, M.START: S.STARTED, M.SUSPENSION: S.SUSPENDED, M.COMPLETION: S.COMPLETED,
          M.TERMINATION: S.TERMINATED}


def on_delivered(uow: Session, rt: Runtime, transfer_id: str, kind: M, ack: dict[str, Any] | None) -> None:
    row = get_local(uow, transfer_id, lock=True)
    if ack and row.role == Role.CONSUMER and row.provider_pid is None and ack.get("providerPid"):
        row.provider_pid = ack["providerPid"]
    target = _AFTER[kind]
    if row.state == pending_state(target):
        row.state = target
        row.updated_at = rt.clock()
    record_event(uow, rt, process_id=row.id, direction="out", message=kind.value, state=row.state)
    if kind is M.START and row.role == Role.PROVIDER and row.transfer_type == PUSH and row.state == S.STARTED:
        enqueue(uow, rt, process_type=PROCESS, process_id=row.id, message=PUSH_JOB)
    if row.state == target:
        take_scripted_step(uow, rt, row, rt.script.transfer_step(row, Trigger.DELIVERED, kind.value), run_step)


def on_failed(uow: Session, rt: Runtime, transfer_id: str, kind: M, reason: str) -> None:
    row = get_local(uow, transfer_id, lock=True)
    record_event(uow, rt, process_id=row.id, direction="out", message=kind.value, state=row.state, detail=reason)
    if reached_state(S(row.state)) in (S.COMPLETED, S.TERMINATED) and kind is not M.TERMINATION:
        return
    row.state = S.TERMINATED
    row.error_detail = f"{kind.value} failed: {reason}"
    row.updated_at = rt.clock()
    if row.transfer_type == COMPUTE and row.role == Role.CONSUMER:
        compute_transfers.requester_refused(uow, rt, row, kind=kind.value, reason=reason)


def on_release_failed(uow: Session, rt: Runtime, transfer_id: str, reason: str) -> None:
    """We could not pull a compute release: our job fails with the reason and the transfer is terminated."""
    row = get_local(uow, transfer_id, lock=True)
    compute_transfers.requester_failed(uow, rt, row, f"pulling the release failed: {reason}")
    if reached_state(S(row.state)) not in (S.COMPLETED, S.TERMINATED):
        send(uow, rt, row, M.TERMINATION, {"code": "c2d:RELEASE_FAILED", "reason": reason[:500]})


def on_pushed(uow: Session, rt: Runtime, transfer_id: str, *, error: str | None) -> None:
    """The provider finished streaming to the consumer: tell it the transfer completed, or why it stopped."""
    row = get_local(uow, transfer_id, lock=True)
    if S(row.state) != S.STARTED:
        return  # suspended or terminated while pushing; that message already went out
    if error is None:
        _command(uow, rt, row, M.COMPLETION)
    else:
        _command(uow, rt, row, M.TERMINATION, {"code": "push.failed", "reason": error})
        row.error_detail = error
