"""The two TCK hooks: the TCK asks us, as a consumer, to start a negotiation or a transfer with it.

    POST /tck/negotiations/requests  {"providerId", "offerId", "datasetId", "connectorAddress"}
    POST /tck/transfers/requests     {"providerId", "agreementId", "format", "connectorAddress"}

Bodies are plain JSON (not JSON-LD). The caller must present the static identity's token, like every DSP request.
Each hook runs the same service call as the management API; the scenario then plays from `scenarios`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from connector.container import Connector
from connector.http.deps import ConnectorDep, verified_participant
from connector.services import negotiations, transfers


class NegotiationHook(BaseModel):
    model_config = ConfigDict(extra="ignore")
    provider_id: str = Field(alias="providerId", min_length=1)
    offer_id: str = Field(alias="offerId", min_length=1)
    dataset_id: str = Field(alias="datasetId", min_length=1)
    connector_address: str = Field(alias="connectorAddress", min_length=1)


class TransferHook(BaseModel):
    model_config = ConfigDict(extra="ignore")
    provider_id: str = Field(alias="providerId", min_length=1)
    agreement_id: str = Field(alias="agreementId", min_length=1)
    format: str = Field(min_length=1)
    connector_address: str = Field(alias="connectorAddress", min_length=1)


def build_router() -> APIRouter:
    router = APIRouter(prefix="/tck", dependencies=[Depends(verified_participant)], include_in_schema=False)

    @router.post("/negotiations/requests")
    async def request_negotiation(body: NegotiationHook, connector: ConnectorDep) -> dict[str, Any]:
        """Send a ContractRequestMessage for the TCK's offer id unchanged (the TCK parses it back)."""
        offer = {"@id": body.offer_id, "@type": "Offer", "target": body.dataset_id,
                 "permission": [{"action": "use"}]}

        def start() -> str:
            with connector.db.unit_of_work() as uow:
                row = negotiations.initiate(uow, connector.rt, counter_party_address=body.connector_address,
                                            counter_party_id=body.provider_id, offer=offer)
                return row.id

        return {"@id": await run_in_threadpool(start)}

    @router.post("/transfers/requests")
    async def request_transfer(body: TransferHook, connector: ConnectorDep) -> dict[str, Any]:
        """Send a TransferRequestMessage for a seeded agreement (a pull: no dataAddress)."""

        def start() -> str:
            with connector.db.unit_of_work() as uow:
                row = transfers.initiate(uow, connector.rt, counter_party_address=body.connector_address,
                                         agreement_id=body.agreement_id, transfer_type=body.format,
                                         data_destination=None)
                return row.id

        return {"@id": await run_in_threadpool(start)}

    return router


def enable(connector: Connector) -> None:
    """Seed the TCK data (idempotent). Called once at start when `--tck` is set."""
    from connector.tck.seed import seed

    with connector.db.unit_of_work() as uow:
        seed(uow, connector.rt, tck_participant=connector.settings.static_peer_id)
