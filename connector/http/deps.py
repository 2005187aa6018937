"""Request-scoped access to the connector, the verified caller, and the transactions that record its token.

A token id is recorded once (replay protection). For a DSP message that changes state, it is recorded in the same
transaction as the change, so a rejected message consumes nothing and an accepted one costs no extra commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from connector.container import Connector
from connector.identity_service import Participant
from connector.persistence.replay import record_token_id
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
            if not record_token_id(uow, participant.token_id, participant.keep_until):
                raise ReplayedTokenError(participant.id, participant.token_id)
        yield uow


def remember_token(connector: Connector, participant: Participant) -> None:
    """For requests that change nothing (GET, catalog): record the token id in its own short transaction."""
    if participant.token_id is not None and participant.keep_until is not None:
        if not connector.replay_guard.remember(participant.token_id, participant.keep_until):
            raise ReplayedTokenError(participant.id, participant.token_id)
