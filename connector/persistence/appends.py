"""What every DSP message writes besides its process row, as prebuilt Core statements on the unit of work's
connection: its token id, its message id, an event, the outbox row it queues (whether one is queued already, and
that it was sent), and, once per negotiation, the agreement's finalized flag.

The two ids that guard against repeats (a token id, a message id) are written first and answer whether they were
new: one INSERT that skips a known id, where a SELECT followed by an INSERT took two statements (on PostgreSQL two
round trips) for every message.

Through the ORM each of these cost a flush of the unit of work (0.3-0.5 ms of CPU on this machine, ten times what
SQLite itself needs), and the write transactions of one SQLite database run one at a time, so that cost bounded how
many messages a connector could take per second. None of these rows is read back as an object in the transaction
that writes it, so none needs the identity map: a compiled statement with bound parameters is enough.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Executable, Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from connector.persistence import prebuilt, process_rows
from connector.persistence.database import before_commit
from connector.persistence.tables import AgreementRow, EventRow, OutboxRow, ProcessedMessageRow, UsedTokenRow

_EVENTS: Table = EventRow.__table__  # type: ignore[assignment]
_PROCESSED: Table = ProcessedMessageRow.__table__  # type: ignore[assignment]
_TOKENS: Table = UsedTokenRow.__table__  # type: ignore[assignment]
_OUTBOX: Table = OutboxRow.__table__  # type: ignore[assignment]
_AGREEMENTS: Table = AgreementRow.__table__  # type: ignore[assignment]

_INSERT_EVENTS = insert(_EVENTS).returning(_EVENTS.c.seq)
_INSERT_OUTBOX = insert(_OUTBOX).returning(_OUTBOX.c.seq)
_FINALIZE_AGREEMENT = (update(_AGREEMENTS).where(_AGREEMENTS.c.id == bindparam("agreement"))
                       .values(finalized=True))
_MARK_SENT = (update(_OUTBOX)
              .where(_OUTBOX.c.seq == bindparam("row_seq"), _OUTBOX.c.leased_by == bindparam("holder"),
                     _OUTBOX.c.status == "pending")
              .values(status="sent", sent_at=bindparam("sent_time"), lease_until=None))
_HAS_PENDING = select(_OUTBOX.c.seq).where(
    _OUTBOX.c.status == "pending", _OUTBOX.c.process_id == bindparam("process_id")).limit(1)


@cache
def _insert_new(table: Table, dialect: str) -> Executable:
    """INSERT that skips a row whose primary key is recorded already (both backends spell it ON CONFLICT DO
    NOTHING). It returns what it inserted: psycopg reports no row count for this statement, so a returned row is
    the answer."""
    module = postgresql if dialect == "postgresql" else sqlite
    key = list(table.primary_key.columns)
    return module.insert(table).on_conflict_do_nothing(index_elements=key).returning(*key)


def _inserted(uow: Session, table: Table, values: dict[str, Any]) -> bool:
    connection = uow.connection()
    return prebuilt.execute(connection, _insert_new(table, connection.dialect.name), values).fetchone() is not None


def record_token(uow: Session, jti: str, expires_at: Any) -> bool:
    """Record a token id; False when it was there already (a replay). No flush, no exception to catch."""
    return _inserted(uow, _TOKENS, {"jti": jti, "expires_at": expires_at})


EVENTS = "sovra_events"  # the events a unit of work recorded, written together just before commit


def record_event(uow: Session, values: dict[str, Any]) -> None:
    """Keep an event to be written with the unit of work's other events, in one statement just before commit: a
    message's transaction often records two (the acknowledgement of ours it settles, then the peer's message), and a
    batch of acknowledgements one each. Events are never read back in the transaction that writes them."""
    pending = uow.info.get(EVENTS)
    if pending is None:
        pending = uow.info[EVENTS] = []
        before_commit(uow, lambda: _write_events(uow))
    pending.append(values)


def _write_events(uow: Session) -> None:
    rows = uow.info.pop(EVENTS, None)
    if rows:  # with RETURNING, several rows go as one multi-row INSERT on both backends (not one per row)
        uow.connection().execute(_INSERT_EVENTS, rows)


def record_processed(uow: Session, process_id: str, message_id: str, received_at: Any) -> bool:
    """Record that `process_id` took message `message_id`; False when it had taken it already (a redelivery).
    Written before the message is applied: if applying it fails, the transaction and this row go together."""
    return _inserted(uow, _PROCESSED, {"process_id": process_id, "message_id": message_id,
                                       "received_at": received_at})


def mark_agreement_finalized(uow: Session, agreement_id: str) -> None:
    """One UPDATE instead of loading the agreement to flip one flag (both sides do it once per negotiation)."""
    held = process_rows.held(uow, AgreementRow, agreement_id)
    if held is not None:  # created or loaded in this unit of work: written with its other changes
        held.finalized = True
        return
    for obj in uow.new:
        if isinstance(obj, AgreementRow) and obj.id == agreement_id:  # not written yet: it is inserted finalized
            obj.finalized = True
            return
    prebuilt.execute(uow.connection(), _FINALIZE_AGREEMENT, {"agreement": agreement_id})
    agreement = uow.identity_map.get(identity_key(AgreementRow, agreement_id))
    if agreement is not None:  # loaded earlier in this unit of work: keep the object in step with the row
        set_committed_value(agreement, "finalized", True)


def queue_message(uow: Session, values: dict[str, Any]) -> int:
    """Insert an outbox row (every column given) and return its sequence number."""
    return int(prebuilt.execute(uow.connection(), _INSERT_OUTBOX, values).fetchone()[0])


def has_pending_message(uow: Session, process_id: str) -> bool:
    """Whether the outbox holds an unsent message of `process_id` (outbox rows are only ever inserted by
    `queue_message`, so the query sees this transaction's own rows without a flush)."""
    return prebuilt.execute(uow.connection(), _HAS_PENDING, {"process_id": process_id}).fetchone() is not None


def mark_sent(uow: Session, seq: int, *, holder: str, at: Any) -> bool:
    """Mark outbox row `seq` sent if `holder` still holds its lease; False when the lease ran out and another
    sender took the row over (that sender records the outcome)."""
    cursor = prebuilt.execute(uow.connection(), _MARK_SENT, {"row_seq": seq, "holder": holder, "sent_time": at})
    return bool(cursor.rowcount == 1)
