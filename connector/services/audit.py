"""The append-only audit log of compute-to-data: every job event, consent change and token issue.

Each row carries the hash of the row before it, and its own hash covers that and its content, so editing or
deleting a row in the middle breaks the chain at that row (`verify_chain` finds it). There is no update or delete
path in the code. The chain cannot show that rows were cut off its end; an operator who needs that keeps the last
hash elsewhere (`GET /api/management/v3/audit` reports it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from connector.persistence.tables import AuditEventRow
from connector.services.runtime import Runtime

GENESIS = "0" * 64
_LOCK_KEY = 0x50F7B  # PostgreSQL: one appender at a time, so two transactions never fork the chain


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def row_hash(prev_hash: str, row: AuditEventRow) -> str:
    body = {"at": row.at.isoformat(), "kind": row.kind, "jobId": row.job_id, "subjectId": row.subject_id,
            "actor": row.actor, "detail": row.detail}
    return hashlib.sha256(prev_hash.encode() + canonical(body)).hexdigest()


def append(session: Session, rt: Runtime, kind: str, *, actor: str, job_id: str | None = None,
           subject_id: str | None = None, detail: Mapping[str, Any] | None = None) -> AuditEventRow:
    """Add one event at the end of the chain, in the caller's transaction."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    session.flush()
    prev = session.scalar(select(AuditEventRow.hash).order_by(AuditEventRow.id.desc()).limit(1)) or GENESIS
    row = AuditEventRow(at=rt.clock(), kind=kind, job_id=job_id, subject_id=subject_id, actor=actor,
                        detail=dict(detail or {}), prev_hash=prev, hash="")
    row.hash = row_hash(prev, row)
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class ChainStatus:
    ok: bool
    length: int
    head: str
    broken_at: int | None = None
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "length": self.length, "head": self.head, "brokenAt": self.broken_at,
                "problem": self.problem}


def verify_rows(rows: Iterable[AuditEventRow]) -> ChainStatus:
    prev, count = GENESIS, 0
    for row in rows:
        count += 1
        if row.prev_hash != prev:
            return ChainStatus(False, count, prev, row.id, f"event {row.id} does not follow the one before it "
                                                           "(an event was removed or reordered)")
        if row_hash(prev, row) != row.hash:
            return ChainStatus(False, count, prev, row.id, f"event {row.id} was changed after it was written")
        prev = row.hash
    return ChainStatus(True, count, prev)


def verify_chain(session: Session) -> ChainStatus:
    """Walk the whole log in order; the first row whose link or content does not match breaks the chain."""
    return verify_rows(session.scalars(select(AuditEventRow).order_by(AuditEventRow.id).execution_options(
        yield_per=1000)))
