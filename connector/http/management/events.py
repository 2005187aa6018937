"""Events: /v3/events/request, every DSP message in or out across all processes (Sovra extension).

This is the audit trail the console shows: the same rows as each process's `/events` timeline, newest first when
asked with `"sortOrder": "DESC"`, each marked with the kind of process it belongs to (negotiation or transfer), so
an operator can follow it. Filter with a QuerySpec on `processId`, `processType`, `direction`, `message`, `state`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import case, exists, select

from connector.http.deps import ConnectorDep
from connector.http.management import representations as shape
from connector.http.management.errors import transaction
from connector.http.management.jsonld_io import OptionalBody
from connector.http.management.query import Column, Fields, parse_query_spec, run
from connector.http.management.schemas import ApiError, QuerySpecInput, request_body
from connector.persistence.tables import EventRow, NegotiationRow, TransferRow

router = APIRouter(prefix="/v3/events", tags=["Events"])

NEGOTIATION, TRANSFER, OTHER = "negotiation", "transfer", "other"
_PROCESS_TYPE = case(
    (exists(select(NegotiationRow.id).where(NegotiationRow.id == EventRow.process_id)), NEGOTIATION),
    (exists(select(TransferRow.id).where(TransferRow.id == EventRow.process_id)), TRANSFER),
    else_=OTHER,
)

FIELDS = Fields(columns={
    "seq": Column(EventRow.seq),
    "processId": Column(EventRow.process_id),
    "processType": Column(_PROCESS_TYPE),
    "direction": Column(EventRow.direction),
    "message": Column(EventRow.message),
    "state": Column(EventRow.state),
    "at": Column(EventRow.at, "millis"),
})


@router.post("/request", summary="Query the DSP messages of every process with a QuerySpec (extension)",
             responses={200: {"description": "Events with processId and processType"},
                        400: {"model": list[ApiError]}},
             openapi_extra=request_body(QuerySpecInput, required=False))
def query_events(body: OptionalBody, connector: ConnectorDep) -> JSONResponse:
    spec = parse_query_spec(body)
    with transaction(connector) as uow:
        rows = run(uow, EventRow, spec, FIELDS, default_sort=FIELDS.columns["seq"])
        ids = {row.process_id for row in rows}
        negotiation_ids = set(uow.scalars(select(NegotiationRow.id).where(NegotiationRow.id.in_(ids))))
        transfer_ids = set(uow.scalars(select(TransferRow.id).where(TransferRow.id.in_(ids))))
        return JSONResponse([_event(row, negotiation_ids, transfer_ids) for row in rows])


def _event(row: EventRow, negotiation_ids: set[str], transfer_ids: set[str]) -> dict[str, Any]:
    kind = NEGOTIATION if row.process_id in negotiation_ids else TRANSFER if row.process_id in transfer_ids else OTHER
    return {**shape.event(row), "processId": row.process_id, "processType": kind}
