"""What every DSP message writes besides its process row, as prebuilt Core statements on the unit of work's
connection: its token id, its message id, an event, the outbox row it queues (whether one is queued already, and
that it was sent), and, once per negotiation, the agreement's finalized flag.

The two ids that guard against repeats (a token id, a message id) are written before the message is applied and
answer whether they were new: an INSERT that skips a known id, where a SELECT followed by an INSERT took two
statements (on PostgreSQL two round trips) for every message; on PostgreSQL both ids go in one statement. The
event and the finalized flag are closing writes (`closing_writes`), run with the process row's just before commit.

Through the ORM each of these cost a flush of the unit of work (0.3-0.5 ms of CPU on this machine, ten times what
SQLite itself needs), and the write transactions of one SQLite database run one at a time, so that cost bounded how
many messages a connector could take per second. None of these rows is read back as an object in the transaction
that writes it, so none needs the identity map: a compiled statement with bound parameters is enough.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from sqlalchemy import CTE, Executable, Table, bindparam, case, exists, func, insert, null, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from connector.persistence import closing_writes, prebuilt, process_rows
from connector.persistence.database import before_commit
from connector.persistence.tables import AgreementRow, EventRow, OutboxRow, ProcessedMessageRow, UsedTokenRow

_EVENTS: Table = EventRow.__table__  # type: ignore[assignment]
_PROCESSED: Table = ProcessedMessageRow.__table__  # type: ignore[assignment]
_TOKENS: Table = UsedTokenRow.__table__  # type: ignore[assignment]
_OUTBOX: Table = OutboxRow.__table__  # type: ignore[assignment]
_AGREEMENTS: Table = AgreementRow.__table__  # type: ignore[assignment]

_INSERT_OUTBOX = insert(_OUTBOX).returning(_OUTBOX.c.seq)
_FINALIZE_AGREEMENT = (update(_AGREEMENTS).where(_AGREEMENTS.c.id == bindparam("agreement"))
                       .values(finalized=True))
_MARK_SENT = (update(_OUTBOX)
              .where(_OUTBOX.c.seq == bindparam("row_seq"), _OUTBOX.c.leased_by == bindparam("holder"),
                     _OUTBOX.c.status == "pending")
              .values(status="sent", sent_at=bindparam("sent_time"), lease_until=None))


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


GUARDED_TOKEN = "sovra_guarded_token"  # the request's token id, not recorded yet, and the error a replay raises


def guard_token(uow: Session, jti: str, expires_at: Any, replayed: Callable[[], Exception]) -> None:
    """Record the request's token id in this unit of work, raising `replayed()` if it was recorded before.

    It is written with the first message id the transaction records (`record_processed`; on PostgreSQL both in
    one statement), else just before commit. Either way a replay raises before anything commits, and the unit of
    work rolls back whatever the handler did meanwhile."""
    uow.info[GUARDED_TOKEN] = ({"jti": jti, "expires_at": expires_at}, replayed)
    before_commit(uow, lambda: _record_guarded_token(uow))


def _record_guarded_token(uow: Session) -> None:
    guarded = uow.info.pop(GUARDED_TOKEN, None)
    if guarded is not None and not _inserted(uow, _TOKENS, guarded[0]):
        raise guarded[1]()


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
    for start in range(0, len(rows or ()), EVENTS_PER_INSERT):  # multi-row INSERTs among the closing writes
        chunk = rows[start:start + EVENTS_PER_INSERT]
        params = {f"{name}_{index}": value for index, row in enumerate(chunk) for name, value in row.items()}
        closing_writes.defer(uow, _insert_events(len(chunk)), params)


# Rows per INSERT: a batch of acknowledgements records one event each, and one statement takes at most 32766
# parameters on SQLite and 65535 on PostgreSQL (six per event).
EVENTS_PER_INSERT = 100


_EVENT_COLUMNS = ("process_id", "direction", "message", "state", "detail", "at")


@cache
def _insert_events(count: int) -> Executable:
    return insert(_EVENTS).values([{name: bindparam(f"{name}_{index}", type_=_EVENTS.c[name].type)
                                    for name in _EVENT_COLUMNS} for index in range(count)])


def record_processed(uow: Session, process_id: str, message_id: str, received_at: Any) -> bool:
    """Record that `process_id` took message `message_id`; False when it had taken it already (a redelivery).
    Written before the message is applied: if applying it fails, the transaction and this row go together. The
    request's guarded token id (`guard_token`) is recorded with it, and a replay raises here."""
    recorded = uow.info.get(RECORDED)
    if recorded and (process_id, message_id) in recorded:  # by the statement that locked the process row
        return bool(recorded.pop((process_id, message_id)))
    values = {"process_id": process_id, "message_id": message_id, "received_at": received_at}
    guarded = uow.info.pop(GUARDED_TOKEN, None)
    if guarded is None:
        return _inserted(uow, _PROCESSED, values)
    token, replayed = guarded
    connection = uow.connection()
    if connection.dialect.name != "postgresql":
        if not _inserted(uow, _TOKENS, token):
            raise replayed()
        return _inserted(uow, _PROCESSED, values)
    new_token, new_message = prebuilt.execute(connection, _token_and_message(), {**token, **values}).fetchone()
    if not new_token:
        raise replayed()
    return bool(new_message)


def _guarded_insert(table: Table, name: str) -> CTE:
    """PostgreSQL: the INSERT of a token id or a message id as a data-modifying WITH clause (`process_id` is the
    message's process, which is also the row a lock may select), returning what it inserted."""
    return (postgresql.insert(table).values({column: bindparam(column.key, type_=column.type)
                                             for column in table.columns})
            .on_conflict_do_nothing(index_elements=list(table.primary_key.columns))
            .returning(*table.primary_key.columns).cte(name))


