"""Contract agreements: /v3/contractagreements (read only; agreements are made by negotiations)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from connector.http.deps import ConnectorDep
from connector.http.management import representations as shape
from connector.http.management.errors import not_found, snapshot
from connector.http.management.jsonld_io import OptionalBody, respond
from connector.http.management.query import Column, Fields, parse_query_spec, run
from connector.http.management.schemas import (
    ApiError,
    ContractAgreementOutput,
    ContractNegotiationOutput,
    QuerySpecInput,
    request_body,
)
from connector.persistence.tables import AgreementRow, NegotiationRow

router = APIRouter(prefix="/v3/contractagreements", tags=["Contract agreements"])
_ERRORS = {404: {"model": list[ApiError]}}

FIELDS = Fields(columns={
    "id": Column(AgreementRow.id),
    "assetId": Column(AgreementRow.asset_id),
    "consumerId": Column(AgreementRow.consumer_id),
    "providerId": Column(AgreementRow.provider_id),
    "negotiationId": Column(AgreementRow.negotiation_id),
    "contractSigningDate": Column(AgreementRow.signed_at, "seconds"),
}, json={"policy": lambda row: row.policy})


def _agreement(uow: Session, agreement_id: str) -> AgreementRow:
    row = uow.get(AgreementRow, agreement_id)
    if row is None:
        raise not_found("contract agreement", agreement_id)
    return row


@router.post("/request", summary="Query contract agreements with a QuerySpec",
             responses={200: {"model": list[ContractAgreementOutput]}},
             openapi_extra=request_body(QuerySpecInput, required=False))
def query_agreements(body: OptionalBody, connector: ConnectorDep) -> JSONResponse:
    spec = parse_query_spec(body)
    with snapshot(connector) as uow:
        rows = run(uow, AgreementRow, spec, FIELDS, default_sort=FIELDS.columns["contractSigningDate"])
        return respond([shape.agreement(row) for row in rows])


@router.get("/{agreement_id}/negotiation", summary="Get the negotiation that reached an agreement",
            responses={200: {"model": ContractNegotiationOutput}, **_ERRORS})
def get_agreement_negotiation(agreement_id: str, connector: ConnectorDep) -> JSONResponse:
    with snapshot(connector) as uow:
        agreement = _agreement(uow, agreement_id)
        negotiation = uow.get(NegotiationRow, agreement.negotiation_id)
        if negotiation is None:
            raise not_found("negotiation of contract agreement", agreement_id)
        return respond(shape.negotiation(negotiation))


@router.get("/{agreement_id}", summary="Get a contract agreement",
            responses={200: {"model": ContractAgreementOutput}, **_ERRORS})
def get_agreement(agreement_id: str, connector: ConnectorDep) -> JSONResponse:
    with snapshot(connector) as uow:
        return respond(shape.agreement(_agreement(uow, agreement_id)))
