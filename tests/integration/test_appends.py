"""The prebuilt statements every DSP message runs, on both backends: what they report decides replays, queue order
and agreement state, so each answer is checked against the rows actually written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select

from connector.persistence import appends
from connector.persistence.database import Database
from connector.persistence.replay import DatabaseReplayGuard
from connector.persistence.tables import AgreementRow, EventRow, OutboxRow, ProcessedMessageRow, UsedTokenRow

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def _outbox_values(process_id: str, **changes: Any) -> dict[str, Any]:
    return {"message_id": f"urn:uuid:{uuid.uuid4()}", "process_type": "negotiation", "process_id": process_id,
            "message": "ContractRequestMessage", "params": {"a": 1}, "status": "pending", "attempts": 0,
            "next_attempt_at": NOW, "created_at": NOW, "leased_by": None, "lease_until": None, "last_error": None,
            "sent_at": None, **changes}


def _agreement(agreement_id: str) -> AgreementRow:
    return AgreementRow(id=agreement_id, negotiation_id="n-1", role="PROVIDER", provider_id="did:web:p",
                        consumer_id="did:web:c", asset_id="asset-1", policy={"permission": []}, signed_at=NOW,
                        finalized=False)


def test_a_token_id_is_recorded_once(db: Database) -> None:
    with db.unit_of_work() as uow:
        assert appends.record_token(uow, "jti-1", NOW) is True
        assert appends.record_token(uow, "jti-1", NOW) is False  # the same transaction
    with db.unit_of_work() as uow:
        assert appends.record_token(uow, "jti-1", NOW) is False  # a later one
        assert appends.record_token(uow, "jti-2", NOW) is True
    with db.read_only() as session:
        assert sorted(session.scalars(select(UsedTokenRow.jti))) == ["jti-1", "jti-2"]


class Replayed(Exception):
    pass


def test_a_guarded_token_id_goes_with_the_first_message_id(db: Database) -> None:
    with db.unit_of_work() as uow:
        appends.guard_token(uow, "jti-g1", NOW, replayed=Replayed)
        assert appends.record_processed(uow, "p-1", "urn:uuid:m-1", NOW) is True
        assert appends.record_processed(uow, "p-1", "urn:uuid:m-1", NOW) is False  # the token is not checked again
    with db.unit_of_work() as uow:  # a known message with a new token: a redelivery, not a replay
        appends.guard_token(uow, "jti-g2", NOW, replayed=Replayed)
        assert appends.record_processed(uow, "p-1", "urn:uuid:m-1", NOW) is False
    with db.read_only() as session:
        assert sorted(session.scalars(select(UsedTokenRow.jti))) == ["jti-g1", "jti-g2"]


def test_a_replayed_guarded_token_raises_and_rolls_back(db: Database) -> None:
    with db.unit_of_work() as uow:
        appends.guard_token(uow, "jti-g1", NOW, replayed=Replayed)
    with pytest.raises(Replayed), db.unit_of_work() as uow:  # with a new message: raises where its id is recorded
        appends.guard_token(uow, "jti-g1", NOW, replayed=Replayed)
        uow.add(_agreement("a-replayed"))
        appends.record_processed(uow, "p-2", "urn:uuid:m-2", NOW)
    with pytest.raises(Replayed), db.unit_of_work() as uow:  # with no message id: raises just before commit
        appends.guard_token(uow, "jti-g1", NOW, replayed=Replayed)
        uow.add(_agreement("a-replayed"))
    with db.read_only() as session:
        assert list(session.scalars(select(UsedTokenRow.jti))) == ["jti-g1"]  # recorded at commit the first time
        assert list(session.scalars(select(ProcessedMessageRow.message_id))) == []
        assert session.get(AgreementRow, "a-replayed") is None


def test_the_replay_guard_refuses_a_token_id_it_has_seen(db: Database) -> None:
    guard = DatabaseReplayGuard(db, lambda: NOW)
    assert guard.remember("jti-9", NOW) is True
    assert guard.remember("jti-9", NOW) is False


def _queue(uow: Any, values: dict[str, Any], *, in_order: bool = False) -> list[tuple[int, bool]]:
    """Queue a message among the closing writes; the list receives (seq, leased) just before commit."""
    queued: list[tuple[int, bool]] = []
    appends.queue_message_at_commit(uow, values, in_order=in_order,
                                    on_queued=lambda seq, leased: queued.append((seq, leased)))
    return queued


def test_a_message_is_leased_only_when_none_of_its_process_is_pending(db: Database) -> None:
    lease = {"leased_by": "sender-a", "lease_until": NOW}
    with db.unit_of_work() as uow:  # run in order at commit: each sees the ones before it
        first = _queue(uow, _outbox_values("p-1", **lease), in_order=True)
        second = _queue(uow, _outbox_values("p-1", **lease), in_order=True)
        other = _queue(uow, _outbox_values("p-2", **lease), in_order=True)  # another process
        _queue(uow, _outbox_values("p-3", status="sent"))
        after_sent = _queue(uow, _outbox_values("p-3", **lease), in_order=True)  # sent: not pending
        assert first == []  # nothing is written before commit
    [(first_seq, first_leased)], [(second_seq, second_leased)] = first, second
    assert (first_leased, second_leased, second_seq > first_seq) == (True, False, True)
    assert other[0][1] is True and after_sent[0][1] is True
    with db.read_only() as session:
        rows = list(session.scalars(select(OutboxRow).where(OutboxRow.process_id == "p-1").order_by(OutboxRow.seq)))
    assert [row.seq for row in rows] == [first_seq, second_seq]
    assert [(row.leased_by, row.lease_until) for row in rows] == [("sender-a", NOW), (None, None)]
    assert rows[0].params == {"a": 1} and rows[0].next_attempt_at == NOW


def test_events_and_processed_message_ids_are_written(db: Database) -> None:
    with db.unit_of_work() as uow:
        appends.record_event(uow, {"process_id": "p-1", "direction": "in", "message": "ContractRequestMessage",
                                   "state": "REQUESTED", "detail": None, "at": NOW})
        assert appends.record_processed(uow, "p-1", "urn:uuid:m-1", NOW) is True
        assert appends.record_processed(uow, "p-1", "urn:uuid:m-1", NOW) is False  # the same transaction
        assert appends.record_processed(uow, "p-2", "urn:uuid:m-1", NOW) is True  # another process
    with db.unit_of_work() as uow:
        assert appends.record_processed(uow, "p-1", "urn:uuid:m-1", NOW) is False  # a later one
    with db.read_only() as session:
        [event_row] = session.scalars(select(EventRow))
        assert (event_row.state, event_row.at) == ("REQUESTED", NOW)
        assert sorted(session.execute(select(ProcessedMessageRow.process_id, ProcessedMessageRow.message_id))) == [
            ("p-1", "urn:uuid:m-1"), ("p-2", "urn:uuid:m-1")]


def test_a_message_id_recorded_by_a_failed_transaction_is_forgotten(db: Database) -> None:
    """The id is written before the message is applied; a message that then fails must count as never taken."""
    try:
        with db.unit_of_work() as uow:
            assert appends.record_processed(uow, "p-1", "urn:uuid:m-1", NOW) is True
            raise RuntimeError("applying the message failed")
    except RuntimeError:
        pass
    with db.unit_of_work() as uow:
        assert appends.record_processed(uow, "p-1", "urn:uuid:m-1", NOW) is True


def test_an_agreement_is_finalized_whether_stored_or_still_pending(db: Database) -> None:
    with db.unit_of_work() as uow:
        uow.add(_agreement("stored"))
    with db.unit_of_work() as uow:
        loaded = uow.get(AgreementRow, "stored")
        appends.mark_agreement_finalized(uow, "stored")
        assert loaded is not None and loaded.finalized is True  # the loaded object follows the row
        uow.add(_agreement("pending"))
        appends.mark_agreement_finalized(uow, "pending")  # created in this very transaction
    with db.read_only() as session:
        assert {a.id: a.finalized for a in session.scalars(select(AgreementRow))} == {"stored": True,
                                                                                     "pending": True}


def test_a_row_inserted_in_a_unit_of_work_is_read_back_without_a_query(db: Database) -> None:
    """The identity map holds rows weakly; the unit of work keeps what it inserted, so no SELECT is needed."""
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with db.unit_of_work() as uow:
        uow.add(_agreement("a-1"))  # no reference kept here
        uow.flush()
        statements.clear()
        agreement = uow.get(AgreementRow, "a-1")
        assert agreement is not None and agreement.asset_id == "asset-1"
        assert statements == []


def test_a_row_is_marked_sent_only_by_the_holder_of_its_lease(db: Database) -> None:
    with db.unit_of_work() as uow:
        queued = _queue(uow, _outbox_values("p-1", leased_by="sender-a", lease_until=NOW))
    [(seq, _leased)] = queued
    with db.unit_of_work() as uow:
        assert appends.mark_sent(uow, seq, holder="sender-b", at=NOW) is False  # its lease ran out: not its row
    with db.unit_of_work() as uow:
        assert appends.mark_sent(uow, seq, holder="sender-a", at=NOW) is True
        assert appends.mark_sent(uow, seq, holder="sender-a", at=NOW) is False  # once
    with db.read_only() as session:
        row = session.get(OutboxRow, seq)
        assert row is not None and (row.status, row.sent_at, row.lease_until) == ("sent", NOW, None)


def _event(message: str) -> dict[str, Any]:
    return {"process_id": "p-1", "direction": "in", "message": message, "state": "REQUESTED", "detail": None,
            "at": NOW}


def test_a_unit_of_works_events_are_written_together_in_order_at_commit(db: Database) -> None:
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        with db.unit_of_work() as uow:
            for message in ("first", "second", "third"):
                appends.record_event(uow, _event(message))
            assert not [s for s in statements if "INSERT INTO events" in s]  # kept until commit
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert len([s for s in statements if "INSERT INTO events" in s]) == 1
    with db.read_only() as session:
        assert list(session.scalars(select(EventRow.message).order_by(EventRow.seq))) == ["first", "second", "third"]


def test_the_events_of_a_unit_of_work_that_rolls_back_are_not_written(db: Database) -> None:
    try:
        with db.unit_of_work() as uow:
            appends.record_event(uow, _event("never"))
            raise RuntimeError("the message fails")
    except RuntimeError:
        pass
    with db.read_only() as session:
        assert list(session.scalars(select(EventRow))) == []


def _negotiation(negotiation_id: str) -> Any:
    from connector.persistence.tables import NegotiationRow

    return NegotiationRow(id=negotiation_id, role="PROVIDER", state="REQUESTED", consumer_pid="c-1",
                          provider_pid=negotiation_id, counter_party_id="did:web:c", counter_party_address="http://c",
                          offer={"permission": [{"action": "use"}]}, offer_by="CONSUMER", created_at=NOW,
                          updated_at=NOW)


def test_the_row_lock_records_the_expected_message_and_the_guarded_token(db: Database) -> None:
    """On PostgreSQL the statement that locks the process row records both ids; on SQLite they are recorded as
    usual. Either way the handler's `record_processed` answers as if it had written them, and a replay raises."""
    from connector.persistence.tables import NegotiationRow
    from connector.services.processes import load

    with db.unit_of_work() as uow:
        uow.add(_negotiation("n-1"))
    statements: list[str] = []
    listener = lambda _conn, _cursor, statement, *_args: statements.append(statement)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        with db.unit_of_work() as uow:
            appends.guard_token(uow, "jti-l1", NOW, replayed=Replayed)
            appends.expect_message(uow, NegotiationRow, "n-1", "urn:uuid:m-1", NOW)
            row = load(uow, NegotiationRow, "n-1", what="negotiation", peer="did:web:c", lock=True)
            assert (row.state, row.offer, row.created_at) == ("REQUESTED", {"permission": [{"action": "use"}]}, NOW)
            assert appends.record_processed(uow, "n-1", "urn:uuid:m-1", NOW) is True
            assert appends.record_processed(uow, "n-1", "urn:uuid:m-1", NOW) is False  # written once
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    if db.engine.dialect.name == "postgresql":
        assert sum("new_token" in s and "FOR UPDATE" in s for s in statements) == 1
        assert not [s for s in statements if s.startswith("INSERT INTO used_tokens")]
    with db.unit_of_work() as uow:  # a redelivery under a new token: the message is known
        appends.guard_token(uow, "jti-l2", NOW, replayed=Replayed)
        appends.expect_message(uow, NegotiationRow, "n-1", "urn:uuid:m-1", NOW)
        load(uow, NegotiationRow, "n-1", what="negotiation", peer="did:web:c", lock=True)
        assert appends.record_processed(uow, "n-1", "urn:uuid:m-1", NOW) is False
    with pytest.raises(Replayed), db.unit_of_work() as uow:  # a replayed token, with a new message
        appends.guard_token(uow, "jti-l2", NOW, replayed=Replayed)
        appends.expect_message(uow, NegotiationRow, "n-1", "urn:uuid:m-2", NOW)
        load(uow, NegotiationRow, "n-1", what="negotiation", peer="did:web:c", lock=True)
        appends.record_processed(uow, "n-1", "urn:uuid:m-2", NOW)
    with db.read_only() as session:
        assert sorted(session.scalars(select(UsedTokenRow.jti))) == ["jti-l1", "jti-l2"]
        assert list(session.scalars(select(ProcessedMessageRow.message_id))) == ["urn:uuid:m-1"]
