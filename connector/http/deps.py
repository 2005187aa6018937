"""Request-scoped access to the connector, the verified caller, and the transactions that record its token.

A token id is recorded once (replay protection). For a DSP message that changes state, it is recorded in the same
transaction as the change, so a rejected message consumes nothing and an accepted one costs no extra commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from connector.container import Connector
from connector.identity_service import Participant
from connector.persistence.tables import UsedTokenRow
from identity.errors import ReplayedTokenError


def get_connector(request: Request) -> Connector:
    return request.app.state.connector


async def verified_participant(request: Request) -> Participant:
    """Check the caller's token (DID resolution may block on the network, so off the event loop)."""
    connector: Connector = request.app.state.connector
    return await run_in_threadpool(connector.identity.verify, request.headers.get("authorization"))


ConnectorDep = Annotated[Connector, Depends(get_connector)]
ParticipantDep = Annotated[Participant, Depends(verified_participant)]


@contextmanager
def message_transaction(connector: Connector, participant: Participant) -> Iterator[Session]:
    """One unit of work that first records the caller's token id; a replay raises before anything changes."""
    with connector.db.unit_of_work() as uow:
        if participant.token_id is not None and participant.keep_until is not None:
            uow.add(UsedTokenRow(jti=participant.token_id, expires_at=participant.keep_until))
            try:
                uow.flush()
            except IntegrityError:
                raise ReplayedTokenError(participant.id, participant.token_id) from None
        yield uow


def remember_token(connector: Connector, participant: Participant) -> None:
    """For requests that change nothing (GET, catalog): record the token id in its own short transaction."""
    with message_transaction(connector, participant):
        pass
