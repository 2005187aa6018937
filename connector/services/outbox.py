"""Queue a message for the outbox worker, in the caller's transaction, and note the event for operators."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.persistence import appends, process_rows
from connector.persistence.tables import EventRow, NegotiationRow, OutboxRow
from connector.services.runtime import Runtime


def enqueue(uow: Session, rt: Runtime, *, process_type: str, process_id: str, message: str,
            params: dict[str, Any] | None = None, delay: float = 0.0) -> None:
    """Queue `message`; when nothing of this process is pending, lease it and hand it to a sender after commit
    (messages of one process go out in order, so a later one waits for its predecessor's acknowledgement).
    `delay` holds the message back that many seconds (a scripted peer may need time to expect it); the dispatcher
    sends it once due. The row is inserted among the transaction's closing writes."""
    rt.outbox.settle(uow, process_id)  # an acknowledgement not yet recorded would hold this message back
    queued_here: set[str] = uow.info.setdefault(QUEUED_HERE, set())
    behind_one_here = process_id in queued_here  # queued earlier in this transaction: not in the table yet
    queued_here.add(process_id)
    now = rt.clock()
    lease = None if delay > 0 or behind_one_here else rt.outbox.lease_for(now)
    values: dict[str, Any] = {
        "message_id": f"urn:uuid:{uuid.uuid4()}",
        "process_type": process_type,
        "process_id": process_id,
        "message": message,
        "params": params or {},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now + timedelta(seconds=delay),
        "created_at": now,
        "leased_by": lease[0] if lease else None,
        "lease_until": lease[1] if lease else None,
        "last_error": None,
        "sent_at": None,
    }

    def queued(seq: int, leased: bool) -> None:
        if not leased:  # a message of the process was pending: this one waits for it
            values["leased_by"] = values["lease_until"] = None
        row = OutboxRow(seq=seq, **values)  # a copy for the sender, not in the session
        if leased:
            rt.outbox.leased(uow, row)
        else:
            rt.outbox.queued_behind(process_id)

    # Leased unless a message of the process is pending; a new process has none, so it needs no check.
    in_order = lease is not None and not _created_here(uow, process_id)
    appends.queue_message_at_commit(uow, values, in_order=in_order, on_queued=queued)


QUEUED_HERE = "sovra_queued_here"  # process ids this unit of work queued a message for


def _created_here(uow: Session, process_id: str) -> bool:
    """Whether this very transaction created the process (then no message of it can be pending)."""
    return process_rows.created_here(uow, NegotiationRow, process_id) or any(
        getattr(obj, "id", None) == process_id for obj in uow.new if not isinstance(obj, OutboxRow))


def record_event(uow: Session, rt: Runtime, *, process_id: str, direction: str, message: str, state: str,
                 detail: str | None = None) -> None:
    appends.record_event(uow, {"process_id": process_id, "direction": direction, "message": message,
                               "state": str(state), "detail": detail, "at": rt.clock()})


def events_of(uow: Session, process_id: str) -> list[EventRow]:
    """The timeline of one process (every DSP message in or out), oldest first."""
    return list(uow.scalars(select(EventRow).where(EventRow.process_id == process_id).order_by(EventRow.seq)))
