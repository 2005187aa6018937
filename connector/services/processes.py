"""What negotiations and transfers share: loading a row (for a peer, who must be its counter-party, or for our own
operator) and taking a script's step after the peer acknowledged one of our messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from connector.persistence import process_rows
from connector.persistence.database import is_postgres
from connector.persistence.tables import NegotiationRow, TransferRow
from connector.services.followups import Step
from connector.services.outbox import record_event
from connector.services.runtime import Runtime
from contracts import InvalidTransitionError, UnknownProcessError

Row = TypeVar("Row", NegotiationRow, TransferRow)


def load(uow: Session, table: type[Row], process_id: str, *, what: str, peer: str | None = None,
         lock: bool = False) -> Row:
    """The row `process_id` (our own id); with `peer`, only if that participant is its counter-party.

    Another participant's process "does not exist" (DSP: 404), so its existence never leaks. `lock` takes the row
    lock on PostgreSQL for the rest of the transaction (SQLite's write transactions are serial anyway).
    """
    if table is NegotiationRow:
        row = process_rows.load(uow, table, process_id, lock=lock)  # the hot path, off the ORM
        return _visible(row, process_id, what=what, peer=peer)
    locked: set[tuple[type, str]] = uow.info.setdefault(process_rows.LOCKED, set())
    if lock and (table, process_id) not in locked and is_postgres(uow.get_bind()):
        row = uow.get(table, process_id, with_for_update=True)  # a SELECT ... FOR UPDATE, once per transaction
        locked.add((table, process_id))
    else:
        row = uow.get(table, process_id)  # no query when this unit of work has loaded it already
    return _visible(row, process_id, what=what, peer=peer)


def _visible(row: Row | None, process_id: str, *, what: str, peer: str | None) -> Row:
    if row is None or (peer is not None and row.counter_party_id != peer):
        raise UnknownProcessError(process_id, what=what)
    return row


def take_scripted_step(uow: Session, rt: Runtime, row: Row, step: Step | None, run_step: Callable[..., None]) -> None:
    """Take the script's `step` (if any) once the peer acknowledged our message, paced like every scripted move.

    The peer may have moved on meanwhile (its own message crossed our acknowledgement): a step the state table no
    longer allows is recorded and skipped, because the acknowledgement itself still counts.
    """
    if step is None:
        return
    try:
        run_step(uow, rt, row, step, delay=rt.script.pace_seconds)
    except InvalidTransitionError as exc:
        record_event(uow, rt, process_id=row.id, direction="out", message=step.value, state=row.state,
                     detail=f"scripted step skipped: {exc}")
