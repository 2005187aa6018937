"""Prebuilt statements on the driver's cursor keep Core's meaning: the columns' type conversions, the engine's
cursor events, and SQLAlchemy's exceptions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, event, insert, select, update
from sqlalchemy.exc import DBAPIError

from connector.persistence import prebuilt
from connector.persistence.database import Database
from connector.persistence.tables import OutboxRow

OUTBOX = OutboxRow.__table__
AT = datetime(2026, 12, 6, 21, 0, 0, tzinfo=UTC)
INSERT = insert(OUTBOX).returning(OUTBOX.c.seq)
MARK = update(OUTBOX).where(OUTBOX.c.seq == bindparam("row_seq"), OUTBOX.c.status == "pending").values(
    status="sent", sent_at=bindparam("sent_time"))


def _values(message_id: str) -> dict[str, Any]:
    return {"message_id": message_id, "process_type": "negotiation", "process_id": "p-1", "message": "M",
            "params": {"reason": ["a", 1]}, "status": "pending", "attempts": 0, "next_attempt_at": AT,
            "created_at": AT, "leased_by": None, "lease_until": None, "last_error": None, "sent_at": None}


def test_values_go_through_the_column_types_and_read_back_as_core_wrote_them(db: Database) -> None:
    with db.unit_of_work() as uow:
        seq = prebuilt.execute(uow.connection(), INSERT, _values("m-1")).fetchone()[0]
        cursor = prebuilt.execute(uow.connection(), MARK, {"row_seq": seq, "sent_time": AT})
        assert cursor.rowcount == 1
        assert prebuilt.execute(uow.connection(), MARK, {"row_seq": seq, "sent_time": AT}).rowcount == 0
    with db.read_only() as session:
        row = session.get(OutboxRow, seq)
        assert row is not None
        assert (row.params, row.next_attempt_at, row.sent_at, row.status) == ({"reason": ["a", 1]}, AT, AT, "sent")


def test_the_engines_cursor_events_see_the_statements(db: Database) -> None:
    seen: list[str] = []
    listener = lambda _conn, _cursor, statement, *_args: seen.append(statement)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        with db.unit_of_work() as uow:
            prebuilt.execute(uow.connection(), INSERT, _values("m-2"))
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert [s for s in seen if s.startswith("INSERT INTO outbox")]


def test_a_driver_error_is_sqlalchemys_and_rolls_the_unit_of_work_back(db: Database) -> None:
    with pytest.raises(DBAPIError), db.unit_of_work() as uow:
        prebuilt.execute(uow.connection(), INSERT, _values("m-3"))
        prebuilt.execute(uow.connection(), INSERT, _values("m-3"))  # message_id is unique
    with db.read_only() as session:
        assert list(session.scalars(select(OutboxRow.seq))) == []


INSERT_PLAIN = insert(OUTBOX)
SET_ERROR = update(OUTBOX).where(OUTBOX.c.message_id == bindparam("which")).values(last_error=bindparam("error"))


def test_writes_run_together_with_each_ones_own_values(db: Database) -> None:
    """On PostgreSQL one statement (each part's parameters renamed apart, eight parts at most), on SQLite one
    statement each; the rows come out the same. Every part sees the rows as they were before the statement, so
    the parts of one call write distinct rows."""
    statements: list[str] = []
    listener = lambda _conn, _cursor, statement, *_args: statements.append(statement)  # noqa: E731
    inserts: list[tuple[Any, dict[str, Any]]] = [(INSERT_PLAIN, _values(f"m-{i}")) for i in range(10)]
    updates: list[tuple[Any, dict[str, Any]]] = [(SET_ERROR, {"which": f"m-{i}", "error": f"error {i} 100%"})
                                                 for i in range(0, 10, 3)]
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        with db.unit_of_work() as uow:
            prebuilt.execute_all(uow.connection(), inserts)
        with db.unit_of_work() as uow:
            prebuilt.execute_all(uow.connection(), [*updates, (INSERT_PLAIN, _values("m-10"))])
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    with db.read_only() as session:
        rows = {row.message_id: row for row in session.scalars(select(OutboxRow))}
    assert sorted(rows) == sorted(f"m-{i}" for i in range(11))
    assert {k: r.last_error for k, r in rows.items() if r.last_error} == {
        f"m-{i}": f"error {i} 100%" for i in range(0, 10, 3)}
    assert all(r.params == {"reason": ["a", 1]} and r.created_at == AT for r in rows.values())
    written = [s for s in statements if "outbox" in s]
    if db.engine.dialect.name == "postgresql":
        assert len(written) == 3 and all(s.startswith("WITH w0 AS (") for s in written)
    else:
        assert len(written) == 15


def test_a_failing_part_fails_the_whole_and_rolls_back(db: Database) -> None:
    with pytest.raises(DBAPIError), db.unit_of_work() as uow:
        prebuilt.execute_all(uow.connection(), [(INSERT_PLAIN, _values("m-1")), (INSERT_PLAIN, _values("m-2")),
                                                (INSERT_PLAIN, _values("m-1"))])  # message_id is unique
    with db.read_only() as session:
        assert list(session.scalars(select(OutboxRow.seq))) == []
