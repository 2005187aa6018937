"""Everything that changes a contract negotiation's state lives here (DSP 2025-1 §Contract Negotiation).

One table judges both the peer's inbound messages and our own commands, in the manner of h11: the key is
(sender role, DSP state, message kind). Our own commands first move to an "-ING" state that records the intent
("we owe the peer this message"); the outbox worker sends it and, on the peer's acknowledgement, moves the
negotiation to the DSP state. -ING states never go on the wire (`wire_state`). The rules that apply the table
are shared with transfers (`contracts.machine`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from contracts.machine import StateMachine
from contracts.roles import Role


class NegotiationState(StrEnum):
    INITIAL = "INITIAL"
    REQUESTING = "REQUESTING"
    REQUESTED = "REQUESTED"
    OFFERING = "OFFERING"
    OFFERED = "OFFERED"
    ACCEPTING = "ACCEPTING"
    ACCEPTED = "ACCEPTED"
    AGREEING = "AGREEING"
    AGREED = "AGREED"
    VERIFYING = "VERIFYING"
    VERIFIED = "VERIFIED"
    FINALIZING = "FINALIZING"
    FINALIZED = "FINALIZED"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"


class NegotiationMessage(StrEnum):
    """Message kinds; the value is the DSP `@type` (events are split by `eventType`)."""

    CONTRACT_REQUEST = "ContractRequestMessage"
    CONTRACT_OFFER = "ContractOfferMessage"
    ACCEPTED_EVENT = "ContractNegotiationEventMessage:ACCEPTED"
    AGREEMENT = "ContractAgreementMessage"
    VERIFICATION = "ContractAgreementVerificationMessage"
    FINALIZED_EVENT = "ContractNegotiationEventMessage:FINALIZED"
    TERMINATION = "ContractNegotiationTerminationMessage"


S = NegotiationState
M = NegotiationMessage
C, P = Role.CONSUMER, Role.PROVIDER

_NON_FINAL: Final = (S.REQUESTED, S.OFFERED, S.ACCEPTED, S.AGREED, S.VERIFIED)

TRANSITIONS: Final[Mapping[tuple[Role, NegotiationState, NegotiationMessage], NegotiationState]] = {
    (C, S.INITIAL, M.CONTRACT_REQUEST): S.REQUESTED,
    (P, S.INITIAL, M.CONTRACT_OFFER): S.OFFERED,
    (P, S.REQUESTED, M.CONTRACT_OFFER): S.OFFERED,
    (P, S.REQUESTED, M.AGREEMENT): S.AGREED,
    (C, S.OFFERED, M.CONTRACT_REQUEST): S.REQUESTED,
    (C, S.OFFERED, M.ACCEPTED_EVENT): S.ACCEPTED,
    (P, S.ACCEPTED, M.AGREEMENT): S.AGREED,
    (C, S.AGREED, M.VERIFICATION): S.VERIFIED,
    (P, S.VERIFIED, M.FINALIZED_EVENT): S.FINALIZED,
    # The spec's prose lets either party terminate from any non-terminal state; its diagram is a subset.
    **{(role, state, M.TERMINATION): S.TERMINATED for role in (C, P) for state in _NON_FINAL},
}

_PENDING: Final[Mapping[NegotiationState, NegotiationState]] = {
    S.REQUESTED: S.REQUESTING,
    S.OFFERED: S.OFFERING,
    S.ACCEPTED: S.ACCEPTING,
    S.AGREED: S.AGREEING,
    S.VERIFIED: S.VERIFYING,
    S.FINALIZED: S.FINALIZING,
    S.TERMINATED: S.TERMINATING,
}
FINAL_STATES: Final = frozenset({S.FINALIZED, S.TERMINATED})

MACHINE: Final = StateMachine(states=NegotiationState, transitions=TRANSITIONS, pending=_PENDING, final=FINAL_STATES,
                              terminating=S.TERMINATING, termination=M.TERMINATION)

is_final = MACHINE.is_final
pending_state = MACHINE.pending_state
reached_state = MACHINE.reached_state
wire_state = MACHINE.wire_state
next_state = MACHINE.next_state
command = MACHINE.command
