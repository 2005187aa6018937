"""Contract negotiation endpoints for both roles: our process id in the path tells which role we play.

Provider paths and consumer callback paths share the prefix `/negotiations/{pid}`; the negotiation row knows
whether we provide or consume it, and the service rejects a message our role must not receive (400).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from connector.container import Connector
from connector.dsp.messages import negotiation_ack
from connector.http.body import BodyError, read_dsp_message
from connector.http.deps import ConnectorDep, ParticipantDep, message_transaction, remember_token
from connector.identity_service import Participant
from connector.services import negotiations as service
from contracts import InvalidTransitionError, Role
from contracts.negotiation import NegotiationMessage as M

router = APIRouter(prefix="/negotiations")

EVENT = "ContractNegotiationEventMessage"


async def _run(connector: Connector, participant: Participant, work: Callable[[Session], Any]) -> Any:
    def transaction() -> Any:
        with message_transaction(connector, participant) as uow:
            row = work(uow)
            return negotiation_ack(row)

    return await run_in_threadpool(transaction)


@router.get("/{pid}")
async def get_negotiation(pid: str, connector: ConnectorDep, participant: ParticipantDep) -> JSONResponse:
    def load() -> dict[str, Any]:
        remember_token(connector, participant)
        with connector.db.read_only() as session:
            return negotiation_ack(service.get_for_peer(session, pid, participant.id))

    return JSONResponse(await run_in_threadpool(load))


@router.post("/request")
async def initial_request(request: Request, connector: ConnectorDep, participant: ParticipantDep) -> JSONResponse:
    message = await read_dsp_message(request, {M.CONTRACT_REQUEST.value}, limit=connector.settings.dsp_body_limit)
    if message.get("providerPid"):
        raise BodyError(400, "invalid.message", "an initial ContractRequestMessage must not carry providerPid; "
                        "send counter-requests to /negotiations/{providerPid}/request")
    return await _created(connector, participant, lambda uow: service.provider_on_request(
        uow, connector.rt, participant_id=participant.id, message=message))


@router.post("/offers")
async def initial_offer(request: Request, connector: ConnectorDep, participant: ParticipantDep) -> JSONResponse:
    message = await read_dsp_message(request, {M.CONTRACT_OFFER.value}, limit=connector.settings.dsp_body_limit)
    if message.get("consumerPid"):
        raise BodyError(400, "invalid.message", "an initial ContractOfferMessage must not carry consumerPid")
    return await _created(connector, participant, lambda uow: service.consumer_on_initial_offer(
        uow, connector.rt, participant_id=participant.id, message=message))


async def _created(connector: Connector, participant: Participant,
                   work: Callable[[Session], Any]) -> JSONResponse:
    def transaction() -> tuple[dict[str, Any], bool]:
        with message_transaction(connector, participant) as uow:
            row, created = work(uow)
            return negotiation_ack(row), created

    body, _created_now = await run_in_threadpool(transaction)
    return JSONResponse(body, status_code=201)  # a repeated request answers as the first one did


# (path suffix, accepted @type) -> message kind, per role that may receive it
_ROUTES: dict[str, tuple[str, dict[Role, Callable[..., Any]]]] = {
    "request": (M.CONTRACT_REQUEST.value, {Role.PROVIDER: service.provider_on_counter_request}),
    "offers": (M.CONTRACT_OFFER.value, {Role.CONSUMER: service.consumer_on_offer}),
    "agreement": (M.AGREEMENT.value, {Role.CONSUMER: service.consumer_on_agreement}),
    "agreement/verification": (M.VERIFICATION.value, {Role.PROVIDER: service.provider_on_verification}),
    "termination": (M.TERMINATION.value, {Role.PROVIDER: service.on_termination,
                                          Role.CONSUMER: service.on_termination}),
}


@router.post("/{pid}/events")
async def event(pid: str, request: Request, connector: ConnectorDep, participant: ParticipantDep) -> JSONResponse:
    message = await read_dsp_message(request, {EVENT}, limit=connector.settings.dsp_body_limit)
    handlers = {("ACCEPTED", Role.PROVIDER): service.provider_on_accepted,
                ("FINALIZED", Role.CONSUMER): service.consumer_on_finalized}
    kind = M.ACCEPTED_EVENT if message.get("eventType") == "ACCEPTED" else M.FINALIZED_EVENT
    return await _dispatch(connector, participant, pid, message, kind,
                           {role: h for (event_type, role), h in handlers.items()
                            if event_type == message.get("eventType")})


async def _dispatch(connector: Connector, participant: Participant, pid: str, message: dict[str, Any], kind: M,
                    handlers: dict[Role, Callable[..., Any]]) -> JSONResponse:
    participant_id = participant.id

    def work(uow: Session) -> Any:
        message_id = message.get("@id")
        service.expect_message(uow, connector.rt, pid, None if message_id is None else str(message_id))
        row = service.get_for_peer(uow, pid, participant_id, lock=True)  # the handler works on it under the lock
        handler = handlers.get(Role(row.role))
        if handler is None:
            raise InvalidTransitionError(process_id=pid, state=row.state, kind=kind.value,
                                         sender=Role(row.role).peer.value)
        return handler(uow, connector.rt, participant_id=participant_id, pid=pid, message=message)

    return JSONResponse(await _run(connector, participant, work))


def _message_route(suffix: str) -> None:
    message_type, handlers = _ROUTES[suffix]

    async def receive(pid: str, request: Request, connector: ConnectorDep,
                      participant: ParticipantDep) -> JSONResponse:
        message = await read_dsp_message(request, {message_type}, limit=connector.settings.dsp_body_limit)
        return await _dispatch(connector, participant, pid, message, M(message_type), handlers)

    receive.__name__ = "receive_" + suffix.replace("/", "_")
    router.add_api_route("/{pid}/" + suffix, receive, methods=["POST"])


for _suffix in _ROUTES:
    _message_route(_suffix)
