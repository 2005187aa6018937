"""Negotiations and agreements held by a unit of work outside the ORM session, on both backends: what a service
assigns must reach the database at commit (and only then), a rollback must write nothing, and a second load in
the same transaction must be the same object, without a second query."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select

from connector.persistence import appends, process_rows
from connector.persistence.database import Database, is_postgres
from connector.persistence.tables import AgreementRow, NegotiationRow

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def _negotiation(negotiation_id: str, **changes: object) -> NegotiationRow:
    values: dict[str, object] = {
        "id": negotiation_id, "role": "PROVIDER", "state": "REQUESTED", "consumer_pid": f"c-{negotiation_id}",
        "provider_pid": negotiation_id, "counter_party_id": "did:web:consumer",
        "counter_party_address": "https://consumer.example/dsp", "asset_id": "asset-1", "offer_by": "CONSUMER",
        "offer": {"@id": "offer-1", "permission": [{"action": "use"}]}, "created_at": NOW, "updated_at": NOW,
        **changes}
    return NegotiationRow(**values)


def _stored(db: Database, negotiation_id: str) -> NegotiationRow:
    with db.read_only() as session:
        row = session.get(NegotiationRow, negotiation_id)
    assert row is not None
    return row


@contextmanager
def _statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_a_created_row_is_inserted_at_commit_with_its_defaults(db: Database) -> None:
    with db.unit_of_work() as uow:
        row = _negotiation("n-1", offer_by="CONSUMER")
        process_rows.add(uow, row)
        assert row.pending_decision is False and row.agreement_id is None  # reads as it will be stored
        row.state = "AGREEING"  # a change after creation is part of the insert
        assert process_rows.load(uow, NegotiationRow, "n-1") is row
        assert process_rows.created_here(uow, NegotiationRow, "n-1")
        with db.read_only() as other:
            assert other.get(NegotiationRow, "n-1") is None  # nothing written before commit
    stored = _stored(db, "n-1")
    assert (stored.state, stored.pending_decision, stored.offer["@id"]) == ("AGREEING", False, "offer-1")


def test_changed_columns_are_written_at_commit_and_the_rest_left_alone(db: Database) -> None:
    with db.unit_of_work() as uow:
        process_rows.add(uow, _negotiation("n-2"))
    with db.unit_of_work() as uow:
        row = process_rows.load(uow, NegotiationRow, "n-2", lock=True)
        assert row is not None and row.state == "REQUESTED"
        row.state, row.error_detail, row.updated_at = "TERMINATED", "refused", NOW.replace(hour=8)
        row.asset_id = "asset-1"  # assigned its own value: no change to write
    stored = _stored(db, "n-2")
    assert (stored.state, stored.error_detail, stored.asset_id) == ("TERMINATED", "refused", "asset-1")
    assert stored.updated_at == NOW.replace(hour=8)
    assert stored.consumer_pid == "c-n-2" and stored.offer["permission"] == [{"action": "use"}]


def test_only_the_changed_columns_are_in_the_update(db: Database) -> None:
    with db.unit_of_work() as uow:
        process_rows.add(uow, _negotiation("n-3"))
    with _statements(db) as seen, db.unit_of_work() as uow:
        row = process_rows.load(uow, NegotiationRow, "n-3")
        assert row is not None
        row.state = "FINALIZED"
    updates = [s for s in seen if s.lstrip().upper().startswith("UPDATE NEGOTIATIONS")]
    assert len(updates) == 1
    set_clause = updates[0].upper().split(" SET ")[1].split(" WHERE ")[0]
    assert set_clause.count("=") == 1 and "STATE" in set_clause


def test_a_rolled_back_unit_of_work_writes_nothing(db: Database) -> None:
    with db.unit_of_work() as uow:
        process_rows.add(uow, _negotiation("n-4"))
    with pytest.raises(RuntimeError), db.unit_of_work() as uow:
        row = process_rows.load(uow, NegotiationRow, "n-4")
        assert row is not None
        row.state = "TERMINATED"
        process_rows.add(uow, _negotiation("n-5"))
        raise RuntimeError("the message turned out invalid")
    assert _stored(db, "n-4").state == "REQUESTED"
    with db.read_only() as session:
        assert session.get(NegotiationRow, "n-5") is None


def test_a_second_load_is_the_same_object_without_a_query(db: Database) -> None:
    with db.unit_of_work() as uow:
        process_rows.add(uow, _negotiation("n-6"))
    with db.unit_of_work() as uow:
        first = process_rows.load(uow, NegotiationRow, "n-6", lock=True)
        with _statements(db) as seen:
            again = process_rows.load(uow, NegotiationRow, "n-6", lock=True)
            missing = process_rows.load(uow, NegotiationRow, "nope")
        assert again is first and missing is None
        assert len(seen) == 1  # only the lookup of the missing row


def test_a_locked_load_locks_on_postgresql_once(db: Database) -> None:
    with db.unit_of_work() as uow:
        process_rows.add(uow, _negotiation("n-7"))
    with _statements(db) as seen, db.unit_of_work() as uow:
        process_rows.load(uow, NegotiationRow, "n-7")
        process_rows.load(uow, NegotiationRow, "n-7", lock=True)
        process_rows.load(uow, NegotiationRow, "n-7", lock=True)
    locking = [s for s in seen if "FOR UPDATE" in s.upper()]
    assert len(locking) == (1 if is_postgres(db.engine) else 0)


def test_a_held_agreement_is_finalized_with_its_insert(db: Database) -> None:
    with db.unit_of_work() as uow:
        process_rows.add(uow, AgreementRow(id="a-1", negotiation_id="n-8", role="CONSUMER", provider_id="did:web:p",
                                           consumer_id="did:web:c", asset_id="asset-1", policy={}, signed_at=NOW))
        appends.mark_agreement_finalized(uow, "a-1")
    with db.unit_of_work() as uow:
        appends.mark_agreement_finalized(uow, "a-1")  # not held: one UPDATE, idempotent
    with db.read_only() as session:
        agreement = session.scalars(select(AgreementRow).where(AgreementRow.id == "a-1")).one()
    assert agreement.finalized is True and agreement.use_count == 0
