"""Contract definitions: /v3/contractdefinitions, with Sovra's `autoAgree` extension (default true)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from connector.http.deps import ConnectorDep
from connector.http.management import representations as shape
from connector.http.management.errors import invalid, transaction
from connector.http.management.jsonld_io import Body, OptionalBody, respond
from connector.http.management.query import Column, Fields, parse_query_spec, run
from connector.http.management.schemas import (
    ApiError,
    ContractDefinitionInput,
    ContractDefinitionOutput,
    IdResponse,
    QuerySpecInput,
    parse,
    request_body,
)
from connector.persistence.tables import ContractDefinitionRow
from connector.services import contract_definitions as service

router = APIRouter(prefix="/v3/contractdefinitions", tags=["Contract definitions"])
_ERRORS = {400: {"model": list[ApiError]}, 404: {"model": list[ApiError]}}

FIELDS = Fields(
    columns={
        "id": Column(ContractDefinitionRow.id),
        "accessPolicyId": Column(ContractDefinitionRow.access_policy_id),
        "contractPolicyId": Column(ContractDefinitionRow.contract_policy_id),
        "autoAgree": Column(ContractDefinitionRow.auto_agree, "bool"),
        "createdAt": Column(ContractDefinitionRow.created_at, "millis"),
    },
    json={"assetsSelector": lambda row: row.assets_selector},
)


@router.post("", summary="Create a contract definition (both policies must exist)",
             responses={200: {"model": IdResponse}, **_ERRORS}, openapi_extra=request_body(ContractDefinitionInput))
def create_contract_definition(body: Body, connector: ConnectorDep) -> JSONResponse:
    definition = parse(ContractDefinitionInput, body)
    with transaction(connector) as uow:
        row = service.create(uow, connector.rt, definition_id=definition.id,
                             access_policy_id=definition.access_policy_id,
                             contract_policy_id=definition.contract_policy_id,
                             assets_selector=definition.assets_selector, auto_agree=definition.auto_agree)
        return respond(shape.id_response(row.id, row.created_at))


@router.put("", summary="Update a contract definition (the body's @id names it)", status_code=204,
            responses=_ERRORS, openapi_extra=request_body(ContractDefinitionInput))
def update_contract_definition(body: Body, connector: ConnectorDep) -> Response:
    definition = parse(ContractDefinitionInput, body)
    if not definition.id:
        raise invalid("/@id", "is required to name the contract definition to update")
    with transaction(connector) as uow:
        service.update(uow, definition_id=definition.id, access_policy_id=definition.access_policy_id,
                       contract_policy_id=definition.contract_policy_id,
                       assets_selector=definition.assets_selector, auto_agree=definition.auto_agree)
    return Response(status_code=204)


@router.post("/request", summary="Query contract definitions with a QuerySpec",
             responses={200: {"model": list[ContractDefinitionOutput]}},
             openapi_extra=request_body(QuerySpecInput, required=False))
def query_contract_definitions(body: OptionalBody, connector: ConnectorDep) -> JSONResponse:
    spec = parse_query_spec(body)
    with transaction(connector) as uow:
        rows = run(uow, ContractDefinitionRow, spec, FIELDS, default_sort=FIELDS.columns["createdAt"])
        return respond([shape.contract_definition(row) for row in rows])


@router.get("/{definition_id:path}", summary="Get a contract definition",
            responses={200: {"model": ContractDefinitionOutput}, **_ERRORS})
def get_contract_definition(definition_id: str, connector: ConnectorDep) -> JSONResponse:
    with transaction(connector) as uow:
        return respond(shape.contract_definition(service.get(uow, definition_id)))


@router.delete("/{definition_id:path}", summary="Delete a contract definition", status_code=204,
               responses=_ERRORS)
def delete_contract_definition(definition_id: str, connector: ConnectorDep) -> Response:
    with transaction(connector) as uow:
        service.delete(uow, definition_id)
    return Response(status_code=204)
