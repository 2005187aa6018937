"""Endpoint data references: /v3/edrs. The consumer's copy of each pull endpoint and token a provider gave it.

The data address is answered in EDC's flat form (`endpoint`, `authorization`, `authType`), so an EDC client pulls
with `Authorization: <authorization>` exactly as it would from EDC. `GET /v3/edrs/{id}/data` (extension) pulls
through the EDR on the caller's behalf: the console's download button, which cannot send the provider's token to
another origin itself. The endpoint came from the provider, so it passes the same egress check as a push.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from connector.container import Connector
from connector.dataplane.egress import display_url
from connector.dataplane.errors import SourceRefusedError, UpstreamError
from connector.dataplane.wiring import push_guard
from connector.http.deps import ConnectorDep
from connector.http.management import representations as shape
from connector.http.management.errors import ManagementRequestError, not_found, transaction
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


_PASSED_HEADERS = ("content-type", "content-length", "content-encoding", "last-modified", "etag")


def _edr_address(connector: Connector, transfer_id: str) -> tuple[dict[str, Any], str]:
    with connector.db.read_only() as uow:
        row = uow.get(EdrRow, transfer_id)
        if row is None:
            raise not_found("EDR of transfer process", transfer_id)
        return shape.edr_data_address(row.data_address), row.asset_id or transfer_id


@router.get("/{transfer_id}/data", summary="Pull a transfer's data through its EDR (extension)",
            responses={200: {"description": "The provider's bytes, streamed"}, 404: {"model": list[ApiError]},
                       502: {"model": list[ApiError]}})
async def download_through_edr(transfer_id: str, connector: ConnectorDep) -> StreamingResponse:
    address, name = await run_in_threadpool(_edr_address, connector, transfer_id)
    endpoint = address.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise ManagementRequestError(502, "peer.invalid.response", f"the EDR of transfer {transfer_id} has no "
                                                                   "endpoint; the provider sent no pull address")
    try:
        target = await push_guard(connector).check(endpoint)
    except (SourceRefusedError, UpstreamError) as exc:
        raise ManagementRequestError(502, "peer.refused.endpoint", f"the provider's endpoint is not reachable "
                                                                   f"from here: {exc}") from None
    token = address.get("authorization")
    headers = {**target.headers, **({"Authorization": str(token)} if token else {})}
    client = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0), follow_redirects=False)
    request = client.build_request("GET", target.request_url, headers=headers, extensions=target.extensions)
    try:
        upstream = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        await client.aclose()
        raise ManagementRequestError(502, "peer.unavailable", f"the provider's endpoint {display_url(endpoint)} "
                                                              f"could not be reached ({type(exc).__name__})") from None
    if upstream.status_code >= 400:
        reason = (await upstream.aread()).decode("utf-8", "replace")[:500]
        await upstream.aclose()
        await client.aclose()
        raise ManagementRequestError(502, "peer.rejected", f"the provider answered {upstream.status_code} for "
                                                           f"transfer {transfer_id}: {reason}")

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()
            await client.aclose()

    passed = {k: v for k, v in upstream.headers.items() if k.lower() in _PASSED_HEADERS}
    filename = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:100] or "data"
    passed["Content-Disposition"] = f'attachment; filename="{filename}"'
    return StreamingResponse(body(), status_code=upstream.status_code, headers=passed)
