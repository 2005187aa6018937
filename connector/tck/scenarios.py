"""The TCK scenarios as data: per dataset id (negotiations) or agreement id (transfers), what we do and when.

Each `Plan` has a `sequence` of our own moves, played one after another: the first when the process is created,
each next one when the peer has acknowledged the previous one. `on` maps what the peer does to our answer. Anything
a plan does not name is held (no automatic move), because the TCK's callback server refuses unexpected messages.
The rows follow the test tables of the TCK (see docs/conformance.md); ids outside them keep the default behaviour.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from connector.services.followups import Step, Trigger
from contracts import Role

if TYPE_CHECKING:
    from connector.persistence.tables import NegotiationRow, TransferRow

H, OFFER, REQUEST, ACCEPT, AGREE, VERIFY, FINALIZE, TERMINATE = (
    Step.HOLD, Step.OFFER, Step.REQUEST, Step.ACCEPT, Step.AGREE, Step.VERIFY, Step.FINALIZE, Step.TERMINATE)
START, SUSPEND, COMPLETE = Step.START, Step.SUSPEND, Step.COMPLETE
SUSPENSION_DELIVERED = "delivered:TransferSuspensionMessage"
# The TCK registers the handler for our next message only after its own record shows the previous step (it polls
# every 100 ms) and answers 404 or 409 before that; EDC's state machine ticks are as slow. Half a second is ample.
PACE_SECONDS = 0.5


@dataclass(frozen=True)
class Plan:
    sequence: tuple[Step, ...] = ()
    on: Mapping[str, Step] = field(default_factory=dict)


# CUT as provider of a negotiation (TCK CN:01-01 ... CN:03-04), keyed by the requested dataset.
PROVIDER_NEGOTIATIONS: Mapping[str, Plan] = MappingProxyType({
    "ACN0101": Plan((OFFER,)),
    "ACN0102": Plan((OFFER,), {Trigger.REQUEST: TERMINATE}),
    "ACN0103": Plan((OFFER,), {Trigger.ACCEPTED: AGREE, Trigger.VERIFIED: FINALIZE}),
    "ACN0104": Plan((AGREE,), {Trigger.VERIFIED: FINALIZE}),
    "ACN0201": Plan((TERMINATE,)),
    "ACN0202": Plan(()),
    "ACN0203": Plan((AGREE,)),
    "ACN0204": Plan((OFFER,)),
    "ACN0205": Plan((OFFER, TERMINATE)),
    "ACN0206": Plan((OFFER,), {Trigger.ACCEPTED: TERMINATE}),
    "ACN0207": Plan((AGREE,), {Trigger.VERIFIED: TERMINATE}),
    "ACN0301": Plan((AGREE,), {Trigger.VERIFIED: FINALIZE}),
    "ACN0302": Plan((OFFER,)),
    "ACN0303": Plan((OFFER,)),
    "ACN0304": Plan((OFFER,)),
})

# CUT as consumer of a negotiation (CN_C:01-01 ... CN_C:03-06); the hook sends the request, the first step.
CONSUMER_NEGOTIATIONS: Mapping[str, Plan] = MappingProxyType({
    "ACNC0101": Plan((REQUEST,), {Trigger.OFFER: ACCEPT, Trigger.AGREEMENT: VERIFY}),
    "ACNC0102": Plan((REQUEST,), {Trigger.OFFER: REQUEST}),
    "ACNC0103": Plan((REQUEST,), {Trigger.OFFER: TERMINATE}),
    "ACNC0104": Plan((REQUEST,), {Trigger.AGREEMENT: VERIFY}),
    "ACNC0201": Plan((REQUEST,)),
    "ACNC0202": Plan((REQUEST, TERMINATE)),
    "ACNC0203": Plan((REQUEST,), {Trigger.AGREEMENT: TERMINATE}),
    "ACNC0204": Plan((REQUEST,)),
    "ACNC0205": Plan((REQUEST,), {Trigger.OFFER: ACCEPT}),
    "ACNC0206": Plan((REQUEST,), {Trigger.AGREEMENT: VERIFY}),
    "ACNC0301": Plan((REQUEST,)),
    "ACNC0302": Plan((REQUEST,)),
    "ACNC0303": Plan((REQUEST,)),
    "ACNC0304": Plan((REQUEST,), {Trigger.OFFER: ACCEPT}),
    "ACNC0305": Plan((REQUEST,), {Trigger.OFFER: ACCEPT}),
    "ACNC0306": Plan((REQUEST,), {Trigger.OFFER: ACCEPT}),
})

# CUT as provider of a transfer (TP:01-01 ... TP:03-06), keyed by the agreement.
PROVIDER_TRANSFERS: Mapping[str, Plan] = MappingProxyType({
    "ATP0101": Plan((START, TERMINATE)),
    "ATP0102": Plan((START, COMPLETE)),
    "ATP0103": Plan((START, SUSPEND, TERMINATE)),
    "ATP0104": Plan((START, SUSPEND, START, COMPLETE)),
    "ATP0105": Plan((TERMINATE,)),
    **{f"ATP020{i}": Plan((START,)) for i in range(1, 5)},
    "ATP0205": Plan(()),
    "ATP0301": Plan(()),
    "ATP0302": Plan(()),
    **{f"ATP030{i}": Plan((START,)) for i in range(3, 7)},
})

# CUT as consumer of a transfer (TP_C:01-01 ... TP_C:03-06); the hook sends the request, the first step.
CONSUMER_TRANSFERS: Mapping[str, Plan] = MappingProxyType({
    **{f"ATPC010{i}": Plan((REQUEST,)) for i in range(1, 5)},
    "ATPC0201": Plan((REQUEST,), {Trigger.STARTED: TERMINATE}),
    "ATPC0202": Plan((REQUEST,), {Trigger.STARTED: COMPLETE}),
    "ATPC0203": Plan((REQUEST,), {Trigger.STARTED: SUSPEND, SUSPENSION_DELIVERED: TERMINATE}),
    "ATPC0204": Plan((REQUEST,), {Trigger.STARTED: SUSPEND, SUSPENSION_DELIVERED: START,
                                  "delivered:TransferStartMessage": COMPLETE}),
    "ATPC0205": Plan((REQUEST, TERMINATE)),
    **{f"ATPC030{i}": Plan((REQUEST,)) for i in range(1, 7)},
})

DATASETS = (*PROVIDER_NEGOTIATIONS, *CONSUMER_NEGOTIATIONS)
PROVIDER_AGREEMENTS = tuple(PROVIDER_TRANSFERS)
CONSUMER_AGREEMENTS = tuple(CONSUMER_TRANSFERS)


class TckScript:
    """The `Script` the services consult when `--tck` is on. It remembers, per process, how far its sequence got.

    The position lives in memory: a TCK run is one process that starts from an empty database.
    """

    pace_seconds = PACE_SECONDS

    def __init__(self) -> None:
        self._position: dict[str, int] = {}
        self._lock = threading.Lock()

    def negotiation_step(self, row: NegotiationRow, trigger: Trigger, kind: str | None = None) -> Step | None:
        plans = PROVIDER_NEGOTIATIONS if row.role == Role.PROVIDER else CONSUMER_NEGOTIATIONS
        return self._step(plans.get(row.asset_id or ""), row.id, trigger, kind)

    def transfer_step(self, row: TransferRow, trigger: Trigger, kind: str | None = None) -> Step | None:
        plans = PROVIDER_TRANSFERS if row.role == Role.PROVIDER else CONSUMER_TRANSFERS
        return self._step(plans.get(row.agreement_id), row.id, trigger, kind)

    def _step(self, plan: Plan | None, process_id: str, trigger: Trigger, kind: str | None) -> Step | None:
        if plan is None:
            return None  # not a TCK id: the connector's default behaviour
        if trigger is Trigger.CREATED:
            return self._advance(plan, process_id, first=True) or H
        if trigger is Trigger.DELIVERED:
            step = self._advance(plan, process_id, first=False)
            return step if step is not None else plan.on.get(f"delivered:{kind}")
        return plan.on.get(trigger, H)

    def _advance(self, plan: Plan, process_id: str, *, first: bool) -> Step | None:
        """The next step of the sequence, or None once it is played out."""
        with self._lock:
            position = 0 if first else self._position.get(process_id, 0) + 1
            if position >= len(plan.sequence):
                self._position[process_id] = len(plan.sequence)
                return None
            self._position[process_id] = position
            return plan.sequence[position]
