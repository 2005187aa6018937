"""Endpoint data references: /v3/edrs. The consumer's copy of each pull endpoint and token a provider gave it.

The data address is answered in EDC's flat form (`endpoint`, `authorization`, `authType`), so an EDC client pulls
with `Authorization: <authorization>` exactly as it would from EDC.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from connector.http.deps import ConnectorDep
from connector.http.management import representations as shape
from connector.http.management.errors import not_found, transaction
from connector.http.management.jsonld_io import OptionalBody, respond
from connector.http.management.query import Column, Fields, parse_query_spec, run
from connector.http.management.schemas import (
    ApiError,
    DataAddressOutput,
    EdrEntryOutput,
    QuerySpecInput,
    request_body,
)
from connector.persistence.tables import AgreementRow, EdrRow

router = APIRouter(prefix="/v3/edrs", tags=["Endpoint data references"])
_ERRORS = {404: {"model": list[ApiError]}}

FIELDS = Fields(columns={
    "id": Column(EdrRow.transfer_id),
    "transferProcessId": Column(EdrRow.transfer_id),
    "agreementId": Column(EdrRow.agreement_id),
    "assetId": Column(EdrRow.asset_id),
    "providerId": Column(EdrRow.provider_id),
    "createdAt": Column(EdrRow.created_at, "millis"),
    "contractNegotiationId": Column(select(AgreementRow.negotiation_id)
                                    .where(AgreementRow.id == EdrRow.agreement_id).scalar_subquery()),
})


@router.post("/request", summary="Query EDR entries with a QuerySpec",
             responses={200: {"model": list[EdrEntryOutput]}},
             openapi_extra=request_body(QuerySpecInput, required=False))
def query_edrs(body: OptionalBody, connector: ConnectorDep) -> JSONResponse:
    spec = parse_query_spec(body)
    with transaction(connector) as uow:
        rows = run(uow, EdrRow, spec, FIELDS, default_sort=FIELDS.columns["createdAt"])
        agreement_ids = {row.agreement_id for row in rows}
        negotiation_of = {agreement_id: negotiation_id for agreement_id, negotiation_id in uow.execute(
            select(AgreementRow.id, AgreementRow.negotiation_id).where(AgreementRow.id.in_(agreement_ids)))}
        return respond([shape.edr_entry(row, negotiation_of.get(row.agreement_id)) for row in rows])


@router.get("/{transfer_id}/dataaddress", summary="Get the endpoint and token to pull a transfer's data",
            responses={200: {"model": DataAddressOutput}, **_ERRORS})
def get_edr_data_address(transfer_id: str, connector: ConnectorDep) -> JSONResponse:
    with transaction(connector) as uow:
        row = uow.get(EdrRow, transfer_id)
        if row is None:
            raise not_found("EDR of transfer process", transfer_id)
        return respond(shape.edr_data_address(row.data_address))


@router.delete("/{transfer_id}", summary="Forget an EDR (the provider's token stays valid until it expires)",
               status_code=204, responses=_ERRORS)
def delete_edr(transfer_id: str, connector: ConnectorDep) -> Response:
    with transaction(connector) as uow:
        row = uow.get(EdrRow, transfer_id)
        if row is None:
            raise not_found("EDR of transfer process", transfer_id)
        uow.delete(row)
    return Response(status_code=204)