GUARDED_INSERTS = (_guarded_insert(_TOKENS, "new_token"), _guarded_insert(_PROCESSED, "new_message"))


@cache
def _token_and_message() -> Executable:
    """PostgreSQL: both guarded inserts in one statement, and whether each inserted its row."""
    return select(*(select(func.count()).select_from(cte).scalar_subquery() for cte in GUARDED_INSERTS))


RECORDED = "sovra_recorded_messages"  # {(process id, message id): new} recorded with the row lock


def expect_message(uow: Session, cls: type, process_id: str, message_id: str, received_at: Any) -> None:
    """Announce the message id the handler will record for `process_id` (a row of `cls`, which it will lock): on
    PostgreSQL the statement that takes the lock records it, and the guarded token id with it, and
    `record_processed` then reads the outcome instead of writing. A replayed token raises there."""
    guarded = uow.info.get(GUARDED_TOKEN)
    if guarded is None:
        return
    token, replayed = guarded
    key = (process_id, message_id)

    def token_counted(count: int) -> None:
        uow.info.pop(GUARDED_TOKEN, None)
        if count == 0:
            raise replayed()

    def message_counted(count: int) -> None:
        uow.info.setdefault(RECORDED, {})[key] = count > 0

    new_token, new_message = GUARDED_INSERTS
    process_rows.ride_lock(uow, cls, process_id, new_token, token, token_counted)
    process_rows.ride_lock(uow, cls, process_id, new_message, {"message_id": message_id, "received_at": received_at},
                           message_counted)


def mark_agreement_finalized(uow: Session, agreement_id: str) -> None:
    """One UPDATE among the closing writes instead of loading the agreement to flip one flag (both sides do it
    once per negotiation)."""
    held = process_rows.held(uow, AgreementRow, agreement_id)
    if held is not None:  # created or loaded in this unit of work: written with its other changes
        held.finalized = True
        return
    for obj in uow.new:
        if isinstance(obj, AgreementRow) and obj.id == agreement_id:  # not written yet: it is inserted finalized
            obj.finalized = True
            return
    closing_writes.defer(uow, _FINALIZE_AGREEMENT, {"agreement": agreement_id})  # nothing reads it before commit
    agreement = uow.identity_map.get(identity_key(AgreementRow, agreement_id))
    if agreement is not None:  # loaded earlier in this unit of work: keep the object in step with the row
        set_committed_value(agreement, "finalized", True)


def queue_message_at_commit(uow: Session, values: dict[str, Any], *, in_order: bool,
                            on_queued: Callable[[int, bool], None]) -> None:
    """Insert an outbox row (every column given) among the transaction's closing writes: one statement with them
    on PostgreSQL. `in_order`: leased as `values` say unless a message of its process is pending already, in which
    case it goes in without a lease, to wait for its predecessor (checked inside the INSERT, not by a query first).
    `on_queued` gets the sequence number and whether the row is leased, still before commit (nothing needs the row
    earlier: the sender is handed it after commit)."""
    if in_order:
        closing_writes.defer_returning(uow, _INSERT_OUTBOX_IN_ORDER, values,
                                       lambda found: on_queued(int(found[0]), found[1] is not None))
    else:
        closing_writes.defer_returning(uow, _INSERT_OUTBOX, values,
                                       lambda found: on_queued(int(found[0]), values["leased_by"] is not None))


def _insert_in_order() -> Executable:
    pending = exists().where(_OUTBOX.c.status == "pending", _OUTBOX.c.process_id == bindparam("process_id"))
    columns = [column for column in _OUTBOX.columns if column.key != "seq"]

    def value(column: Any) -> Any:
        given = bindparam(column.key, type_=column.type)
        return case((pending, null()), else_=given) if column.key in ("leased_by", "lease_until") else given

    return (insert(_OUTBOX).from_select([column.key for column in columns], select(*map(value, columns)))
            .returning(_OUTBOX.c.seq, _OUTBOX.c.leased_by))


_INSERT_OUTBOX_IN_ORDER = _insert_in_order()


@cache
def mark_sent_clause(index: int) -> CTE:
    """PostgreSQL: `mark_sent` as a data-modifying WITH clause returning the row it marked, for the statement
    that locks the row's process (`process_rows.ride_lock`); its parameters are those of `mark_sent_params`."""
    return (update(_OUTBOX)
            .where(_OUTBOX.c.seq == bindparam(f"row_seq_{index}"), _OUTBOX.c.leased_by == bindparam(f"holder_{index}"),
                   _OUTBOX.c.status == "pending")
            .values(status="sent", sent_at=bindparam(f"sent_time_{index}", type_=_OUTBOX.c.sent_at.type),
                    lease_until=None)
            .returning(_OUTBOX.c.seq).cte(f"sent_{index}"))


def mark_sent_params(index: int, seq: int, *, holder: str, at: Any) -> dict[str, Any]:
    return {f"row_seq_{index}": seq, f"holder_{index}": holder, f"sent_time_{index}": at}


def mark_sent(uow: Session, seq: int, *, holder: str, at: Any) -> bool:
    """Mark outbox row `seq` sent if `holder` still holds its lease; False when the lease ran out and another
    sender took the row over (that sender records the outcome)."""
    cursor = prebuilt.execute(uow.connection(), _MARK_SENT, {"row_seq": seq, "holder": holder, "sent_time": at})
    return bool(cursor.rowcount == 1)
