"""Everything that changes a transfer process's state lives here (DSP 2025-1 §Transfer Process).

Same shape as `contracts.negotiation`: one table keyed by (sender role, DSP state, message kind), -ING states for
the messages we owe, and a function that shows -ING states on the wire as the state they lead to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from contracts.errors import InvalidTransitionError
from contracts.roles import Role


class TransferState(StrEnum):
    INITIAL = "INITIAL"
    REQUESTING = "REQUESTING"
    REQUESTED = "REQUESTED"
    STARTING = "STARTING"
    STARTED = "STARTED"
    SUSPENDING = "SUSPENDING"
    SUSPENDED = "SUSPENDED"
    COMPLETING = "COMPLETING"
    COMPLETED = "COMPLETED"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"


class TransferMessage(StrEnum):
    REQUEST = "TransferRequestMessage"
    START = "TransferStartMessage"
    SUSPENSION = "TransferSuspensionMessage"
    COMPLETION = "TransferCompletionMessage"
    TERMINATION = "TransferTerminationMessage"


S = TransferState
M = TransferMessage
C, P = Role.CONSUMER, Role.PROVIDER

TRANSITIONS: Final[Mapping[tuple[Role, TransferState, TransferMessage], TransferState]] = {
    (C, S.INITIAL, M.REQUEST): S.REQUESTED,
    (P, S.REQUESTED, M.START): S.STARTED,
    # A consumer may send a start only to resume a suspended transfer.
    (P, S.SUSPENDED, M.START): S.STARTED,
    (C, S.SUSPENDED, M.START): S.STARTED,
    **{(role, S.STARTED, M.COMPLETION): S.COMPLETED for role in (C, P)},
    **{(role, S.STARTED, M.SUSPENSION): S.SUSPENDED for role in (C, P)},
    **{
        (role, state, M.TERMINATION): S.TERMINATED
        for role in (C, P)
        for state in (S.REQUESTED, S.STARTED, S.SUSPENDED)
    },
}

_PENDING: Final[Mapping[TransferState, TransferState]] = {
    S.REQUESTED: S.REQUESTING,
    S.STARTED: S.STARTING,
    S.SUSPENDED: S.SUSPENDING,
    S.COMPLETED: S.COMPLETING,
    S.TERMINATED: S.TERMINATING,
}
_REACHED: Final[Mapping[TransferState, TransferState]] = {v: k for k, v in _PENDING.items()}

FINAL_STATES: Final = frozenset({S.COMPLETED, S.TERMINATED})


def is_final(state: TransferState) -> bool:
    return state in FINAL_STATES


def pending_state(target: TransferState) -> TransferState:
    return _PENDING[target]


def reached_state(state: TransferState) -> TransferState:
    return _REACHED.get(state, state)


def wire_state(state: TransferState | str) -> str:
    return reached_state(TransferState(state)).value


def next_state(
    state: TransferState, message: TransferMessage, *, sender: Role, process_id: str
) -> TransferState:
    """Judge one message from `sender`; raise InvalidTransitionError (nothing changes) if the table has no entry."""
    if state is S.TERMINATING and message is not M.TERMINATION:
        raise InvalidTransitionError(process_id=process_id, state=state, kind=message, sender=sender)
    try:
        return TRANSITIONS[(sender, reached_state(state), message)]
    except KeyError:
        raise InvalidTransitionError(
            process_id=process_id, state=state, kind=message, sender=sender
        ) from None


@dataclass(frozen=True, slots=True)
class Command:
    pending: TransferState
    target: TransferState
    message: TransferMessage


def command(state: TransferState, message: TransferMessage, *, role: Role, process_id: str) -> Command:
    target = next_state(state, message, sender=role, process_id=process_id)
    return Command(pending=pending_state(target), target=target, message=message)
