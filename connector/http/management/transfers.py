"""Transfer processes: /v3/transferprocesses, EDC's endpoints plus `complete` and `events` (extensions).

A push destination may be given in EDC's form (`{"type": "HttpData", "baseUrl": ...}`) or as a DSP DataAddress;
it is sent to the provider as the DSP DataAddress of the TransferRequestMessage. Commands answer 204 as EDC does.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from sqlalchemy import case

from connector.http.deps import ConnectorDep
from connector.http.management import representations as shape
from connector.http.management.errors import invalid, snapshot, transaction, translated
from connector.http.management.jsonld_io import Body, OptionalBody, respond
from connector.http.management.query import Column, Fields, parse_query_spec, run
from connector.http.management.schemas import (
    ApiError,
    EventOutput,
    IdResponse,
    QuerySpecInput,
    ReasonInput,
    StateOutput,
    TransferProcessOutput,
    TransferRequestInput,
    parse,
    request_body,
)
from connector.persistence.tables import AgreementRow, NegotiationRow, TransferRow
from connector.services import remote_catalog, transfers
from connector.services.outbox import events_of
from contracts import Role

router = APIRouter(prefix="/v3/transferprocesses", tags=["Transfer processes"])
_ERRORS = {400: {"model": list[ApiError]}, 404: {"model": list[ApiError]}}

FIELDS = Fields(columns={
    "id": Column(TransferRow.id),
    "state": Column(TransferRow.state),
    "type": Column(TransferRow.role),
    "assetId": Column(TransferRow.asset_id),
    "contractId": Column(TransferRow.agreement_id),
    "counterPartyId": Column(TransferRow.counter_party_id),
    "counterPartyAddress": Column(TransferRow.counter_party_address),
    "transferType": Column(TransferRow.transfer_type),
    "correlationId": Column(case((TransferRow.role == Role.CONSUMER, TransferRow.provider_pid),
                                 else_=TransferRow.consumer_pid)),
    "errorDetail": Column(TransferRow.error_detail),
    "createdAt": Column(TransferRow.created_at, "millis"),
    "stateTimestamp": Column(TransferRow.updated_at, "millis"),
}, json={"dataDestination": lambda row: row.data_destination})


def _destination(request: TransferRequestInput) -> dict[str, Any] | None:
    """The DSP DataAddress to push to, checked; None for a pull."""
    if request.transfer_type != transfers.PUSH:
        return None
    destination = request.data_destination
    if not destination:
        raise invalid("/dataDestination", f"is required for {transfers.PUSH}; give "
                                          '{"type": "HttpData", "baseUrl": "https://..."}')
    if "endpointType" in destination:
        if not isinstance(destination.get("endpoint"), str):
            raise invalid("/dataDestination/endpoint", "is required for a DSP DataAddress")
        return shape.dsp_data_address(destination)
    if str(destination.get("type", "")).lower() != "httpdata":
        raise invalid("/dataDestination/type", f"is {destination.get('type')!r}; push supports HttpData",
                      destination.get("type"))
    base_url = destination.get("baseUrl")
    parts = urlsplit(base_url) if isinstance(base_url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid("/dataDestination/baseUrl", "must be the http(s) URL to push to", base_url)
    if str(destination.get("authKey") or "Authorization").lower() != "authorization":
        raise invalid("/dataDestination/authKey", "must be Authorization (the only header a push sends)",
                      destination.get("authKey"))
    return shape.dsp_data_address(destination)


@router.post("", summary="Start a transfer under a finalized agreement (consumer)",
             responses={200: {"model": IdResponse}, **_ERRORS, 502: {"model": list[ApiError]}},
             openapi_extra=request_body(TransferRequestInput))
def initiate_transfer(body: Body, connector: ConnectorDep) -> JSONResponse:
    request = parse(TransferRequestInput, body)
    if request.transfer_type not in transfers.FORMATS:
        raise invalid("/transferType", f"is {request.transfer_type!r}; use one of {', '.join(transfers.FORMATS)}",
                      request.transfer_type)
    destination = _destination(request)
    with transaction(connector) as uow:
        agreement = uow.get(AgreementRow, request.contract_id)
        if agreement is None or agreement.role != Role.CONSUMER:
            raise invalid("/contractId", f"names no contract agreement we consume ({request.contract_id}); "
                                         "negotiate one first")
        provider_id = agreement.provider_id
        negotiation = uow.get(NegotiationRow, agreement.negotiation_id)
        address = request.counter_party_address or (negotiation.counter_party_address if negotiation else "")
    with translated():
        remote_catalog.check_protocol(request.protocol)
        dsp_base = remote_catalog.resolve_dsp_base(connector.dsp_client, address, audience=provider_id)
    with transaction(connector) as uow:
        row = transfers.initiate(uow, connector.rt, counter_party_address=dsp_base, agreement_id=request.contract_id,
                                 transfer_type=request.transfer_type, data_destination=destination)
        return respond(shape.id_response(row.id, row.created_at))


@router.post("/request", summary="Query transfer processes with a QuerySpec",
             responses={200: {"model": list[TransferProcessOutput]}},
             openapi_extra=request_body(QuerySpecInput, required=False))
def query_transfers(body: OptionalBody, connector: ConnectorDep) -> JSONResponse:
    spec = parse_query_spec(body)
    with snapshot(connector) as uow:
        rows = run(uow, TransferRow, spec, FIELDS, default_sort=FIELDS.columns["createdAt"])
        return respond([shape.transfer(row) for row in rows])


@router.get("/{transfer_id}/state", summary="Get a transfer's state",
            responses={200: {"model": StateOutput}, **_ERRORS})
def get_transfer_state(transfer_id: str, connector: ConnectorDep) -> JSONResponse:
    with snapshot(connector) as uow:
        return JSONResponse(shape.transfer_state(transfers.get_local(uow, transfer_id)))


@router.get("/{transfer_id}/events", summary="The DSP messages of a transfer, oldest first (extension)",
            responses={200: {"model": list[EventOutput]}, **_ERRORS})
def get_transfer_events(transfer_id: str, connector: ConnectorDep) -> JSONResponse:
    with snapshot(connector) as uow:
        transfers.get_local(uow, transfer_id)
        return JSONResponse([shape.event(e) for e in events_of(uow, transfer_id)])


@router.get("/{transfer_id}", summary="Get a transfer process",
            responses={200: {"model": TransferProcessOutput}, **_ERRORS})
def get_transfer(transfer_id: str, connector: ConnectorDep) -> JSONResponse:
    with snapshot(connector) as uow:
        return respond(shape.transfer(transfers.get_local(uow, transfer_id)))


@router.post("/{transfer_id}/suspend", summary="Suspend a started transfer", status_code=204, responses=_ERRORS,
             openapi_extra=request_body(ReasonInput, required=False))
def suspend_transfer(transfer_id: str, body: OptionalBody, connector: ConnectorDep) -> Response:
    reason = parse(ReasonInput, body).reason
    with transaction(connector) as uow:
        transfers.suspend(uow, connector.rt, transfer_id, reason)
    return Response(status_code=204)


@router.post("/{transfer_id}/resume", summary="Resume a suspended transfer", status_code=204, responses=_ERRORS)
def resume_transfer(transfer_id: str, connector: ConnectorDep) -> Response:
    with transaction(connector) as uow:
        transfers.resume(uow, connector.rt, transfer_id)
    return Response(status_code=204)


@router.post("/{transfer_id}/complete", summary="Complete a started transfer (extension)", status_code=204,
             responses=_ERRORS)
def complete_transfer(transfer_id: str, connector: ConnectorDep) -> Response:
    with transaction(connector) as uow:
        transfers.complete(uow, connector.rt, transfer_id)
    return Response(status_code=204)


@router.post("/{transfer_id}/terminate", summary="Terminate a transfer", status_code=204, responses=_ERRORS,
             openapi_extra=request_body(ReasonInput, required=False))
def terminate_transfer(transfer_id: str, body: OptionalBody, connector: ConnectorDep) -> Response:
    reason = parse(ReasonInput, body).reason
    with transaction(connector) as uow:
        transfers.terminate(uow, connector.rt, transfer_id, reason)
    return Response(status_code=204)
