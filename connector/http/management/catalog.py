"""Remote catalogs: /v3/catalog/request and /v3/catalog/dataset/request ask a provider over DSP.

The answer is the provider's catalog (or dataset) in DSP 2025-1 compact shape with its DSP @context: datasets under
`dataset`, offers under `hasPolicy`, unprefixed. (EDC answers the same graph compacted with `dcat:`/`odrl:`
prefixes; a JSON-LD client reads both alike.) `dataset` is always present, empty for an empty catalog: UIs break
when it is missing. Offers are copied into a contract request as they are, plus `assigner` and `target`.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from connector.http.deps import ConnectorDep
from connector.http.management.errors import invalid, translated
from connector.http.management.jsonld_io import Body
from connector.http.management.query import parse_query_spec
from connector.http.management.schemas import ApiError, CatalogRequestInput, DatasetRequestInput, parse, request_body
from connector.services import remote_catalog

router = APIRouter(prefix="/v3/catalog", tags=["Catalog"])
_ERRORS = {400: {"model": list[ApiError]}, 502: {"model": list[ApiError]}, 504: {"model": list[ApiError]}}


@router.post("/request", summary="Request a provider's catalog over DSP", responses=_ERRORS,
             openapi_extra=request_body(CatalogRequestInput))
def request_catalog(body: Body, connector: ConnectorDep) -> JSONResponse:
    request = parse(CatalogRequestInput, body)
    spec = parse_query_spec(request.query_spec)
    if spec.filters:
        raise invalid("/querySpec/filterExpression", "is not supported for remote catalogs; request the catalog "
                      "and filter its datasets yourself")
    with translated():
        remote_catalog.check_protocol(request.protocol)
        audience = request.counter_party_id or remote_catalog.counter_party_id_for(request.counter_party_address)
        dsp_base = remote_catalog.resolve_dsp_base(connector.dsp_client, request.counter_party_address,
                                                   audience=audience)
        catalog = remote_catalog.fetch_catalog(connector.dsp_client, dsp_base=dsp_base, audience=audience,
                                               offset=spec.offset, limit=spec.limit)
    return JSONResponse(catalog)


@router.post("/dataset/request", summary="Request one dataset of a provider's catalog over DSP",
             responses=_ERRORS, openapi_extra=request_body(DatasetRequestInput))
def request_dataset(body: Body, connector: ConnectorDep) -> JSONResponse:
    request = parse(DatasetRequestInput, body)
    with translated():
        remote_catalog.check_protocol(request.protocol)
        audience = request.counter_party_id or remote_catalog.counter_party_id_for(request.counter_party_address)
        dsp_base = remote_catalog.resolve_dsp_base(connector.dsp_client, request.counter_party_address,
                                                   audience=audience)
        dataset = remote_catalog.fetch_dataset(connector.dsp_client, dsp_base=dsp_base, audience=audience,
                                               dataset_id=request.id)
    return JSONResponse(dataset)
