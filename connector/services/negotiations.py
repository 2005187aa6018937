"""Contract negotiation use cases for both roles: inbound DSP messages, operator commands, acknowledgements.

Every function runs inside the caller's unit of work. A state change and the message it owes the peer are
written together (`_command`), so a crash never leaves one without the other; the outbox worker sends later.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from connector.dsp.messages import REQUEST_CONTEXT
from connector.persistence import appends, process_rows
from connector.persistence.tables import AgreementRow, NegotiationRow
from connector.services.followups import Step, Trigger
from connector.services.offers import negotiation_permitted, resolve_offer
from connector.services.outbox import enqueue, record_event
from connector.services.policy_scopes import checked_request_context
from connector.services.processes import load, take_scripted_step
from connector.services.runtime import Runtime
from connector.settings import is_loopback_host
from contracts import InvalidMessageError, OfferRejectedError, Role
from contracts.negotiation import FINAL_STATES, command, next_state, pending_state, reached_state
from contracts.negotiation import NegotiationMessage as M
from contracts.negotiation import NegotiationState as S
from contracts.offers import policy_rules, same_rules

PROCESS = "negotiation"


# -- loading and bookkeeping ---------------------------------------------------------------------------------------
def get_for_peer(uow: Session, pid: str, participant_id: str, *, lock: bool = False) -> NegotiationRow:
    """The negotiation `pid` (our id) if `participant_id` is its counter-party; otherwise it does not exist."""
    return load(uow, NegotiationRow, pid, what="negotiation", peer=participant_id, lock=lock)


def _locked_for_peer(uow: Session, rt: Runtime, pid: str, participant_id: str) -> NegotiationRow:
    """The negotiation a peer's message is applied to, under its row lock, with the acknowledgements of our own
    messages that wait to be recorded recorded first: its timeline shows our message before the answer to it."""
    row = get_for_peer(uow, pid, participant_id, lock=True)
    rt.outbox.settle(uow, row.id)
    return row


def get_local(uow: Session, negotiation_id: str, *, lock: bool = False) -> NegotiationRow:
    return load(uow, NegotiationRow, negotiation_id, what="negotiation", lock=lock)


def repeated(uow: Session, rt: Runtime, process_id: str, message_id: str | None) -> bool:
    """Whether `process_id` took message `message_id` before (a redelivery, answered as before and not applied
    again). A first delivery is recorded here, in the transaction that applies it: should applying it fail, the
    record goes too."""
    if not message_id:
        return False
    return not appends.record_processed(uow, process_id, str(message_id), rt.clock())


def expect_message(uow: Session, rt: Runtime, pid: str, message_id: str | None) -> None:
    """The peer's message `message_id` to `pid` is about to be handled, under the row lock: the statement that
    takes the lock may record its ids (`repeated` then reads the outcome) and mark the acknowledged messages of
    ours that its answer settles (`_locked_for_peer`)."""
    if message_id:
        appends.expect_message(uow, NegotiationRow, pid, message_id, rt.clock())
    rt.outbox.offer_to_lock(uow, NegotiationRow, pid)


def _remember(uow: Session, rt: Runtime, row: NegotiationRow, kind: M) -> None:
    record_event(uow, rt, process_id=row.id, direction="in", message=kind.value, state=row.state)


def _remember_first(uow: Session, rt: Runtime, row: NegotiationRow, message: dict[str, Any], kind: M) -> None:
    """For the message that created `row`: its id is recorded too (a new process cannot have seen it before). A peer
    that never saw our acknowledgement sends it again, and once it knows our process id (from our next message) it
    sends it to that process, where the record makes it a redelivery instead of an invalid transition."""
    if message.get("@id"):
        appends.record_processed(uow, row.id, str(message["@id"]), rt.clock())
    _remember(uow, rt, row, kind)


def _check_pids(row: NegotiationRow, message: dict[str, Any]) -> None:
    """Both ids in the message must name this negotiation; a peer id we do not know yet is learnt here."""
    ours, theirs = ("consumerPid", "providerPid") if row.role == Role.CONSUMER else ("providerPid", "consumerPid")
    if message.get(ours) != row.id:
        raise InvalidMessageError(f"{ours} {message.get(ours)!r} does not match negotiation {row.id}",
                                  process_id=row.id)
    known = row.provider_pid if row.role == Role.CONSUMER else row.consumer_pid
    if known is None:
        if row.role == Role.CONSUMER:
            row.provider_pid = message.get(theirs)
        else:
            row.consumer_pid = message.get(theirs)
    elif message.get(theirs) != known:
        raise InvalidMessageError(f"{theirs} {message.get(theirs)!r} does not match negotiation {row.id}",
                                  process_id=row.id)


def _command(uow: Session, rt: Runtime, row: NegotiationRow, kind: M, params: dict[str, Any] | None = None, *,
             delay: float = 0.0) -> None:
    decided = command(S(row.state), kind, role=Role(row.role), process_id=row.id)
    row.state = decided.pending
    row.pending_decision = False
    row.updated_at = rt.clock()
    enqueue(uow, rt, process_type=PROCESS, process_id=row.id, message=kind.value, params=params, delay=delay)


def _apply_inbound(uow: Session, rt: Runtime, row: NegotiationRow, kind: M, message: dict[str, Any]) -> None:
    _check_pids(row, message)
    row.state = next_state(S(row.state), kind, sender=Role(row.role).peer, process_id=row.id)
    row.updated_at = rt.clock()
    _remember(uow, rt, row, kind)


def check_callback(rt: Runtime, address: str) -> str:
    """A callback must be an https URL; plain http is accepted only for loopback in --dev (DSP: unrecoverable)."""
    parts = urlsplit(address or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidMessageError(f"callbackAddress {address!r} is not an http(s) URL")
    if parts.scheme == "http" and not (rt.settings.dev and is_loopback_host(parts.hostname)):
        raise InvalidMessageError(f"callbackAddress {address!r} must use https")
    return address.rstrip("/")


# -- provider: inbound ---------------------------------------------------------------------------------------------
def provider_on_request(uow: Session, rt: Runtime, *, participant_id: str,
                        message: dict[str, Any]) -> tuple[NegotiationRow, bool]:
    """Initial ContractRequestMessage; returns (negotiation, created). A repeat returns the first negotiation."""
    consumer_pid = message["consumerPid"]
    existing = process_rows.by_peer_pid(uow, Role.PROVIDER, participant_id, consumer_pid)
    if existing is not None:
        return existing, False
    callback = check_callback(rt, message.get("callbackAddress", ""))
    offer = message["offer"]
    resolved = resolve_offer(uow, rt, participant_id=participant_id, offer=offer, target=offer.get("target"))
    now = rt.clock()
    row = NegotiationRow(
        id=rt.new_id(), role=Role.PROVIDER, state=S.INITIAL, consumer_pid=consumer_pid, provider_pid=None,
        counter_party_id=participant_id, counter_party_address=callback, asset_id=resolved.asset.id,
        contract_definition_id=resolved.definition.id, offer=_offer_only(offer), offer_by=Role.CONSUMER,
        request_context=checked_request_context(message.get(REQUEST_CONTEXT), where=REQUEST_CONTEXT),
        created_at=now, updated_at=now,
    )
    row.provider_pid = row.id
    row.state = next_state(S.INITIAL, M.CONTRACT_REQUEST, sender=Role.CONSUMER, process_id=row.id)
    process_rows.add(uow, row)
    _remember_first(uow, rt, row, message, M.CONTRACT_REQUEST)
    _follow(uow, rt, row, Trigger.CREATED,
            default=lambda: _decide_on_consumer_offer(uow, rt, row, auto=resolved.definition.auto_agree))
    return row, True


def provider_on_counter_request(uow: Session, rt: Runtime, *, participant_id: str, pid: str,
                                message: dict[str, Any]) -> NegotiationRow:
    row = _locked_for_peer(uow, rt, pid, participant_id)
    if repeated(uow, rt, row.id, message.get("@id")):
        return row
    _apply_inbound(uow, rt, row, M.CONTRACT_REQUEST, message)
    row.offer, row.offer_by = _offer_only(message["offer"]), Role.CONSUMER

    def decide() -> None:
        try:
            resolved = resolve_offer(uow, rt, participant_id=participant_id, offer=row.offer, target=row.asset_id)
        except OfferRejectedError:
            row.pending_decision = True  # a genuine counter-proposal: an operator decides
            return
        _decide_on_consumer_offer(uow, rt, row, auto=resolved.definition.auto_agree)

    _follow(uow, rt, row, Trigger.REQUEST, default=decide)
    return row


def provider_on_accepted(uow: Session, rt: Runtime, *, participant_id: str, pid: str,
                         message: dict[str, Any]) -> NegotiationRow:
    row = _locked_for_peer(uow, rt, pid, participant_id)
    if repeated(uow, rt, row.id, message.get("@id")):
        return row
    if row.offer_by != Role.PROVIDER:
        raise InvalidMessageError(
            f"negotiation {row.id}: the consumer cannot accept its own offer; wait for a provider offer",
            process_id=row.id)
    _apply_inbound(uow, rt, row, M.ACCEPTED_EVENT, message)
    _follow(uow, rt, row, Trigger.ACCEPTED, default=lambda: agree(uow, rt, row))  # it accepted what we offered
    return row


def provider_on_verification(uow: Session, rt: Runtime, *, participant_id: str, pid: str,
                             message: dict[str, Any]) -> NegotiationRow:
    row = _locked_for_peer(uow, rt, pid, participant_id)
    if repeated(uow, rt, row.id, message.get("@id")):
        return row
    _apply_inbound(uow, rt, row, M.VERIFICATION, message)
    _follow(uow, rt, row, Trigger.VERIFIED, default=lambda: _command(uow, rt, row, M.FINALIZED_EVENT))
    return row


def _decide_on_consumer_offer(uow: Session, rt: Runtime, row: NegotiationRow, *, auto: bool) -> None:
    permitted, why = negotiation_permitted(rt, row.offer, row.counter_party_id, row.request_context)
    if not permitted:
        _command(uow, rt, row, M.TERMINATION, {"code": "policy.denied", "reason": why})
        row.error_detail = f"contract policy denies {row.counter_party_id}: {why}"
    elif auto:
        agree(uow, rt, row)
    else:
        row.pending_decision = True


def agree(uow: Session, rt: Runtime, row: NegotiationRow, *, delay: float = 0.0) -> AgreementRow:
    """Fix the agreement (id, parties, timestamp) once, then owe the consumer the ContractAgreementMessage."""
    agreement = AgreementRow(
        id=rt.new_id(), negotiation_id=row.id, role=Role.PROVIDER, provider_id=rt.settings.participant_id,
        consumer_id=row.counter_party_id, asset_id=row.asset_id or "",
        policy={**policy_rules(row.offer), **({"profile": row.offer["profile"]} if "profile" in row.offer else {})},
        signed_at=rt.clock().replace(microsecond=0), finalized=False, request_context=row.request_context,
    )
    process_rows.add(uow, agreement)
    row.agreement_id = agreement.id
    _command(uow, rt, row, M.AGREEMENT, delay=delay)
    return agreement


# -- consumer: inbound ---------------------------------------------------------------------------------------------
def consumer_on_initial_offer(uow: Session, rt: Runtime, *, participant_id: str,
                              message: dict[str, Any]) -> tuple[NegotiationRow, bool]:
    provider_pid = message["providerPid"]
    existing = process_rows.by_peer_pid(uow, Role.CONSUMER, participant_id, provider_pid)
    if existing is not None:
        return existing, False
    callback = check_callback(rt, message.get("callbackAddress", ""))
    offer = message["offer"]
    now = rt.clock()
    row = NegotiationRow(
        id=rt.new_id(), role=Role.CONSUMER, state=S.INITIAL, consumer_pid=None, provider_pid=provider_pid,
        counter_party_id=participant_id, counter_party_address=callback, asset_id=offer.get("target"),
        offer=_offer_only(offer), offer_by=Role.PROVIDER, pending_decision=True, created_at=now, updated_at=now,
    )
    row.consumer_pid = row.id
    row.state = next_state(S.INITIAL, M.CONTRACT_OFFER, sender=Role.PROVIDER, process_id=row.id)
    process_rows.add(uow, row)
    _remember_first(uow, rt, row, message, M.CONTRACT_OFFER)
    return row, True


def consumer_on_offer(uow: Session, rt: Runtime, *, participant_id: str, pid: str,
                      message: dict[str, Any]) -> NegotiationRow:
    row = _locked_for_peer(uow, rt, pid, participant_id)
    if repeated(uow, rt, row.id, message.get("@id")):
        return row
    _apply_inbound(uow, rt, row, M.CONTRACT_OFFER, message)
    row.offer, row.offer_by, row.pending_decision = _offer_only(message["offer"]), Role.PROVIDER, True
    _follow(uow, rt, row, Trigger.OFFER, default=lambda: None)  # by default an operator accepts or counters
    return row


def consumer_on_agreement(uow: Session, rt: Runtime, *, participant_id: str, pid: str,
                          message: dict[str, Any]) -> NegotiationRow:
    row = _locked_for_peer(uow, rt, pid, participant_id)
    if repeated(uow, rt, row.id, message.get("@id")):
        return row
    agreement = message["agreement"]
    if agreement.get("target") != row.asset_id or not same_rules(agreement, row.offer):
        raise InvalidMessageError(
            f"agreement {agreement.get('@id')} does not match the offer negotiated in {row.id}", process_id=row.id)
    if agreement.get("assignee") not in (None, rt.settings.participant_id):
        raise InvalidMessageError(f"agreement {agreement.get('@id')} is assigned to {agreement.get('assignee')}, "
                                  f"not to us ({rt.settings.participant_id})", process_id=row.id)
    _apply_inbound(uow, rt, row, M.AGREEMENT, message)
    process_rows.add(uow, AgreementRow(
        id=agreement["@id"], negotiation_id=row.id, role=Role.CONSUMER,
        provider_id=agreement.get("assigner") or row.counter_party_id,
        consumer_id=agreement.get("assignee") or rt.settings.participant_id, asset_id=agreement["target"],
        policy={k: v for k, v in agreement.items() if k in ("permission", "prohibition", "obligation", "profile")},
        signed_at=_parse_timestamp(agreement.get("timestamp"), rt), finalized=False,
    ))
    row.agreement_id = agreement["@id"]
    _follow(uow, rt, row, Trigger.AGREEMENT, default=lambda: _command(uow, rt, row, M.VERIFICATION))
    return row


def consumer_on_finalized(uow: Session, rt: Runtime, *, participant_id: str, pid: str,
                          message: dict[str, Any]) -> NegotiationRow:
    row = _locked_for_peer(uow, rt, pid, participant_id)
    if repeated(uow, rt, row.id, message.get("@id")):
        return row
    _apply_inbound(uow, rt, row, M.FINALIZED_EVENT, message)
    _mark_finalized(uow, row)
    return row


def on_termination(uow: Session, rt: Runtime, *, participant_id: str, pid: str,
                   message: dict[str, Any]) -> NegotiationRow:
    row = _locked_for_peer(uow, rt, pid, participant_id)
    if repeated(uow, rt, row.id, message.get("@id")):
        return row
    _apply_inbound(uow, rt, row, M.TERMINATION, message)
    reason = message.get("reason")
    row.error_detail = f"terminated by the {Role(row.role).peer.lower()}" + (
        f": {'; '.join(map(str, reason))}" if isinstance(reason, list) and reason else "")
    return row


# -- operator commands (management API) ----------------------------------------------------------------------------
def initiate(uow: Session, rt: Runtime, *, counter_party_address: str, counter_party_id: str,
             offer: dict[str, Any], request_context: dict[str, Any] | None = None) -> NegotiationRow:
    """Consumer: ask a provider for one of its offers (the offer must carry @id and target)."""
    target = offer.get("target")
    if not offer.get("@id") or not target:
        raise InvalidMessageError("the offer needs its @id (from the provider's catalog) and its target (dataset id)")
    now = rt.clock()
    row = NegotiationRow(
        id=rt.new_id(), role=Role.CONSUMER, state=S.INITIAL, provider_pid=None,
        counter_party_id=counter_party_id, counter_party_address=counter_party_address.rstrip("/"),
        asset_id=target, offer=_offer_only(offer), offer_by=Role.CONSUMER, created_at=now, updated_at=now,
        request_context=checked_request_context(request_context),
    )
    row.consumer_pid = row.id
    process_rows.add(uow, row)
    _command(uow, rt, row, M.CONTRACT_REQUEST)
    return row


def offer_to_consumer(uow: Session, rt: Runtime, *, counter_party_address: str, counter_party_id: str,
                      offer: dict[str, Any], asset_id: str) -> NegotiationRow:
    """Provider-initiated negotiation: send an offer to a consumer's `/negotiations/offers`."""
    now = rt.clock()
    row = NegotiationRow(
        id=rt.new_id(), role=Role.PROVIDER, state=S.INITIAL, consumer_pid=None,
        counter_party_id=counter_party_id, counter_party_address=counter_party_address.rstrip("/"),
        asset_id=asset_id, offer={**_offer_only(offer), "@id": offer.get("@id") or rt.new_id()},
        offer_by=Role.PROVIDER, created_at=now, updated_at=now,
    )
    row.provider_pid = row.id
    process_rows.add(uow, row)
    _command(uow, rt, row, M.CONTRACT_OFFER)
    return row


