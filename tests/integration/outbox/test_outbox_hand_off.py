"""With the worker running, a queued message reaches a sender without a claim, and in order per process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connector.container import Connector
from connector.persistence.tables import NegotiationRow, OutboxRow
from connector.services import negotiations

PROVIDER = "did:web:provider.example"
OFFER = {"@id": "Y2Q:YXNzZXQ:MA", "@type": "Offer", "target": "asset-1", "permission": [{"action": "use"}]}


class Peer:
    """Acknowledges every message; holds the first answer until released, to queue a second message behind it."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.release = threading.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        self.release.wait(10)
        if request.url.path.endswith("/negotiations/request"):
            return httpx.Response(201, json={"providerPid": "urn:uuid:p-1"})
        return httpx.Response(200)


@pytest.fixture
def peer() -> Peer:
    return Peer()


@pytest.fixture
def connector(connector_with_peer: Callable[..., Connector], peer: Peer) -> Iterator[Connector]:
    connector = connector_with_peer(peer, start=False)
    claims: list[int] = []
    claim = connector.outbox._claim

    def counting_claim(*, limit: int) -> list[Any]:
        found = claim(limit=limit)
        claims.extend(d.seq for d in found)
        return found

    connector.outbox._claim = counting_claim  # type: ignore[method-assign]
    connector.outbox.start()
    connector.claimed = claims  # type: ignore[attr-defined]
    yield connector
    peer.release.set()  # before the factory stops the worker, which waits for its senders


def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def _queued(connector: Connector, process_id: str) -> list[OutboxRow]:
    """The process's messages as committed, oldest first (a row is inserted among its transaction's closing
    writes, so the transaction itself does not see it before commit)."""
    with connector.db.read_only() as session:
        return list(session.scalars(select(OutboxRow).where(OutboxRow.process_id == process_id)
                                    .order_by(OutboxRow.seq)))


def _state(connector: Connector, negotiation_id: str) -> str:
    with connector.db.read_only() as session:
        return session.get(NegotiationRow, negotiation_id).state  # type: ignore[union-attr]


def test_a_queued_message_is_sent_without_a_claim(connector: Connector, peer: Peer) -> None:
    peer.release.set()
    with connector.db.unit_of_work() as uow:
        negotiation_id = negotiations.initiate(uow, connector.rt, counter_party_address="https://provider.example/dsp",
                                               counter_party_id=PROVIDER, offer=OFFER).id
    [row] = _queued(connector, negotiation_id)
    assert row.leased_by is not None  # leased in the transaction that queued it
    _wait(lambda: _state(connector, negotiation_id) == "REQUESTED")
    assert peer.paths == ["/dsp/negotiations/request"]
    assert connector.claimed == []  # type: ignore[attr-defined]


def test_a_message_queued_behind_another_follows_its_acknowledgement(connector: Connector, peer: Peer) -> None:
    with connector.db.unit_of_work() as uow:
        negotiation_id = negotiations.initiate(uow, connector.rt, counter_party_address="https://provider.example/dsp",
                                               counter_party_id=PROVIDER, offer=OFFER).id
    _wait(lambda: len(peer.paths) == 1)  # the request is on the wire, unanswered
    with connector.db.unit_of_work() as uow:
        negotiations.terminate(uow, connector.rt, negotiation_id, reason="changed my mind")
    [row] = _queued(connector, negotiation_id)[1:]
    assert (row.status, row.leased_by) == ("pending", None)  # it waits for the request's acknowledgement
    time.sleep(0.2)
    assert len(peer.paths) == 1  # never overtakes the unacknowledged request
    peer.release.set()
    _wait(lambda: _state(connector, negotiation_id) == "TERMINATED")
    assert peer.paths == ["/dsp/negotiations/request", "/dsp/negotiations/urn:uuid:p-1/termination"]
    assert connector.claimed == []  # type: ignore[attr-defined]  # the acknowledgement leased the successor
