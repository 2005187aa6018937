"""Assets: /v3/assets (EDC semantics: create answers an IdResponse, update and delete answer 204)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from catalog.selection import asset_value
from connector.http.deps import ConnectorDep
from connector.http.management import representations as shape
from connector.http.management.errors import invalid, transaction
from connector.http.management.jsonld_io import Body, OptionalBody, respond
from connector.http.management.query import Column, Fields, parse_query_spec, run
from connector.http.management.schemas import (
    ApiError,
    AssetInput,
    AssetOutput,
    IdResponse,
    QuerySpecInput,
    parse,
    request_body,
)
from connector.persistence.tables import AssetRow
from connector.services import assets as service
from connector.services.offers import to_asset

router = APIRouter(prefix="/v3/assets", tags=["Assets"])
_ERRORS = {400: {"model": list[ApiError]}, 404: {"model": list[ApiError]}}

FIELDS = Fields(
    columns={"id": Column(AssetRow.id), "createdAt": Column(AssetRow.created_at, "millis")},
    json={"properties": lambda row: row.properties, "privateProperties": lambda row: row.private_properties,
          "dataAddress": lambda row: row.data_address},
    fallback=lambda row, name: asset_value(to_asset(row), name),
)


@router.post("", summary="Create an asset", responses={200: {"model": IdResponse}, **_ERRORS},
             openapi_extra=request_body(AssetInput))
def create_asset(body: Body, connector: ConnectorDep) -> JSONResponse:
    asset = parse(AssetInput, body)
    legacy_id = asset.properties.get("id")  # EDC once took the id from the properties
    asset_id = asset.id or (legacy_id if isinstance(legacy_id, str) else None)
    with transaction(connector) as uow:
        row = service.create(uow, connector.rt, asset_id=asset_id,
                             properties=asset.properties, private_properties=asset.private_properties,
                             data_address=asset.data_address)
        return respond(shape.id_response(row.id, row.created_at))


@router.put("", summary="Update an asset (the body's @id names it)", status_code=204, responses=_ERRORS,
            openapi_extra=request_body(AssetInput))
def update_asset(body: Body, connector: ConnectorDep) -> Response:
    asset = parse(AssetInput, body)
    if not asset.id:
        raise invalid("/@id", "is required to name the asset to update")
    with transaction(connector) as uow:
        service.update(uow, connector.rt, asset_id=asset.id, properties=asset.properties,
                       private_properties=asset.private_properties, data_address=asset.data_address)
    return Response(status_code=204)


@router.post("/request", summary="Query assets with a QuerySpec", responses={200: {"model": list[AssetOutput]}},
             openapi_extra=request_body(QuerySpecInput, required=False))
def query_assets(body: OptionalBody, connector: ConnectorDep) -> JSONResponse:
    spec = parse_query_spec(body)
    with transaction(connector) as uow:
        rows = run(uow, AssetRow, spec, FIELDS, default_sort=FIELDS.columns["createdAt"])
        return respond([shape.asset(row) for row in rows])


@router.get("/{asset_id:path}", summary="Get an asset", responses={200: {"model": AssetOutput}, **_ERRORS})
def get_asset(asset_id: str, connector: ConnectorDep) -> JSONResponse:
    with transaction(connector) as uow:
        return respond(shape.asset(service.get(uow, asset_id)))


@router.delete("/{asset_id:path}", summary="Delete an asset no agreement or negotiation refers to",
               status_code=204, responses={409: {"model": list[ApiError]}, **_ERRORS})
def delete_asset(asset_id: str, connector: ConnectorDep) -> Response:
    with transaction(connector) as uow:
        service.delete(uow, asset_id)
    return Response(status_code=204)
