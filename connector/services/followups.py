"""The seam for what a connector does on its own after a protocol step, without an operator.

By default the services automate (a provider agrees to an unchanged catalog offer, finalizes after verification,
starts a requested transfer; a consumer verifies an agreement). A `Script` on the Runtime may replace each of those
decisions, per process: the DSP TCK extension (`connector.tck`) uses it to play the scenario of each test, where
the counter-party's callback server refuses any message the scenario does not expect.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from connector.persistence.tables import NegotiationRow, TransferRow


class Step(StrEnum):
    """Our next move. HOLD means: do nothing now and wait (for the peer or an operator)."""

    HOLD = "hold"
    OFFER = "offer"
    REQUEST = "request"
    ACCEPT = "accept"
    AGREE = "agree"
    VERIFY = "verify"
    FINALIZE = "finalize"
    TERMINATE = "terminate"
    START = "start"
    SUSPEND = "suspend"
    COMPLETE = "complete"


class Trigger(StrEnum):
    """What just happened to a process. DELIVERED is passed with the message kind that the peer acknowledged."""

    CREATED = "created"  # a provider received the initial request; a consumer created its process
    REQUEST = "request"  # provider: a counter-request arrived
    OFFER = "offer"  # consumer: an offer arrived
    ACCEPTED = "accepted"  # provider: the consumer accepted our offer
    AGREEMENT = "agreement"  # consumer: an agreement arrived
    VERIFIED = "verified"  # provider: the consumer verified the agreement
    STARTED = "started"  # consumer: the provider started the transfer
    DELIVERED = "delivered"  # the peer acknowledged one of our messages


class Script(Protocol):
    """Decides the next step for one process; None keeps the connector's default behaviour.

    `pace_seconds` holds back each scripted message that long: a scripted counter-party (the TCK) registers the
    handler for our next message only after it has seen the previous one, and refuses it (404/409) before.
    """

    pace_seconds: float

    def negotiation_step(self, row: NegotiationRow, trigger: Trigger, kind: str | None = None) -> Step | None: ...

    def transfer_step(self, row: TransferRow, trigger: Trigger, kind: str | None = None) -> Step | None: ...


class NoScript:
    """The default: every decision stays with the connector's own automation."""

    pace_seconds = 0.0

    def negotiation_step(self, row: NegotiationRow, trigger: Trigger, kind: str | None = None) -> Step | None:
        return None

    def transfer_step(self, row: TransferRow, trigger: Trigger, kind: str | None = None) -> Step | None:
        return None
