"""The compute-to-data audit log for the operator, with the hash chain's status (Sovra extension).

    GET /v3/audit?jobId=&subjectId=&kind=&offset=&limit=   -> {"chain": {ok, length, head, brokenAt, problem},
                                                               "events": [...]}
"""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select

from connector.http.deps import ConnectorDep
from connector.http.management.jsonld_io import respond
from connector.persistence.tables import AuditEventRow
from connector.services import audit

router = APIRouter(tags=["Audit (Sovra)"])


def event_json(row: AuditEventRow) -> dict[str, object]:
    return {"@type": "AuditEvent", "@id": str(row.id), "at": row.at.isoformat(), "kind": row.kind,
            "jobId": row.job_id, "subjectId": row.subject_id, "actor": row.actor, "detail": row.detail,
            "prevHash": row.prev_hash, "hash": row.hash}


@router.get("/v3/audit", summary="The append-only audit log of compute jobs, consents and subject tokens")
def audit_log(connector: ConnectorDep, jobId: str | None = None, subjectId: str | None = None,  # noqa: N803
              kind: str | None = None, offset: int = Query(0, ge=0),
              limit: int = Query(100, ge=1, le=1000)) -> JSONResponse:
    query = select(AuditEventRow)
    if jobId is not None:
        query = query.where(AuditEventRow.job_id == jobId)
    if subjectId is not None:
        query = query.where(AuditEventRow.subject_id == subjectId)
    if kind is not None:
        query = query.where(AuditEventRow.kind == kind)
    with connector.db.read_only() as session:
        chain = audit.verify_chain(session)
        rows = list(session.scalars(query.order_by(AuditEventRow.id).offset(offset).limit(limit)))
    return respond({"@type": "AuditLog", "chain": chain.to_json(), "events": [event_json(r) for r in rows]})
