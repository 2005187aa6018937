"""A script's step after an acknowledgement: taken when the state table allows it, recorded and skipped when not."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from connector.persistence.database import Database
from connector.persistence.tables import EventRow, NegotiationRow, OutboxRow, TransferRow
from connector.services import negotiations, transfers
from connector.services.followups import Step, Trigger
from connector.services.runtime import Runtime
from connector.settings import Settings
from contracts.negotiation import NegotiationMessage, NegotiationState
from contracts.transfer import TransferMessage, TransferState
from policies import OdrlPolicyEngine

PEER = "did:web:localhost%3A9999"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class OneStep:
    """Answers every acknowledgement with `step`; everything else keeps the default behaviour."""

    pace_seconds = 0.0

    def __init__(self, step: Step) -> None:
        self.step = step

    def negotiation_step(self, row: NegotiationRow, trigger: Trigger, kind: str | None = None) -> Step | None:
        return self.step if trigger is Trigger.DELIVERED else None

    def transfer_step(self, row: TransferRow, trigger: Trigger, kind: str | None = None) -> Step | None:
        return self.step if trigger is Trigger.DELIVERED else None


def runtime(step: Step) -> Runtime:
    rt = Runtime(settings=Settings(dev=True, api_key="k" * 8).with_defaults(), policies=OdrlPolicyEngine(),
                 clock=lambda: NOW)
    rt.script = OneStep(step)
    return rt


def offering(db: Database) -> None:
    with db.unit_of_work() as uow:
        uow.add(NegotiationRow(id="n1", role="PROVIDER", state=NegotiationState.OFFERING, consumer_pid="c1",
                               provider_pid="n1", counter_party_id=PEER, counter_party_address="http://localhost:9999",
                               asset_id="a", offer={}, offer_by="PROVIDER", created_at=NOW, updated_at=NOW))


def transfer(db: Database, state: TransferState) -> None:
    with db.unit_of_work() as uow:
        uow.add(TransferRow(id="t1", role="PROVIDER", state=state, consumer_pid="c1",
                            provider_pid="t1", counter_party_id=PEER, counter_party_address="http://localhost:9999",
                            agreement_id="ag1", asset_id="a", transfer_type="HttpData-PULL", created_at=NOW,
                            updated_at=NOW))


def skipped(db: Database, process_id: str) -> list[str | None]:
    with db.read_only() as session:
        return [e.detail for e in session.scalars(select(EventRow).where(EventRow.process_id == process_id))
                if e.detail and e.detail.startswith("scripted step skipped")]


def queued(db: Database, process_id: str) -> list[str]:
    with db.read_only() as session:
        return [o.message for o in session.scalars(select(OutboxRow).where(OutboxRow.process_id == process_id))]


def test_negotiation_takes_an_allowed_scripted_step(db: Database) -> None:
    offering(db)
    with db.unit_of_work() as uow:
        negotiations.on_delivered(uow, runtime(Step.TERMINATE), "n1", NegotiationMessage.CONTRACT_OFFER, None)
    with db.read_only() as session:
        assert session.get(NegotiationRow, "n1").state == NegotiationState.TERMINATING
    assert queued(db, "n1") == [NegotiationMessage.TERMINATION.value]
    assert skipped(db, "n1") == []


def test_negotiation_records_and_skips_a_step_the_state_table_refuses(db: Database) -> None:
    offering(db)
    with db.unit_of_work() as uow:  # a provider cannot finalize an offer nobody accepted
        negotiations.on_delivered(uow, runtime(Step.FINALIZE), "n1", NegotiationMessage.CONTRACT_OFFER, None)
    with db.read_only() as session:
        assert session.get(NegotiationRow, "n1").state == NegotiationState.OFFERED  # the acknowledgement counts
    assert queued(db, "n1") == []
    assert len(skipped(db, "n1")) == 1


def test_transfer_takes_an_allowed_scripted_step(db: Database) -> None:
    transfer(db, TransferState.STARTING)
    with db.unit_of_work() as uow:
        transfers.on_delivered(uow, runtime(Step.COMPLETE), "t1", TransferMessage.START, None)
    with db.read_only() as session:
        assert session.get(TransferRow, "t1").state == TransferState.COMPLETING
    assert queued(db, "t1") == [TransferMessage.COMPLETION.value]
    assert skipped(db, "t1") == []


def test_transfer_records_and_skips_a_step_the_state_table_refuses(db: Database) -> None:
    transfer(db, TransferState.COMPLETING)
    with db.unit_of_work() as uow:  # a completed transfer cannot be terminated any more
        transfers.on_delivered(uow, runtime(Step.TERMINATE), "t1", TransferMessage.COMPLETION, None)
    with db.read_only() as session:
        assert session.get(TransferRow, "t1").state == TransferState.COMPLETED
    assert queued(db, "t1") == []
    assert len(skipped(db, "t1")) == 1
