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
from connector.persistence.appends import guard_token
from identity.errors import ReplayedTokenError


async def get_connector(request: Request) -> Connector:
    """Async on purpose: FastAPI runs a plain `def` dependency on the thread pool, one hop per request."""
    return request.app.state.connector


async def verified_participant(request: Request) -> Participant:
    """Check the caller's token: on the event loop when its DID document is at hand, else on a worker thread
    (resolving a DID may block on the network)."""
    connector: Connector = request.app.state.connector
    authorization = request.headers.get("authorization")
    without_io = getattr(connector.identity, "verify_without_io", None)
    if without_io is not None:
        participant: Participant | None = without_io(authorization)
        if participant is not None:
            return participant
    return await run_in_threadpool(connector.identity.verify, authorization)


ConnectorDep = Annotated[Connector, Depends(get_connector)]
ParticipantDep = Annotated[Participant, Depends(verified_participant)]


@contextmanager
def message_transaction(connector: Connector, participant: Participant) -> Iterator[Session]:
    """One unit of work that records the caller's token id (with the message's id, or at commit); a replay raises
    and rolls back whatever the handler did."""
    with connector.db.unit_of_work() as uow:
        token_id = participant.token_id
        if token_id is not None and participant.keep_until is not None:
            guard_token(uow, token_id, participant.keep_until,
                        replayed=lambda: ReplayedTokenError(participant.id, token_id))
        yield uow


def remember_token(connector: Connector, participant: Participant) -> None:
    """For requests that change nothing (GET, catalog): record the token id in its own short transaction."""
    if participant.token_id is not None and participant.keep_until is not None:
        if not connector.replay_guard.remember(participant.token_id, participant.keep_until):
            raise ReplayedTokenError(participant.id, participant.token_id)
