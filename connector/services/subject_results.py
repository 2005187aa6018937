"""Which jobs ran on a data subject's record, and her own result: stored as a batch, then indexed per subject.

A job over 10,000 records has 10,000 subjects. Inserting 10,000 rows into the subject index takes longer than
everything else at a job's end (and grows with the table), and the requester waits for that transaction. So the
transaction that ends a job stores the job's subjects as one batch row; the compute worker turns batches into
indexed ComputeJobSubjectRows right after, in a transaction of its own (idempotent: a crash in between leaves the
batch, which is indexed again). Every reader goes through this module and sees batches that are not indexed yet,
so no subject ever misses her result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from connector.persistence.database import Database, is_postgres
from connector.persistence.tables import ComputeJobRow, ComputeJobSubjectBatchRow, ComputeJobSubjectRow

_NO_RESULT = object()


def store(session: Session, job_id: str, results: Mapping[str, Any]) -> None:
    """The job's subjects (id -> her result, or None when her record gave none), replacing any earlier ones."""
    session.execute(delete(ComputeJobSubjectRow).where(ComputeJobSubjectRow.job_id == job_id))
    session.execute(delete(ComputeJobSubjectBatchRow).where(ComputeJobSubjectBatchRow.job_id == job_id))
    if results:
        session.add(ComputeJobSubjectBatchRow(job_id=job_id, results=_encode(results)))


def index_batches(db: Database, limit: int = 4) -> int:
    """Turn up to `limit` batches into indexed subject rows; how many were done. Two workers never take the same
    batch (SKIP LOCKED on PostgreSQL; SQLite has one writer)."""
    done = 0
    with db.unit_of_work() as session:
        query = select(ComputeJobSubjectBatchRow).limit(limit)
        if is_postgres(db.engine):
            query = query.with_for_update(skip_locked=True)
        for batch in list(session.scalars(query)):
            _insert_rows(session, batch.job_id, _decode(batch.results))
            session.delete(batch)
            done += 1
    return done


def pending(db: Database) -> bool:
    with db.read_only() as session:
        return session.scalar(select(ComputeJobSubjectBatchRow.job_id).limit(1)) is not None


def jobs_of(session: Session, subject: str) -> list[tuple[ComputeJobRow, Any]]:
    """(job, her result or None) for every job that ran on her record, newest first."""
    query = (select(ComputeJobRow, ComputeJobSubjectRow.result)
             .join(ComputeJobSubjectRow, ComputeJobSubjectRow.job_id == ComputeJobRow.id)
             .where(ComputeJobSubjectRow.subject_id == subject))
    found = [(job, result) for job, result in session.execute(query)]
    for job_id, results in _pending_batches(session):
        if subject in results and (job := session.get(ComputeJobRow, job_id)) is not None:
            found.append((job, results[subject]))
    return sorted(found, key=lambda pair: pair[0].created_at, reverse=True)


def result_of(session: Session, job_id: str, subject: str) -> tuple[bool, Any]:
    """(whether the job ran on her record, her result or None)."""
    row = session.get(ComputeJobSubjectRow, (job_id, subject))
    if row is not None:
        return True, row.result
    batch = session.get(ComputeJobSubjectBatchRow, job_id)
    if batch is None:
        return False, None
    result = _decode(batch.results).get(subject, _NO_RESULT)
    return (False, None) if result is _NO_RESULT else (True, result)


def subjects_of(session: Session, job_id: str) -> dict[str, Any]:
    """Every subject of a job, with her result or None (operators and tests)."""
    batch = session.get(ComputeJobSubjectBatchRow, job_id)
    if batch is not None:
        return _decode(batch.results)
    rows = session.scalars(select(ComputeJobSubjectRow).where(ComputeJobSubjectRow.job_id == job_id))
    return {row.subject_id: row.result for row in rows}


def _pending_batches(session: Session) -> list[tuple[str, dict[str, Any]]]:
    batches = session.execute(select(ComputeJobSubjectBatchRow.job_id, ComputeJobSubjectBatchRow.results))
    return [(job_id, _decode(results)) for job_id, results in batches]


def _insert_rows(session: Session, job_id: str, results: Mapping[str, Any]) -> None:
    session.execute(delete(ComputeJobSubjectRow).where(ComputeJobSubjectRow.job_id == job_id))
    try:
        dumps = orjson.dumps
        rows = [(job_id, subject, None if result is None else dumps(result).decode())
                for subject, result in sorted(results.items())]  # sorted: the subject index fills in order
    except TypeError:  # what orjson refuses (an int over 64 bits)
        rows = [(job_id, subject, None if result is None else json.dumps(result))
                for subject, result in sorted(results.items())]
    if not rows:
        return
    # One driver-level executemany: SQLAlchemy's per-row parameter processing costs more than the insert itself.
    marker = "?" if session.get_bind().dialect.paramstyle == "qmark" else "%s"
    cast = "" if marker == "?" else "::json"
    session.connection().exec_driver_sql(
        f"INSERT INTO compute_job_subjects (job_id, subject_id, result) "
        f"VALUES ({marker}, {marker}, {marker}{cast})", rows)


def _encode(results: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(dict(results))
    except TypeError:
        return json.dumps(dict(results)).encode()


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:  # what orjson refuses but json wrote
        return json.loads(raw)
