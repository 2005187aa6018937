"""Transfer process endpoints for both roles, plus the consumer-side GET the DSP TCK relies on."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from connector.dsp.messages import transfer_ack
from connector.http.body import read_dsp_message
from connector.http.deps import ConnectorDep, ParticipantDep, message_transaction, remember_token
from connector.services import compute_transfers
from connector.services import transfers as service
from contracts.transfer import TransferMessage as M

router = APIRouter(prefix="/transfers")


@router.get("/{pid}")
async def get_transfer(pid: str, connector: ConnectorDep, participant: ParticipantDep) -> JSONResponse:
    def load() -> dict:  # type: ignore[type-arg]
        remember_token(connector, participant)
        with connector.db.read_only() as uow:
            row = service.get_for_peer(uow, pid, participant.id)
            return {**transfer_ack(row), **compute_transfers.job_members(uow, row)}

    return JSONResponse(await run_in_threadpool(load))


@router.post("/request")
async def request_transfer(request: Request, connector: ConnectorDep, participant: ParticipantDep) -> JSONResponse:
    message = await read_dsp_message(request, {M.REQUEST.value}, limit=connector.settings.dsp_body_limit)

    def create() -> dict:  # type: ignore[type-arg]
        with message_transaction(connector, participant) as uow:
            row, _created = service.provider_on_request(uow, connector.rt, participant_id=participant.id,
                                                        message=message)
            return transfer_ack(row)

    return JSONResponse(await run_in_threadpool(create), status_code=201)


def _message_route(suffix: str, kind: M) -> None:
    async def receive(pid: str, request: Request, connector: ConnectorDep,
                      participant: ParticipantDep) -> JSONResponse:
        message = await read_dsp_message(request, {kind.value}, limit=connector.settings.dsp_body_limit)

        def apply() -> dict:  # type: ignore[type-arg]
            with message_transaction(connector, participant) as uow:
                return transfer_ack(service.on_message(uow, connector.rt, participant_id=participant.id, pid=pid,
                                                       kind=kind, message=message))

        return JSONResponse(await run_in_threadpool(apply))

    receive.__name__ = "receive_" + suffix
    router.add_api_route("/{pid}/" + suffix, receive, methods=["POST"])


for _suffix, _kind in (("start", M.START), ("completion", M.COMPLETION), ("suspension", M.SUSPENSION),
                       ("termination", M.TERMINATION)):
    _message_route(_suffix, _kind)
