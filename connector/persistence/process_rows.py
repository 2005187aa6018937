"""Negotiations and their agreements in the protocol's hot path, read and written with prebuilt Core statements
instead of the ORM.

Every DSP message loads one negotiation, changes a few columns and commits. Through the session that cost an
identity-map lookup, a loader query and a unit-of-work flush that plans the UPDATE: on this machine 0.5 ms of CPU
per transaction on SQLite and 1.3 ms on PostgreSQL, against 0.2 and 0.8 ms for the same statements issued
directly, and both connectors spend most of a negotiation's time in such transactions.

A row loaded (or created) here is an instance of the mapped class that the session does not know. The unit of
work holds it, so a second load in the same transaction returns the same object; the class's instrumentation
still records which attributes a service assigns, and just before commit each changed row is written with one
UPDATE of its changed columns (a created row with one INSERT). Inside a unit of work that changes a negotiation
or an agreement, reach it only through `load` and create it only through `add`: `Session.get` would read a second
copy that misses the changes. Transfers still go through the session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import CTE, Executable, Table, bindparam, func, insert, literal, select, true, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state

from connector.persistence import closing_writes, prebuilt
from connector.persistence.database import before_commit, is_postgres
from connector.persistence.tables import AgreementRow, NegotiationRow

Row = TypeVar("Row", NegotiationRow, AgreementRow)

HELD = "sovra_held_rows"  # {(class, id): row} for the rows this unit of work holds
CREATED = "sovra_created_rows"  # the keys of those rows it created
LOCKED = "locked rows"  # (class, id) of the rows whose row lock this unit of work holds (PostgreSQL)


def load(uow: Session, cls: type[Row], process_id: str, *, lock: bool = False) -> Row | None:
    """The row `process_id`, or None. `lock` takes the row lock on PostgreSQL for the rest of the transaction
    (SQLite's write transactions are serial anyway); a row held already costs no query unless it needs the lock.
    The statement that takes the lock carries the writes offered to it (`ride_lock`)."""
    key = (cls, process_id)
    row = _held(uow).get(key)
    riders: list[_Rider] = uow.info.get(RIDERS, {}).pop(key, []) if lock else []
    locking = lock and _needs_lock(uow, key)
    if row is not None and not locking:
        return row  # type: ignore[return-value]
    if locking and riders:
        values = _carrying_lock(uow, _table(cls), process_id, riders)
        counts = [values.pop(f"rider_{index}") for index in range(len(riders))]
    else:
        found = uow.connection().execute(_select(_table(cls), locking), {"process_id": process_id}).first()
        values, counts = dict(found._mapping) if found is not None else {}, []
    if locking:
        uow.info.setdefault(LOCKED, set()).add(key)
    row = _held(uow).get(key)
    if row is None and values.get("id") is not None:  # a carrying lock answers one row, all None when none
        row = cls.__mapper__.class_manager.new_instance()
        row.__dict__.update(values)  # loaded values, not changes: the instrumentation tracks later assignments
        _held(uow)[key] = row
    for rider, count in zip(riders, counts, strict=False):
        rider.on_count(int(count))
    return row  # type: ignore[return-value]


RIDERS = "sovra_lock_riders"  # {(class, id): [_Rider]} offered to the statement that takes that row's lock


@dataclass(frozen=True, slots=True)
class _Rider:
    clause: CTE
    params: Mapping[str, Any]
    on_count: Callable[[int], None]


def ride_lock(uow: Session, cls: type[Row], process_id: str, clause: CTE, params: Mapping[str, Any],
              on_count: Callable[[int], None]) -> None:
    """Offer `clause`, a data-modifying WITH clause that returns a row per row it writes, to the statement that
    takes `process_id`'s row lock in this unit of work: a DSP message's transaction records its token and
    message ids, and marks our acknowledged messages sent, with the lock it takes anyway (one statement for four).

    `on_count` gets how many rows the clause returned (even when the row turns out missing), and may raise to
    refuse. When no such statement comes (SQLite, or the lock was taken already), nothing runs and nothing is
    called: whoever offered the clause does its work the usual way then. Parameter names must differ between the
    clauses offered for one row, except `process_id`, which is the row's id."""
    uow.info.setdefault(RIDERS, {}).setdefault((cls, process_id), []).append(_Rider(clause, params, on_count))


def _carrying_lock(uow: Session, table: Table, process_id: str, riders: list[_Rider]) -> dict[str, Any]:
    """Run the lock carrying `riders` as a prebuilt statement: Core would fill an UPDATE rider's SET clause with
    every parameter named like one of its table's columns (`process_id`, `message_id`). Its values are converted
    by the columns' types as Core would."""
    params = {"process_id": process_id}
    for rider in riders:
        params.update(rider.params)
    connection = uow.connection()
    cursor = prebuilt.execute(connection, _lock_carrying(table, tuple(rider.clause for rider in riders)), params)
    found = cursor.fetchone()
    values = dict(zip((column.name for column in cursor.description), found, strict=True))
    for name, process in _result_processors(table, connection.dialect):
        values[name] = process(values[name])
    return values


def _result_processors(table: Table, dialect: Any) -> list[tuple[str, Callable[[Any], Any]]]:
    key = (table, dialect.name)
    processors = _PROCESSORS.get(key)
    if processors is None:
        processors = _PROCESSORS[key] = [
            (column.name, process) for column in table.columns
            if (process := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None]
    return processors


_PROCESSORS: dict[tuple[Table, str], list[tuple[str, Callable[[Any], Any]]]] = {}


def riders_offered(uow: Session, cls: type[Row], process_id: str) -> int:
    """How many clauses wait to ride `process_id`'s row lock (a rider numbers its parameters from this)."""
    return len(uow.info.get(RIDERS, {}).get((cls, process_id), ()))


def _needs_lock(uow: Session, key: tuple[type, str]) -> bool:
    return (key not in uow.info.setdefault(LOCKED, set()) and key not in uow.info.get(CREATED, ())
            and is_postgres(uow.get_bind()))


def by_peer_pid(uow: Session, role: str, peer: str, peer_pid: str) -> NegotiationRow | None:
    """The negotiation in which we play `role` that `peer`'s initial message created under `peer_pid`, the id the
    peer gave it (a repeated initial message is answered as the first)."""
    found = prebuilt.execute(uow.connection(), _BY_PEER_PID[role], {"peer": peer, "peer_pid": peer_pid}).fetchone()
    return None if found is None else load(uow, NegotiationRow, found[0])


def add(uow: Session, row: NegotiationRow | AgreementRow) -> None:
    """Hold a new row; it is inserted just before commit, with the columns a service left unset at their
    defaults (filled in now, so that the row reads as it will be stored)."""
    for column in _table(type(row)).columns:
        if column.key not in row.__dict__:
            setattr(row, column.key, _default(column))
    key = (type(row), row.id)
    _held(uow)[key] = row
    uow.info.setdefault(CREATED, set()).add(key)


def created_here(uow: Session, cls: type[Row], row_id: str) -> bool:
    """Whether this unit of work created the row `row_id` (nothing of it can be in the database yet)."""
    return (cls, row_id) in uow.info.get(CREATED, ())


def held(uow: Session, cls: type[Row], row_id: str) -> Row | None:
    """The row `row_id` if this unit of work holds it (no query)."""
    return uow.info.get(HELD, {}).get((cls, row_id))  # type: ignore[no-any-return]


def write_back(uow: Session) -> None:
    """Insert the created rows and write each changed column of the loaded ones, among the transaction's closing
    writes. Runs just before commit."""
    created = uow.info.get(CREATED, ())
    for key, row in _held_rows(uow):
        state = instance_state(row)
        values = row.__dict__
        if key in created:
            table = _table(key[0])
            closing_writes.defer(uow, _insert(table), {column.key: values[column.key] for column in table.columns})
        else:
            changed = tuple(sorted(name for name, before in state.committed_state.items()
                                   if values.get(name) != before))
            if changed:
                closing_writes.defer(uow, _update(_table(key[0]), changed),
                                     {"process_id": key[1], **{f"new_{name}": values[name] for name in changed}})
        state.committed_state.clear()  # written: later assignments count from here
    uow.info.get(CREATED, set()).clear()


_NEGOTIATIONS: Table = NegotiationRow.__table__  # type: ignore[assignment]
_BY_PEER_PID = {
    role: select(_NEGOTIATIONS.c.id).where(
        _NEGOTIATIONS.c.role == role, _NEGOTIATIONS.c.counter_party_id == bindparam("peer"),
        _NEGOTIATIONS.c[peer_pid] == bindparam("peer_pid")).limit(1)
    for role, peer_pid in (("PROVIDER", "consumer_pid"), ("CONSUMER", "provider_pid"))
}


def _held(uow: Session) -> dict[tuple[type, str], Any]:
    held = uow.info.get(HELD)
    if held is None:
        held = uow.info[HELD] = {}
        before_commit(uow, lambda: write_back(uow))
    return held


def _held_rows(uow: Session) -> Iterator[tuple[tuple[type, str], Any]]:
    return iter(list(uow.info.get(HELD, {}).items()))


def _table(cls: type) -> Table:
    return cls.__table__  # type: ignore[attr-defined,no-any-return]


@cache
def _select(table: Table, lock: bool) -> Executable:
    statement = select(table).where(table.c.id == bindparam("process_id"))
    return statement.with_for_update() if lock else statement


@cache
def _lock_carrying(table: Table, clauses: tuple[CTE, ...]) -> Executable:
    """The row lock's SELECT with `clauses` as WITH clauses, each counted as rider_<index>; joined to a one-row
    table, so that it answers for them even when the row is missing."""
    locked = _select(table, True).cte("locked")
    one = select(literal(1).label("one")).subquery("one")
    counts = [select(func.count()).select_from(clause).scalar_subquery().label(f"rider_{index}")
              for index, clause in enumerate(clauses)]
    return select(*counts, *locked.c).select_from(one.outerjoin(locked, true()))


@cache
def _insert(table: Table) -> Executable:
    return insert(table)


@cache
def _update(table: Table, columns: tuple[str, ...]) -> Executable:
    return (update(table).where(table.c.id == bindparam("process_id"))
            .values({name: bindparam(f"new_{name}") for name in columns}))


def _default(column: Any) -> Any:
    default = column.default
    if default is None:
        return None
    return default.arg(None) if default.is_callable else default.arg
