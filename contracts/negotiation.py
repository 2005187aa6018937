"""Everything that changes a contract negotiation's state lives here (DSP 2025-1 §Contract Negotiation).

One table judges both the peer's inbound messages and our own commands, in the manner of h11: the key is
(sender role, DSP state, message kind). Our own commands first move to an "-ING" state that records the intent
("we owe the peer this message"); the outbox worker sends it and, on the peer's acknowledgement, moves the
negotiation to the DSP state. -ING states never go on the wire (`wire_state`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from contracts.errors import InvalidTransitionError
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
_REACHED: Final[Mapping[NegotiationState, NegotiationState]] = {v: k for k, v in _PENDING.items()}

FINAL_STATES: Final = frozenset({S.FINALIZED, S.TERMINATED})


def is_final(state: NegotiationState) -> bool:
    return state in FINAL_STATES


def pending_state(target: NegotiationState) -> NegotiationState:
    """The -ING state that records our intent to reach `target`."""
    return _PENDING[target]


def reached_state(state: NegotiationState) -> NegotiationState:
    """The DSP state an -ING state leads to once the peer acknowledges; DSP states map to themselves."""
    return _REACHED.get(state, state)


def wire_state(state: NegotiationState | str) -> str:
    """The DSP name of a state: an -ING state is shown as the state it is about to reach."""
    return reached_state(NegotiationState(state)).value


def next_state(
    state: NegotiationState, message: NegotiationMessage, *, sender: Role, process_id: str
) -> NegotiationState:
    """Judge one message from `sender` against the table and return the DSP state it leads to.

    An -ING state counts as the state it leads to: the peer may answer our message before our worker has
    recorded the acknowledgement (the message was delivered; only our bookkeeping lags behind).
    Raises InvalidTransitionError, leaving nothing changed, when the table has no entry.
    """
    key = (sender, reached_state(state), message)
    if state is S.TERMINATING and message is not M.TERMINATION:
        raise InvalidTransitionError(process_id=process_id, state=state, kind=message, sender=sender)
    try:
        return TRANSITIONS[key]
    except KeyError:
        raise InvalidTransitionError(
            process_id=process_id, state=state, kind=message, sender=sender
        ) from None


@dataclass(frozen=True, slots=True)
class Command:
    """Our own move: the state to store now and the message the outbox owes the peer."""

    pending: NegotiationState
    target: NegotiationState
    message: NegotiationMessage


def command(
    state: NegotiationState, message: NegotiationMessage, *, role: Role, process_id: str
) -> Command:
    """Decide our own move; the same table as the peer's, so we never send what we would reject."""
    target = next_state(state, message, sender=role, process_id=process_id)
    return Command(pending=pending_state(target), target=target, message=message)
