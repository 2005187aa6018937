"""Request-scoped access to the connector and the authenticated participant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from connector.container import Connector
from connector.identity_service import Participant


def get_connector(request: Request) -> Connector:
    return request.app.state.connector


async def authenticated_participant(request: Request) -> Participant:
    """Verify the caller's token (DID resolution may block on the network, so off the event loop)."""
    connector: Connector = request.app.state.connector
    return await run_in_threadpool(connector.identity.authenticate, request.headers.get("authorization"))


ConnectorDep = Annotated[Connector, Depends(get_connector)]
ParticipantDep = Annotated[Participant, Depends(authenticated_participant)]
