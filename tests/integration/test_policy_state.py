"""Policy state in the database: the per-agreement use counter (ODRL `count`) and the monitor's termination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from connector.persistence.database import Database
from connector.persistence.tables import AgreementRow, NegotiationRow, OutboxRow, TransferRow
from connector.services import transfers
from connector.services.runtime import Runtime
from connector.settings import Settings
from connector.workers.monitor import PolicyMonitor
from contracts import InvalidMessageError
from policies import OdrlPolicyEngine

CONSUMER = "did:web:localhost%3A9999"
START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def runtime(clock: Clock) -> Runtime:
    settings = Settings(dev=True, api_key="k" * 8).with_defaults()
    return Runtime(settings=settings, policies=OdrlPolicyEngine(), clock=clock)


def agreed(db: Database, policy: dict[str, Any]) -> str:
    with db.unit_of_work() as uow:
        uow.add(NegotiationRow(id="n1", role="PROVIDER", state="FINALIZED", consumer_pid="c1", provider_pid="n1",
                               counter_party_id=CONSUMER, counter_party_address="http://localhost:9999/api/dsp",
                               asset_id="a", offer={}, offer_by="CONSUMER", agreement_id="ag1",
                               created_at=START, updated_at=START))
        uow.add(AgreementRow(id="ag1", negotiation_id="n1", role="PROVIDER", provider_id="did:web:p",
                             consumer_id=CONSUMER, asset_id="a", policy=policy, signed_at=START, finalized=True))
    return "ag1"


def request(db: Database, rt: Runtime, n: int) -> TransferRow:
    message = {"consumerPid": f"consumer-{n}", "agreementId": "ag1", "format": "HttpData-PULL",
               "callbackAddress": "http://localhost:9999/api/dsp"}
    with db.unit_of_work() as uow:
        row, _ = transfers.provider_on_request(uow, rt, participant_id=CONSUMER, message=message)
        return row


def test_use_counter_is_persisted_and_count_limits_transfers(db: Database) -> None:
    agreed(db, {"@type": "Set", "permission": [{"action": "use", "constraint": [
        {"leftOperand": "count", "operator": "lteq", "rightOperand": 2}]}]})
    rt = runtime(Clock())
    request(db, rt, 1)
    request(db, rt, 2)
    with pytest.raises(InvalidMessageError, match="count"):
        request(db, rt, 3)
    with db.read_only() as session:
        assert session.get(AgreementRow, "ag1").use_count == 2  # type: ignore[union-attr]
        assert len(list(session.scalars(select(TransferRow)))) == 2


def test_monitor_terminates_a_started_transfer_once_its_window_closed(db: Database) -> None:
    agreed(db, {"@type": "Set", "permission": [{"action": "use", "constraint": [
        {"leftOperand": "dateTime", "operator": "lt", "rightOperand": (START + timedelta(minutes=10)).isoformat()}]}]})
    clock = Clock()
    rt = runtime(clock)
    transfer_id = request(db, rt, 1).id
    with db.unit_of_work() as uow:
        uow.get(TransferRow, transfer_id).state = "STARTED"  # type: ignore[union-attr]  # as after the start's ack
    monitor = PolicyMonitor(db, rt, interval=0)
    assert monitor.run_once() == 0
    clock.now = START + timedelta(minutes=11)
    assert monitor.run_once() == 1
    assert monitor.run_once() == 0  # already terminating: not terminated twice
    with db.read_only() as session:
        row = session.get(TransferRow, transfer_id)
        assert row is not None and row.state != "STARTED"
        assert "no longer permits this transfer" in (row.error_detail or "")
        owed = [o for o in session.scalars(select(OutboxRow).where(OutboxRow.process_id == transfer_id))
                if o.message == "TransferTerminationMessage"]
        assert len(owed) == 1 and "dateTime" in owed[0].params["reason"]