def counter_offer(uow: Session, rt: Runtime, negotiation_id: str, offer: dict[str, Any]) -> NegotiationRow:
    """Provider counter-offer, or consumer counter-request, depending on our role."""
    row = get_local(uow, negotiation_id, lock=True)
    row.offer = {**_offer_only(offer), "@id": offer.get("@id") or rt.new_id()}
    row.offer_by = row.role
    _command(uow, rt, row, M.CONTRACT_OFFER if row.role == Role.PROVIDER else M.CONTRACT_REQUEST)
    return row


def accept(uow: Session, rt: Runtime, negotiation_id: str) -> NegotiationRow:
    row = get_local(uow, negotiation_id, lock=True)
    if row.role != Role.CONSUMER:
        raise InvalidMessageError(f"negotiation {row.id}: only a consumer accepts an offer; a provider approves")
    _command(uow, rt, row, M.ACCEPTED_EVENT)
    return row


def approve(uow: Session, rt: Runtime, negotiation_id: str) -> NegotiationRow:
    row = get_local(uow, negotiation_id, lock=True)
    if row.role != Role.PROVIDER or not row.pending_decision:
        raise InvalidMessageError(f"negotiation {row.id} is not waiting for a provider decision")
    agree(uow, rt, row)
    return row


def terminate(uow: Session, rt: Runtime, negotiation_id: str, *, reason: str | None,
              code: str | None = None) -> NegotiationRow:
    row = get_local(uow, negotiation_id, lock=True)
    _command(uow, rt, row, M.TERMINATION, {"reason": reason, "code": code})
    row.error_detail = reason
    return row


