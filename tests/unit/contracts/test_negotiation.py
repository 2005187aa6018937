"""The negotiation table: every legal move, every illegal one, and termination from every live state."""

from __future__ import annotations

import itertools

import pytest

from contracts import InvalidTransitionError, Role
from contracts.negotiation import (
    TRANSITIONS,
    NegotiationMessage,
    NegotiationState,
    command,
    is_final,
    next_state,
    pending_state,
    reached_state,
    wire_state,
)

S, M, C, P = NegotiationState, NegotiationMessage, Role.CONSUMER, Role.PROVIDER

HAPPY_PATH = [
    (C, S.INITIAL, M.CONTRACT_REQUEST, S.REQUESTED),
    (P, S.REQUESTED, M.AGREEMENT, S.AGREED),
    (C, S.AGREED, M.VERIFICATION, S.VERIFIED),
    (P, S.VERIFIED, M.FINALIZED_EVENT, S.FINALIZED),
]
COUNTER_PATH = [
    (C, S.INITIAL, M.CONTRACT_REQUEST, S.REQUESTED),
    (P, S.REQUESTED, M.CONTRACT_OFFER, S.OFFERED),
    (C, S.OFFERED, M.CONTRACT_REQUEST, S.REQUESTED),
    (P, S.REQUESTED, M.CONTRACT_OFFER, S.OFFERED),
    (C, S.OFFERED, M.ACCEPTED_EVENT, S.ACCEPTED),
    (P, S.ACCEPTED, M.AGREEMENT, S.AGREED),
]


@pytest.mark.parametrize("path", [HAPPY_PATH, COUNTER_PATH], ids=["happy", "counter-offers"])
def test_paths_through_the_table_reach_their_states(path: list[tuple[Role, S, M, S]]) -> None:
    state = S.INITIAL
    for sender, before, message, after in path:
        assert state is before
        state = next_state(state, message, sender=sender, process_id="p")
        assert state is after


def test_provider_may_open_with_an_offer() -> None:
    assert next_state(S.INITIAL, M.CONTRACT_OFFER, sender=P, process_id="p") is S.OFFERED


LIVE = [S.REQUESTED, S.OFFERED, S.ACCEPTED, S.AGREED, S.VERIFIED]


@pytest.mark.parametrize(("state", "sender"), list(itertools.product(LIVE, [C, P])))
def test_either_party_terminates_from_every_live_state(state: S, sender: Role) -> None:
    assert next_state(state, M.TERMINATION, sender=sender, process_id="p") is S.TERMINATED


ALL_DSP = [S.INITIAL, *LIVE, S.FINALIZED, S.TERMINATED]
ILLEGAL = [
    (sender, state, message)
    for sender, state, message in itertools.product([C, P], ALL_DSP, list(M))
    if (sender, state, message) not in TRANSITIONS
]


@pytest.mark.parametrize(("sender", "state", "message"), ILLEGAL)
def test_every_move_outside_the_table_is_rejected(sender: Role, state: S, message: M) -> None:
    with pytest.raises(InvalidTransitionError) as raised:
        next_state(state, message, sender=sender, process_id="neg-1")
    assert raised.value.process_id == "neg-1"
    assert raised.value.state == state


@pytest.mark.parametrize("final", [S.FINALIZED, S.TERMINATED])
def test_nothing_leaves_a_final_state(final: S) -> None:
    assert is_final(final)
    for sender, message in itertools.product([C, P], M):
        with pytest.raises(InvalidTransitionError):
            next_state(final, message, sender=sender, process_id="p")


def test_spec_examples_of_invalid_transitions() -> None:
    for state, message, sender in [
        (S.ACCEPTED, M.VERIFICATION, C),  # verification before agreement
        (S.OFFERED, M.AGREEMENT, P),  # agreement while the consumer must answer the offer
        (S.REQUESTED, M.FINALIZED_EVENT, P),
        (S.AGREED, M.FINALIZED_EVENT, P),  # verification skipped
        (S.REQUESTED, M.CONTRACT_REQUEST, C),  # second counter-request while requested
        (S.OFFERED, M.ACCEPTED_EVENT, P),  # a provider never sends ACCEPTED
        (S.VERIFIED, M.FINALIZED_EVENT, C),  # a consumer never sends FINALIZED
    ]:
        with pytest.raises(InvalidTransitionError):
            next_state(state, message, sender=sender, process_id="p")


def test_our_command_stores_the_pending_state_and_owes_the_message() -> None:
    decided = command(S.REQUESTED, M.AGREEMENT, role=P, process_id="p")
    assert (decided.pending, decided.target, decided.message) == (S.AGREEING, S.AGREED, M.AGREEMENT)


def test_pending_states_count_as_reached_for_the_peer_and_on_the_wire() -> None:
    # The consumer's verification may arrive before our worker records that the agreement was acknowledged.
    assert next_state(S.AGREEING, M.VERIFICATION, sender=C, process_id="p") is S.VERIFIED
    assert wire_state(S.AGREEING) == "AGREED"
    assert reached_state(pending_state(S.FINALIZED)) is S.FINALIZED


def test_terminating_accepts_only_termination() -> None:
    with pytest.raises(InvalidTransitionError):
        next_state(S.TERMINATING, M.AGREEMENT, sender=P, process_id="p")
    with pytest.raises(InvalidTransitionError):  # already terminated from our side
        next_state(S.TERMINATING, M.TERMINATION, sender=P, process_id="p")
