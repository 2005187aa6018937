"""The outbox worker's four outcomes, driven step by step against a scripted peer (httpx.MockTransport)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from connector.container import Connector
from connector.dsp.client import DspClient
from connector.persistence.tables import EventRow, NegotiationRow, OutboxRow
from connector.services import negotiations
from connector.workers.outbox import OutboxWorker, backoff

PROVIDER = "did:web:provider.example"
OFFER = {"@id": "Y2Q:YXNzZXQ:MA", "@type": "Offer", "target": "asset-1", "permission": [{"action": "use"}]}


class Peer:
    """Answers every DSP request with the next scripted (status, body) and records what it received."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, Any] | None]] = []
        self.received: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request)
        status, body = self.script.pop(0)
        return httpx.Response(status, json=body) if body is not None else httpx.Response(status)


@pytest.fixture
def peer() -> Peer:
    return Peer()


@pytest.fixture
def connector(connector_with_peer: Callable[..., Connector], peer: Peer) -> Connector:
    return connector_with_peer(peer, start=False, outbox_max_attempts=3)  # the test drives run_once itself


def _initiate(connector: Connector) -> str:
    with connector.db.unit_of_work() as uow:
        row = negotiations.initiate(uow, connector.rt, counter_party_address="https://provider.example/dsp",
                                    counter_party_id=PROVIDER, offer=OFFER)
        return row.id


def _state(connector: Connector, negotiation_id: str) -> NegotiationRow:
    with connector.db.read_only() as session:
        return session.get(NegotiationRow, negotiation_id)  # type: ignore[return-value]


def _outbox(connector: Connector) -> list[OutboxRow]:
    with connector.db.read_only() as session:
        return list(session.query(OutboxRow).order_by(OutboxRow.seq))


def _due_now(connector: Connector) -> None:
    with connector.db.unit_of_work() as uow:
        for row in uow.query(OutboxRow).filter(OutboxRow.status == "pending"):
            row.next_attempt_at = connector.rt.clock() - timedelta(seconds=1)


def test_acknowledgement_moves_requesting_to_requested_and_learns_the_provider_pid(
        connector: Connector, peer: Peer) -> None:
    negotiation_id = _initiate(connector)
    assert _state(connector, negotiation_id).state == "REQUESTING"
    peer.script.append((201, {"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
                              "@type": "ContractNegotiation", "providerPid": "urn:uuid:p-1",
                              "consumerPid": negotiation_id, "state": "REQUESTED"}))
    assert connector.outbox.run_once() == 1
    row = _state(connector, negotiation_id)
    assert (row.state, row.provider_pid) == ("REQUESTED", "urn:uuid:p-1")
    sent = peer.received[0]
    assert sent.url == "https://provider.example/dsp/negotiations/request"
    assert sent.headers["authorization"].startswith("Bearer ")
    assert [o.status for o in _outbox(connector)] == ["sent"]
    assert connector.outbox.run_once() == 0  # nothing is sent twice


def test_transient_failure_is_retried_later_with_the_same_message_id(connector: Connector, peer: Peer) -> None:
    negotiation_id = _initiate(connector)
    peer.script += [(503, None), (201, {"providerPid": "urn:uuid:p-2"})]
    connector.outbox.run_once()
    [row] = _outbox(connector)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at > connector.rt.clock()  # backed off
    assert connector.outbox.run_once() == 0  # not due yet
    _due_now(connector)
    assert connector.outbox.run_once() == 1
    first, second = (r.read() for r in peer.received)
    assert first == second  # same body, same @id: the peer can deduplicate a redelivery
    assert _state(connector, negotiation_id).state == "REQUESTED"


def test_a_rejection_is_fatal_and_terminates_with_the_peers_reason(connector: Connector, peer: Peer) -> None:
    negotiation_id = _initiate(connector)
    peer.script.append((400, {"@type": "ContractNegotiationError", "reason": ["offer is not in our catalog"]}))
    connector.outbox.run_once()
    row = _state(connector, negotiation_id)
    assert row.state == "TERMINATED"
    assert "offer is not in our catalog" in (row.error_detail or "")
    assert [o.status for o in _outbox(connector)] == ["failed"]
    assert len(peer.received) == 1  # a peer's 4xx is never retried


def test_the_worker_gives_up_after_the_attempt_limit(connector: Connector, peer: Peer) -> None:
    negotiation_id = _initiate(connector)
    for _ in range(3):
        peer.script.append((502, None))
        _due_now(connector)
        connector.outbox.run_once()
    row = _state(connector, negotiation_id)
    assert row.state == "TERMINATED" and "gave up after 3 attempts" in (row.error_detail or "")


def test_messages_of_one_process_wait_for_the_previous_acknowledgement(connector: Connector, peer: Peer) -> None:
    negotiation_id = _initiate(connector)
    with connector.db.unit_of_work() as uow:
        negotiations.terminate(uow, connector.rt, negotiation_id, reason="changed my mind")
    peer.script.append((201, {"providerPid": "urn:uuid:p-3"}))
    assert connector.outbox.run_once() == 1  # only the request: the termination waits for its acknowledgement
    assert peer.received[0].url.path.endswith("/negotiations/request")
    peer.script.append((200, None))
    assert connector.outbox.run_once() == 1
    assert peer.received[1].url.path == "/dsp/negotiations/urn:uuid:p-3/termination"
    assert _state(connector, negotiation_id).state == "TERMINATED"
    with connector.db.read_only() as session:
        out = [e.message for e in session.query(EventRow).filter(EventRow.direction == "out")]
    assert out == ["ContractRequestMessage", "ContractNegotiationTerminationMessage"]


def test_a_sender_that_frees_up_wakes_the_dispatcher(connector: Connector, peer: Peer) -> None:
    """Rows left for the dispatcher (a restart's leftovers, retries) go out as fast as senders free up, not at the
    poll interval: with one sender and a 30 s poll, three due rows must all be sent within seconds."""
    ids = [_initiate(connector) for _ in range(3)]  # no worker running: nothing is leased, all are due
    lock = threading.Lock()

    def answer(request: httpx.Request) -> httpx.Response:
        with lock:
            peer.received.append(request)
            count = len(peer.received)
        return httpx.Response(201, json={"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
                                         "@type": "ContractNegotiation", "providerPid": f"urn:uuid:p-{count}",
                                         "consumerPid": "x", "state": "REQUESTED"})

    worker = OutboxWorker(connector.db, connector.rt, DspClient(httpx.MockTransport(answer), lambda _a: "Bearer t"),
                          data_address_for=lambda _t: None, threads=1, poll_seconds=30)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(row.status != "sent" for row in _outbox(connector)):
            time.sleep(0.05)
    finally:
        worker.stop()
    assert [row.status for row in _outbox(connector)] == ["sent"] * 3
    assert {_state(connector, negotiation_id).state for negotiation_id in ids} == {"REQUESTED"}


@pytest.mark.parametrize("attempts", [1, 3, 8, 20])
def test_backoff_grows_exponentially_with_jitter_and_a_cap(attempts: int) -> None:
    delays = [backoff(attempts) for _ in range(50)]
    ceiling = min(300.0, 0.5 * 2 ** attempts)
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1


