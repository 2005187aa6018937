"""Queue a message for the outbox worker, in the caller's transaction, and note the event for operators."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.persistence.database import after_commit
from connector.persistence.tables import EventRow, OutboxRow
from connector.services.runtime import Runtime


def enqueue(uow: Session, rt: Runtime, *, process_type: str, process_id: str, message: str,
            params: dict[str, Any] | None = None, delay: float = 0.0) -> OutboxRow:
    """`delay` holds the message back that many seconds (a scripted peer may need time to expect it)."""
    now = rt.clock()
    row = OutboxRow(
        message_id=f"urn:uuid:{uuid.uuid4()}",
        process_type=process_type,
        process_id=process_id,
        message=message,
        params=params or {},
        status="pending",
        attempts=0,
        next_attempt_at=now + timedelta(seconds=delay),
        created_at=now,
    )
    uow.add(row)
    after_commit(uow, rt.wake_outbox)
    return row


def record_event(uow: Session, rt: Runtime, *, process_id: str, direction: str, message: str, state: str,
                 detail: str | None = None) -> None:
    uow.add(EventRow(process_id=process_id, direction=direction, message=message, state=state, detail=detail,
                     at=rt.clock()))


def events_of(uow: Session, process_id: str) -> list[EventRow]:
    """The timeline of one process (every DSP message in or out), oldest first."""
    return list(uow.scalars(select(EventRow).where(EventRow.process_id == process_id).order_by(EventRow.seq)))