# -- acknowledgements (outbox worker) ------------------------------------------------------------------------------
def on_delivered(uow: Session, rt: Runtime, negotiation_id: str, kind: M, ack: dict[str, Any] | None) -> None:
    """The peer acknowledged our message: record the ids it gave us and move -ING to its state (once)."""
    row = get_local(uow, negotiation_id, lock=True)
    if ack:
        if row.role == Role.CONSUMER and row.provider_pid is None and ack.get("providerPid"):
            row.provider_pid = ack["providerPid"]
        if row.role == Role.PROVIDER and row.consumer_pid is None and ack.get("consumerPid"):
            row.consumer_pid = ack["consumerPid"]
    target = next_state_after(kind)
    if row.state == pending_state(target):
        row.state = target
        row.updated_at = rt.clock()
        if target is S.FINALIZED:
            _mark_finalized(uow, row)
    record_event(uow, rt, process_id=row.id, direction="out", message=kind.value, state=row.state)
    if row.state == target:
        take_scripted_step(uow, rt, row, rt.script.negotiation_step(row, Trigger.DELIVERED, kind.value), run_step)


def on_failed(uow: Session, rt: Runtime, negotiation_id: str, kind: M, reason: str) -> None:
    """The peer refused our message, or never answered: the negotiation cannot go on."""
    row = get_local(uow, negotiation_id, lock=True)
    record_event(uow, rt, process_id=row.id, direction="out", message=kind.value, state=row.state, detail=reason)
    if reached_state(S(row.state)) in (S.FINALIZED, S.TERMINATED) and kind is not M.TERMINATION:
        return
    row.state = S.TERMINATED
    row.error_detail = f"{kind.value} failed: {reason}"
    row.updated_at = rt.clock()


