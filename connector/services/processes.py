"""Load a negotiation or transfer row: for a peer (who must be its counter-party) or for our own operator."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.persistence.tables import NegotiationRow, TransferRow
from contracts import UnknownProcessError

Row = TypeVar("Row", NegotiationRow, TransferRow)


def load(uow: Session, table: type[Row], process_id: str, *, what: str, peer: str | None = None,
         lock: bool = False) -> Row:
    """The row `process_id` (our own id); with `peer`, only if that participant is its counter-party.

    Another participant's process "does not exist" (DSP: 404), so its existence never leaks. `lock` takes the row
    lock on PostgreSQL for the rest of the transaction (SQLite's write transactions are serial anyway).
    """
    query = select(table).where(table.id == process_id)
    row = uow.scalars(query.with_for_update() if lock else query).first()
    if row is None or (peer is not None and row.counter_party_id != peer):
        raise UnknownProcessError(process_id, what=what)
    return row
