"""Writes a unit of work owes at its end, which nothing reads back before commit: its events and the process rows
it created or changed.

They are kept in order and run together just before commit, through `prebuilt.execute_all`: on PostgreSQL one
statement for all of them, where each took its own round trip and its own share of the driver's and the server's
per-statement work (two to four of them close every DSP message's transaction).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.orm import Session

from connector.persistence import prebuilt
from connector.persistence.database import before_commit

WRITES = "sovra_closing_writes"


def defer(uow: Session, statement: Executable, params: Mapping[str, Any]) -> None:
    """Run `statement` with `params` just before `uow` commits, after the writes deferred before it."""
    writes = uow.info.get(WRITES)
    if writes is None:
        # Registered at the first deferral; a write deferred by a later before-commit callback starts a new list
        # whose own flush is registered after that callback, so no write is left behind.
        writes = uow.info[WRITES] = []
        before_commit(uow, lambda: _flush(uow))
    writes.append((statement, params))


def _flush(uow: Session) -> None:
    writes = uow.info.pop(WRITES, None)
    if writes:
        prebuilt.execute_all(uow.connection(), writes)
