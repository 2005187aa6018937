"""Writes a unit of work owes at its end, which nothing reads back before commit: its events, the process rows it
created or changed, and the messages it queued (whose sequence numbers are wanted only by then).

They are kept in order and run together just before commit, through `prebuilt.execute_all`: on PostgreSQL one
statement for all of them, where each took its own round trip and its own share of the driver's and the server's
per-statement work (two to four of them close every DSP message's transaction).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.orm import Session

from connector.persistence import prebuilt
from connector.persistence.database import before_commit

WRITES = "sovra_closing_writes"
RETURNING = "sovra_closing_returning"  # [(statement, params, on_row)], each run after the writes


def defer(uow: Session, statement: Executable, params: Mapping[str, Any]) -> None:
    """Run `statement` with `params` just before `uow` commits, after the writes deferred before it."""
    _pending(uow, WRITES).append((statement, params))


def defer_returning(uow: Session, statement: Executable, params: Mapping[str, Any],
                    on_row: Callable[[Any], None]) -> None:
    """Run `statement`, which returns one row, after the deferred writes (the first such statement in the same
    statement as they on PostgreSQL), and hand its row to `on_row`, still before commit."""
    _pending(uow, RETURNING).append((statement, params, on_row))


def _pending(uow: Session, kind: str) -> list[Any]:
    pending = uow.info.get(kind)
    if pending is None:
        flush_registered = (RETURNING if kind == WRITES else WRITES) in uow.info  # one flush runs both lists
        pending = uow.info[kind] = []
        if not flush_registered:
            # Registered at the first deferral; what a later before-commit callback defers starts new lists whose
            # own flush is registered after that callback, so nothing is left behind.
            before_commit(uow, lambda: _flush(uow))
    return pending


def _flush(uow: Session) -> None:
    writes, returning = uow.info.pop(WRITES, []), uow.info.pop(RETURNING, [])
    if not (writes or returning):
        return
    connection = uow.connection()
    if not returning:
        prebuilt.execute_all(connection, writes)
        return
    (statement, params, on_row), *more = returning
    on_row(prebuilt.execute_all(connection, writes, then=(statement, params)))
    for statement, params, on_row in more:
        on_row(prebuilt.execute(connection, statement, params).fetchone())
