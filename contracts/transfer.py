"""Everything that changes a transfer process's state lives here (DSP 2025-1 §Transfer Process).

Same shape as `contracts.negotiation`: one table keyed by (sender role, DSP state, message kind), -ING states for
the messages we owe, and a function that shows -ING states on the wire as the state they lead to.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from contracts.machine import StateMachine
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
    # A provider may repeat its start while STARTED, to hand over a fresh DataAddress: Eclipse EDC answers a
    # consumer's resume that way (the spec's diagram leaves this open), and Sovra's provider does the same.
    (P, S.STARTED, M.START): S.STARTED,
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
FINAL_STATES: Final = frozenset({S.COMPLETED, S.TERMINATED})

MACHINE: Final = StateMachine(states=TransferState, transitions=TRANSITIONS, pending=_PENDING, final=FINAL_STATES,
                              terminating=S.TERMINATING, termination=M.TERMINATION)

is_final = MACHINE.is_final
pending_state = MACHINE.pending_state
reached_state = MACHINE.reached_state
wire_state = MACHINE.wire_state
next_state = MACHINE.next_state
command = MACHINE.command