# -- follow-ups: the default automation, or a script's step -----------------------------------------------------
def _follow(uow: Session, rt: Runtime, row: NegotiationRow, trigger: Trigger, *,
            default: Callable[[], Any]) -> None:
    step = rt.script.negotiation_step(row, trigger)
    if step is None:
        default()
    else:
        run_step(uow, rt, row, step, delay=rt.script.pace_seconds)


def run_step(uow: Session, rt: Runtime, row: NegotiationRow, step: Step, *, delay: float = 0.0) -> None:
    """Take one of our own moves on `row`, judged by the state table like any operator command."""
    match step:
        case Step.HOLD:
            row.pending_decision = True
        case Step.OFFER if row.role == Role.PROVIDER:
            row.offer_by = Role.PROVIDER
            _command(uow, rt, row, M.CONTRACT_OFFER, delay=delay)
        case Step.REQUEST if row.role == Role.CONSUMER:
            row.offer_by = Role.CONSUMER
            _command(uow, rt, row, M.CONTRACT_REQUEST, delay=delay)
        case Step.ACCEPT if row.role == Role.CONSUMER:
            _command(uow, rt, row, M.ACCEPTED_EVENT, delay=delay)
        case Step.AGREE if row.role == Role.PROVIDER:
            agree(uow, rt, row, delay=delay)
        case Step.VERIFY if row.role == Role.CONSUMER:
            _command(uow, rt, row, M.VERIFICATION, delay=delay)
        case Step.FINALIZE if row.role == Role.PROVIDER:
            _command(uow, rt, row, M.FINALIZED_EVENT, delay=delay)
        case Step.TERMINATE:
            _command(uow, rt, row, M.TERMINATION, {"code": "terminated", "reason": "terminated by the "
                                                   + Role(row.role).lower()}, delay=delay)
        case _:
            raise ValueError(f"a {Role(row.role).lower()} cannot take step {step.value} in a negotiation")


def answer_expected(kind: M) -> bool:
    """Whether the peer answers our message `kind` with a message of its own (no answer follows one that ends the
    negotiation): the outbox lets its acknowledgement wait for that answer's transaction to record it."""
    return next_state_after(kind) not in FINAL_STATES


def next_state_after(kind: M) -> S:
    return {
        M.CONTRACT_REQUEST: S.REQUESTED, M.CONTRACT_OFFER: S.OFFERED, M.ACCEPTED_EVENT: S.ACCEPTED,
        M.AGREEMENT: S.AGREED, M.VERIFICATION: S.VERIFIED, M.FINALIZED_EVENT: S.FINALIZED,
        M.TERMINATION: S.TERMINATED,
    }[kind]


def _mark_finalized(uow: Session, row: NegotiationRow) -> None:
    if row.agreement_id:
        appends.mark_agreement_finalized(uow, row.agreement_id)


def _offer_only(offer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in offer.items() if k not in ("@context",)}


def _parse_timestamp(value: Any, rt: Runtime) -> datetime:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return rt.clock()
