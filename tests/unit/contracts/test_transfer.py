from __future__ import annotations

import itertools

import pytest

from contracts import InvalidTransitionError, Role
from contracts.transfer import TRANSITIONS, TransferMessage, TransferState, command, next_state, wire_state

S, M, C, P = TransferState, TransferMessage, Role.CONSUMER, Role.PROVIDER


def test_pull_lifecycle_with_suspend_and_resume() -> None:
    state = next_state(S.INITIAL, M.REQUEST, sender=C, process_id="t")
    for sender, message, expected in [(P, M.START, S.STARTED), (C, M.SUSPENSION, S.SUSPENDED),
                                      (C, M.START, S.STARTED), (P, M.SUSPENSION, S.SUSPENDED),
                                      (P, M.START, S.STARTED), (C, M.COMPLETION, S.COMPLETED)]:
        state = next_state(state, message, sender=sender, process_id="t")
        assert state is expected


def test_consumer_cannot_start_a_requested_transfer() -> None:
    with pytest.raises(InvalidTransitionError):
        next_state(S.REQUESTED, M.START, sender=C, process_id="t")


@pytest.mark.parametrize(("state", "message"), [(S.REQUESTED, M.COMPLETION), (S.REQUESTED, M.SUSPENSION),
                                                (S.SUSPENDED, M.COMPLETION)])
def test_spec_examples_of_invalid_transitions(state: S, message: M) -> None:
    for sender in (C, P):
        with pytest.raises(InvalidTransitionError):
            next_state(state, message, sender=sender, process_id="t")


@pytest.mark.parametrize(("state", "sender"), list(itertools.product([S.REQUESTED, S.STARTED, S.SUSPENDED], [C, P])))
def test_termination_from_every_live_state(state: S, sender: Role) -> None:
    assert next_state(state, M.TERMINATION, sender=sender, process_id="t") is S.TERMINATED


@pytest.mark.parametrize(("final", "sender", "message"),
                         list(itertools.product([S.COMPLETED, S.TERMINATED], [C, P], list(M))))
def test_nothing_leaves_a_final_state(final: S, sender: Role, message: M) -> None:
    assert (sender, final, message) not in TRANSITIONS
    with pytest.raises(InvalidTransitionError):
        next_state(final, message, sender=sender, process_id="t")


def test_commands_go_through_pending_states() -> None:
    decided = command(S.STARTED, M.SUSPENSION, role=P, process_id="t")
    assert decided.pending is S.SUSPENDING and wire_state(decided.pending) == "SUSPENDED"


def test_a_provider_may_repeat_its_start_after_a_consumer_resume() -> None:
    # Eclipse EDC's provider answers a consumer's resume with a new TransferStartMessage (fresh EDR token).
    state = next_state(S.SUSPENDED, M.START, sender=C, process_id="t")
    assert next_state(state, M.START, sender=P, process_id="t") is S.STARTED


def test_a_consumer_still_cannot_start_a_started_transfer() -> None:
    with pytest.raises(InvalidTransitionError):
        next_state(S.STARTED, M.START, sender=C, process_id="t")
