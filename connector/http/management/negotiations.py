"""Contract negotiations: /v3/contractnegotiations, EDC's endpoints plus Sovra's operator decisions.

Extensions beyond EDC v3: `approve` / `decline` (a provider decides a request its contract definition does not
auto-agree, or a counter-proposal), `accept` and `counteroffer` (answering a provider's offer), `offers` (a
provider starts a negotiation by offering) and `events` (the DSP messages in and out, for timelines). Commands
answer 204 as EDC's terminate does; the negotiation then moves on as the outbox delivers the message.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from sqlalchemy import case
from sqlalchemy.orm import Session

from connector.container import Connector
from connector.http.deps import ConnectorDep
from connector.http.management import representations as shape
from connector.http.management.errors import invalid, not_found, snapshot, transaction, translated
from connector.http.management.jsonld_io import Body, OptionalBody, respond
from connector.http.management.query import Column, Fields, parse_query_spec, run
from connector.http.management.schemas import (
    ApiError,
    ContractAgreementOutput,
    ContractNegotiationOutput,
    ContractOfferInput,
    ContractRequestInput,
    CounterOfferInput,
    EventOutput,
    IdResponse,
    QuerySpecInput,
    ReasonInput,
    StateOutput,
    parse,
    request_body,
)
from connector.persistence.tables import AgreementRow, AssetRow, NegotiationRow, PolicyDefinitionRow
from connector.protocol.jsonld import load_document
from connector.services import negotiations, policy_definitions, remote_catalog
from connector.services.outbox import events_of
from connector.services.policy_scopes import checked_request_context, negotiation_decision
from contracts import InvalidMessageError, Role
from policies import PolicyError, describe
from policies import parse as parse_policy

router = APIRouter(prefix="/v3/contractnegotiations", tags=["Contract negotiations"])
_ERRORS = {400: {"model": list[ApiError]}, 404: {"model": list[ApiError]}}
_PEER_ERRORS = {502: {"model": list[ApiError]}, 504: {"model": list[ApiError]}}

FIELDS = Fields(columns={
    "id": Column(NegotiationRow.id),
    "state": Column(NegotiationRow.state),
    "type": Column(NegotiationRow.role),
    "counterPartyId": Column(NegotiationRow.counter_party_id),
    "counterPartyAddress": Column(NegotiationRow.counter_party_address),
    "contractAgreementId": Column(NegotiationRow.agreement_id),
    "assetId": Column(NegotiationRow.asset_id),
    "correlationId": Column(case((NegotiationRow.role == Role.CONSUMER, NegotiationRow.provider_pid),
                                 else_=NegotiationRow.consumer_pid)),
    "pending": Column(NegotiationRow.pending_decision, "bool"),
    "errorDetail": Column(NegotiationRow.error_detail),
    "createdAt": Column(NegotiationRow.created_at, "millis"),
    "stateTimestamp": Column(NegotiationRow.updated_at, "millis"),
}, json={"offer": lambda row: row.offer})


def _as_offer(policy: dict[str, Any], **defaults: str) -> dict[str, Any]:
    """A policy checked as ODRL and typed Offer (DSP messages carry offers only); `defaults` fill gaps."""
    with translated():
        offer = policy_definitions.check_shape(policy)
    if not offer.get("permission") and not offer.get("prohibition"):
        raise invalid("/policy", "has neither permission nor prohibition; copy the offer from the catalog")
    return {**defaults, **offer, "@type": "Offer"}


def _peer(address: str, counter_party_id: str | None, protocol: str | None,
          connector: Connector) -> tuple[str, str]:
    """(DSP base, participant id) of the peer a request names; may ask its version metadata."""
    with translated():
        remote_catalog.check_protocol(protocol)
        audience = counter_party_id or remote_catalog.counter_party_id_for(address)
        return remote_catalog.resolve_dsp_base(connector.dsp_client, address, audience=audience), audience


@router.post("", summary="Start a negotiation for an offer from a provider's catalog (consumer)",
             responses={200: {"model": IdResponse}, **_ERRORS, **_PEER_ERRORS},
             openapi_extra=request_body(ContractRequestInput))
def initiate_negotiation(body: Body, connector: ConnectorDep) -> JSONResponse:
    request = parse(ContractRequestInput, body)
    dsp_base, provider_id = _peer(request.counter_party_address, request.counter_party_id, request.protocol,
                                  connector)
    offer = _as_offer(request.policy, assigner=provider_id)
    with transaction(connector) as uow:
        row = negotiations.initiate(uow, connector.rt, counter_party_address=dsp_base, counter_party_id=provider_id,
                                    offer=offer, request_context=request.request_context)
        return respond(shape.id_response(row.id, row.created_at))


@router.post("/preview", summary="What an offer would oblige us to, before requesting it (consumer; extension)",
             responses={200: {"description": "The offer in words; nothing is sent"}, **_ERRORS},
             openapi_extra=request_body(ContractRequestInput))
def preview_negotiation(body: Body, connector: ConnectorDep) -> JSONResponse:
    """The same body as starting a negotiation; answers the offer's rules, constraints and duties in words and
    a local check of our declared `requestContext` against them. Nothing is sent to the provider."""
    request = parse(ContractRequestInput, body)
    offer = _as_offer(request.policy)
    try:
        described = describe(parse_policy(offer, document_loader=load_document))
        declared = checked_request_context(request.request_context)
    except PolicyError as exc:
        raise invalid(f"/policy{exc.pointer}", exc.problem) from None
    except InvalidMessageError as exc:
        raise invalid("/requestContext", str(exc)) from None
    decision = negotiation_decision(connector.rt, offer, connector.settings.participant_id, declared)
    return JSONResponse({
        "offerId": offer.get("@id"), "target": offer.get("target"), "assigner": offer.get("assigner"),
        "counterPartyAddress": request.counter_party_address, "sent": False,
        "summary": described["summary"], "constraints": described["constraints"], "duties": described["duties"],
        "prohibitions": described["prohibitions"], "policy": described, "requestContext": declared,
        "localCheck": {"decision": "permit" if decision.permitted else "deny", "reasons": list(decision.reasons),
                       "report": decision.report,
                       "note": "our own engine's reading with what we declare; the provider decides"},
    })


@router.post("/offers", summary="Offer an asset to a consumer, starting a negotiation (provider; extension)",
             responses={200: {"model": IdResponse}, **_ERRORS, **_PEER_ERRORS},
             openapi_extra=request_body(ContractOfferInput))
def offer_to_consumer(body: Body, connector: ConnectorDep) -> JSONResponse:
    request = parse(ContractOfferInput, body)
    if (request.policy is None) == (request.policy_id is None):
        raise invalid("/policy", "or /policyId must be given, but not both")
    with transaction(connector) as uow:
        if uow.get(AssetRow, request.asset_id) is None:
            raise invalid("/assetId", f"names no asset ({request.asset_id}); create the asset first")
        policy = request.policy if request.policy is not None else _policy_of(uow, request.policy_id or "")
    dsp_base, consumer_id = _peer(request.counter_party_address, request.counter_party_id, request.protocol,
                                  connector)
    offer = _as_offer(policy, assigner=connector.settings.participant_id)
    with transaction(connector) as uow:
        row = negotiations.offer_to_consumer(uow, connector.rt, counter_party_address=dsp_base,
                                             counter_party_id=consumer_id, offer=offer, asset_id=request.asset_id)
        return respond(shape.id_response(row.id, row.created_at))


def _policy_of(uow: Session, policy_id: str) -> dict[str, Any]:
    row = uow.get(PolicyDefinitionRow, policy_id)
    if row is None:
        raise invalid("/policyId", f"names no policy definition ({policy_id}); create it first")
    return dict(row.policy)


@router.post("/request", summary="Query negotiations with a QuerySpec",
             responses={200: {"model": list[ContractNegotiationOutput]}},
             openapi_extra=request_body(QuerySpecInput, required=False))
def query_negotiations(body: OptionalBody, connector: ConnectorDep) -> JSONResponse:
    spec = parse_query_spec(body)
    with snapshot(connector) as uow:
        rows = run(uow, NegotiationRow, spec, FIELDS, default_sort=FIELDS.columns["createdAt"])
        return respond([shape.negotiation(row) for row in rows])


@router.get("/{negotiation_id}/state", summary="Get a negotiation's state",
            responses={200: {"model": StateOutput}, **_ERRORS})
def get_negotiation_state(negotiation_id: str, connector: ConnectorDep) -> JSONResponse:
    with snapshot(connector) as uow:
        return JSONResponse(shape.negotiation_state(negotiations.get_local(uow, negotiation_id)))


@router.get("/{negotiation_id}/agreement", summary="Get the agreement a negotiation reached",
            responses={200: {"model": ContractAgreementOutput}, **_ERRORS})
def get_negotiation_agreement(negotiation_id: str, connector: ConnectorDep) -> JSONResponse:
    with snapshot(connector) as uow:
        row = negotiations.get_local(uow, negotiation_id)
        agreement = uow.get(AgreementRow, row.agreement_id) if row.agreement_id else None
        if agreement is None:
            raise not_found("contract agreement of negotiation", negotiation_id)
        return respond(shape.agreement(agreement))


@router.get("/{negotiation_id}/events", summary="The DSP messages of a negotiation, oldest first (extension)",
            responses={200: {"model": list[EventOutput]}, **_ERRORS})
def get_negotiation_events(negotiation_id: str, connector: ConnectorDep) -> JSONResponse:
    with snapshot(connector) as uow:
        negotiations.get_local(uow, negotiation_id)
        return JSONResponse([shape.event(e) for e in events_of(uow, negotiation_id)])


@router.get("/{negotiation_id}", summary="Get a negotiation",
            responses={200: {"model": ContractNegotiationOutput}, **_ERRORS})
def get_negotiation(negotiation_id: str, connector: ConnectorDep) -> JSONResponse:
    with snapshot(connector) as uow:
        return respond(shape.negotiation(negotiations.get_local(uow, negotiation_id)))


@router.post("/{negotiation_id}/terminate", summary="Terminate a negotiation", status_code=204,
             responses=_ERRORS, openapi_extra=request_body(ReasonInput, required=False))
def terminate_negotiation(negotiation_id: str, body: OptionalBody, connector: ConnectorDep) -> Response:
    reason = parse(ReasonInput, body).reason
    with transaction(connector) as uow:
        negotiations.terminate(uow, connector.rt, negotiation_id, reason=reason)
    return Response(status_code=204)


@router.post("/{negotiation_id}/approve", summary="Agree to a request waiting for a decision (provider; extension)",
             status_code=204, responses=_ERRORS)
def approve_negotiation(negotiation_id: str, connector: ConnectorDep) -> Response:
    with transaction(connector) as uow:
        negotiations.approve(uow, connector.rt, negotiation_id)
    return Response(status_code=204)


@router.post("/{negotiation_id}/decline", summary="Decline a request or offer waiting for a decision (extension)",
             status_code=204, responses=_ERRORS, openapi_extra=request_body(ReasonInput, required=False))
def decline_negotiation(negotiation_id: str, body: OptionalBody, connector: ConnectorDep) -> Response:
    reason = parse(ReasonInput, body).reason or "declined by the operator"
    with transaction(connector) as uow:
        if not negotiations.get_local(uow, negotiation_id, lock=True).pending_decision:
            raise invalid(None, f"negotiation {negotiation_id} is not waiting for a decision; terminate it instead")
        negotiations.terminate(uow, connector.rt, negotiation_id, reason=reason, code="declined")
    return Response(status_code=204)


@router.post("/{negotiation_id}/accept", summary="Accept the provider's current offer (consumer; extension)",
             status_code=204, responses=_ERRORS)
def accept_negotiation(negotiation_id: str, connector: ConnectorDep) -> Response:
    with transaction(connector) as uow:
        negotiations.accept(uow, connector.rt, negotiation_id)
    return Response(status_code=204)


@router.post("/{negotiation_id}/counteroffer", summary="Answer with another offer (either role; extension)",
             status_code=204, responses=_ERRORS, openapi_extra=request_body(CounterOfferInput))
def counter_offer(negotiation_id: str, body: Body, connector: ConnectorDep) -> Response:
    offer = _as_offer(parse(CounterOfferInput, body).policy)
    with transaction(connector) as uow:
        negotiations.counter_offer(uow, connector.rt, negotiation_id, offer)
    return Response(status_code=204)
