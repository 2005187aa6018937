"""The rules every DSP state machine shares; each process type supplies only its table and its states.

A machine judges one message from one sender against its table (h11 style: the same table for the peer's messages
and our own commands). Our own moves first store an -ING state that records the message we owe; the outbox turns it
into the DSP state once the peer acknowledges. -ING states never go on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from contracts.errors import InvalidTransitionError
from contracts.roles import Role

S = TypeVar("S", bound=StrEnum)
M = TypeVar("M", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class Command(Generic[S, M]):
    """Our own move: the state to store now, the state the acknowledgement leads to, the message owed."""

    pending: S
    target: S
    message: M


class StateMachine(Generic[S, M]):
    def __init__(self, *, states: type[S], transitions: Mapping[tuple[Role, S, M], S], pending: Mapping[S, S],
                 final: frozenset[S], terminating: S, termination: M) -> None:
        self.states = states
        self.transitions = transitions
        self._pending = pending
        self._reached = {v: k for k, v in pending.items()}
        self.final = final
        self._terminating = terminating
        self._termination = termination

    def is_final(self, state: S) -> bool:
        return state in self.final

    def pending_state(self, target: S) -> S:
        """The -ING state that records our intent to reach `target`."""
        return self._pending[target]

    def reached_state(self, state: S | str) -> S:
        """The DSP state an -ING state leads to once the peer acknowledges; DSP states map to themselves."""
        state = self.states(state)
        return self._reached.get(state, state)

    def wire_state(self, state: S | str) -> str:
        """The DSP name of a state: an -ING state is shown as the state it is about to reach."""
        return self.reached_state(state).value

    def next_state(self, state: S, message: M, *, sender: Role, process_id: str) -> S:
        """Judge one message from `sender`; raise InvalidTransitionError, changing nothing, if the table has no entry.

        An -ING state counts as the state it leads to: the peer may answer our message before our worker has
        recorded the acknowledgement (the message was delivered; only our bookkeeping lags behind).
        """
        if state == self._terminating and message != self._termination:
            raise InvalidTransitionError(process_id=process_id, state=state, kind=message, sender=sender)
        try:
            return self.transitions[(sender, self.reached_state(state), message)]
        except KeyError:
            raise InvalidTransitionError(process_id=process_id, state=state, kind=message, sender=sender) from None

    def command(self, state: S, message: M, *, role: Role, process_id: str) -> Command[S, M]:
        """Decide our own move with the peer's table, so we never send what we would reject."""
        target = self.next_state(state, message, sender=role, process_id=process_id)
        return Command(pending=self.pending_state(target), target=target, message=message)
