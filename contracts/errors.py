"""Errors raised by the contract domain.

    ContractsError
    ├── InvalidTransitionError   a message or command is illegal in the current state (DSP: 400)
    ├── UnknownProcessError      no such process, or it belongs to another participant (DSP: 404)
    ├── InvalidMessageError      the message does not fit the process: ids, agreement, address (DSP: 400)
    └── OfferRejectedError       the requested offer is not one we advertise, or policy denies it (DSP: 400)
"""

from __future__ import annotations


class ContractsError(Exception):
    """Base class of every error the contract domain raises."""


class InvalidTransitionError(ContractsError):
    """A message or command does not apply to the process in its current state."""

    def __init__(self, *, process_id: str, state: str, kind: str, sender: str) -> None:
        self.process_id = process_id
        self.state = state
        self.kind = kind
        self.sender = sender
        super().__init__(
            f"cannot apply {kind} from the {sender} to process {process_id} in state {state}"
        )


class UnknownProcessError(ContractsError):
    """The process does not exist for this participant (never reveal that it exists for another)."""

    def __init__(self, process_id: str, *, what: str = "process") -> None:
        self.process_id = process_id
        super().__init__(f"{what} {process_id} does not exist")


class OfferRejectedError(ContractsError):
    """The offer cannot be agreed: unknown offer id, a changed policy, or a policy that denies the requester."""

    def __init__(self, reason: str, *, offer_id: str | None = None) -> None:
        self.offer_id = offer_id
        self.reason = reason
        super().__init__(reason)


class InvalidMessageError(ContractsError):
    """The message is well-formed but does not fit the process (wrong ids, missing agreement, bad address)."""

    def __init__(self, reason: str, *, process_id: str | None = None) -> None:
        self.process_id = process_id
        self.reason = reason
        super().__init__(reason)
