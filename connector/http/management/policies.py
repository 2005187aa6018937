"""Policy definitions: /v3/policydefinitions. Policies come back in DSP 2025-1 compact shape, whatever JSON-LD
shape they were sent in (see `jsonld_io`)."""

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
    IdResponse,
    PolicyDefinitionInput,
    PolicyDefinitionOutput,
    QuerySpecInput,
    parse,
    request_body,
)
from connector.persistence.tables import PolicyDefinitionRow
from connector.services import policy_definitions as service

router = APIRouter(prefix="/v3/policydefinitions", tags=["Policy definitions"])
_ERRORS = {400: {"model": list[ApiError]}, 404: {"model": list[ApiError]}}

FIELDS = Fields(
    columns={"id": Column(PolicyDefinitionRow.id), "createdAt": Column(PolicyDefinitionRow.created_at, "millis")},
    json={"policy": lambda row: row.policy, "privateProperties": lambda row: row.private_properties},
)


@router.post("", summary="Create a policy definition", responses={200: {"model": IdResponse}, **_ERRORS},
             openapi_extra=request_body(PolicyDefinitionInput))
def create_policy_definition(body: Body, connector: ConnectorDep) -> JSONResponse:
    definition = parse(PolicyDefinitionInput, body)
    with transaction(connector) as uow:
        row = service.create(uow, connector.rt, definition_id=definition.id, policy=definition.policy,
                             private_properties=definition.private_properties)
        return respond(shape.id_response(row.id, row.created_at))


@router.post("/request", summary="Query policy definitions with a QuerySpec",
             responses={200: {"model": list[PolicyDefinitionOutput]}},
             openapi_extra=request_body(QuerySpecInput, required=False))
def query_policy_definitions(body: OptionalBody, connector: ConnectorDep) -> JSONResponse:
    spec = parse_query_spec(body)
    with transaction(connector) as uow:
        rows = run(uow, PolicyDefinitionRow, spec, FIELDS, default_sort=FIELDS.columns["createdAt"])
        return respond([shape.policy_definition(row) for row in rows])


@router.get("/{definition_id:path}", summary="Get a policy definition",
            responses={200: {"model": PolicyDefinitionOutput}, **_ERRORS})
def get_policy_definition(definition_id: str, connector: ConnectorDep) -> JSONResponse:
    with transaction(connector) as uow:
        return respond(shape.policy_definition(service.get(uow, definition_id)))


@router.put("/{definition_id:path}", summary="Replace a policy definition's policy", status_code=204,
            responses=_ERRORS, openapi_extra=request_body(PolicyDefinitionInput))
def update_policy_definition(definition_id: str, body: Body, connector: ConnectorDep) -> Response:
    definition = parse(PolicyDefinitionInput, body)
    if definition.id not in (None, definition_id):
        raise invalid("/@id", f"is {definition.id!r} but the path names {definition_id!r}; they must agree",
                      definition.id)
    with transaction(connector) as uow:
        service.update(uow, definition_id=definition_id, policy=definition.policy,
                       private_properties=definition.private_properties)
    return Response(status_code=204)


@router.delete("/{definition_id:path}", summary="Delete a policy definition no contract definition uses",
               status_code=204, responses={409: {"model": list[ApiError]}, **_ERRORS})
def delete_policy_definition(definition_id: str, connector: ConnectorDep) -> Response:
    with transaction(connector) as uow:
        service.delete(uow, definition_id)
    return Response(status_code=204)
