"""Contract negotiation and transfer process state machines (pure: no I/O, no clock, no ids)."""

from contracts.errors import (
    ContractsError,
    InvalidMessageError,
    InvalidTransitionError,
    OfferRejectedError,
    UnknownProcessError,
)
from contracts.negotiation import NegotiationMessage, NegotiationState
from contracts.offers import OfferId
from contracts.roles import Role
from contracts.transfer import TransferMessage, TransferState

__all__ = [
    "ContractsError",
    "InvalidMessageError",
    "InvalidTransitionError",
    "NegotiationMessage",
    "NegotiationState",
    "OfferId",
    "OfferRejectedError",
    "Role",
    "TransferMessage",
    "TransferState",
    "UnknownProcessError",
]
