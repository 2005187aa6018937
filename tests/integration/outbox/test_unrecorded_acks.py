"""An acknowledgement waits to be recorded by the next transaction of its process, or by a batch, and is never lost:
a transaction that rolls back gives it back, and stopping the worker records what is left."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from connector.container import Connector
from connector.persistence.tables import EventRow, NegotiationRow, OutboxRow
from connector.services import negotiations
from connector.workers import outbox

PROVIDER = "did:web:provider.example"
OFFER = {"@id": "Y2Q:YXNzZXQ:MA", "@type": "Offer", "target": "asset-1", "permission": [{"action": "use"}]}


class Peer:
    """Acknowledges every message at once, and records the paths it was sent."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.paths.append(request.url.path)
        if request.url.path.endswith("/negotiations/request"):
            return httpx.Response(201, json={"providerPid": "urn:uuid:p-1"})
        return httpx.Response(200)


@pytest.fixture
def peer() -> Peer:
    return Peer()


@pytest.fixture
def connector(connector_with_peer: Callable[..., Connector], peer: Peer) -> Connector:
    return connector_with_peer(peer, start=True)


def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def _initiate(connector: Connector, peer: Peer) -> str:
    with connector.db.unit_of_work() as uow:
        negotiation_id = negotiations.initiate(uow, connector.rt, counter_party_address="https://provider.example/dsp",
                                               counter_party_id=PROVIDER, offer=OFFER).id
    _wait(lambda: len(peer.paths) == 1)  # sent and answered; the answer waits to be recorded
    return negotiation_id


def _initiate_another(connector: Connector, peer: Peer, sent: int) -> str:
    with connector.db.unit_of_work() as uow:
        negotiation_id = negotiations.initiate(uow, connector.rt, counter_party_address="https://provider.example/dsp",
                                               counter_party_id=PROVIDER, offer=OFFER).id
    _wait(lambda: len(peer.paths) == sent)
    return negotiation_id


def _row(connector: Connector, negotiation_id: str) -> NegotiationRow:
    with connector.db.read_only() as session:
        return session.get(NegotiationRow, negotiation_id)  # type: ignore[return-value]


def _statuses(connector: Connector, negotiation_id: str) -> list[str]:
    with connector.db.read_only() as session:
        return list(session.scalars(select(OutboxRow.status).where(OutboxRow.process_id == negotiation_id)
                                    .order_by(OutboxRow.seq)))


def _timeline(connector: Connector, negotiation_id: str) -> list[tuple[str, str]]:
    with connector.db.read_only() as session:
        events = session.scalars(select(EventRow).where(EventRow.process_id == negotiation_id)
                                 .order_by(EventRow.seq))
        return [(e.direction, e.message) for e in events]


def _agreement(connector: Connector, negotiation_id: str) -> dict[str, Any]:
    return {"@id": "urn:uuid:m-agreement", "providerPid": "urn:uuid:p-1", "consumerPid": negotiation_id,
            "agreement": {"@id": "urn:uuid:agreement-1", "target": "asset-1", "assigner": PROVIDER,
                          "assignee": connector.settings.participant_id, "permission": [{"action": "use"}],
                          "timestamp": "2026-12-06T12:00:00Z"}}


@pytest.mark.parametrize("announced", [False, True], ids=["settled", "offered-to-the-lock"])
def test_the_peers_answer_records_the_acknowledgement_of_the_message_it_answers(
        connector: Connector, peer: Peer, monkeypatch: pytest.MonkeyPatch, announced: bool) -> None:
    """Announced as the DSP endpoint does (`expect_message`), the statement that locks the row marks the row
    sent on PostgreSQL, and no UPDATE of its own follows."""
    monkeypatch.setattr(outbox, "ACK_WAIT_SECONDS", 60.0)  # no batch within the test: only the answer records it
    negotiation_id = _initiate(connector, peer)
    time.sleep(0.2)
    assert (_row(connector, negotiation_id).state, _statuses(connector, negotiation_id)) == ("REQUESTING", ["pending"])
    statements: list[str] = []
    listener = lambda _conn, _cursor, statement, *_args: statements.append(statement)  # noqa: E731
    event.listen(connector.db.engine, "before_cursor_execute", listener)
    try:
        with connector.db.unit_of_work() as uow:
            if announced:
                negotiations.expect_message(uow, connector.rt, negotiation_id, "urn:uuid:m-agreement")
            negotiations.get_for_peer(uow, negotiation_id, PROVIDER, lock=True)
            negotiations.consumer_on_agreement(uow, connector.rt, participant_id=PROVIDER, pid=negotiation_id,
                                               message=_agreement(connector, negotiation_id))
    finally:
        event.remove(connector.db.engine, "before_cursor_execute", listener)
    assert _statuses(connector, negotiation_id)[0] == "sent"  # recorded in the answer's own transaction
    carried = announced and connector.db.engine.dialect.name == "postgresql"
    assert any(s.startswith("UPDATE outbox SET status") for s in statements) is not carried
    assert _timeline(connector, negotiation_id)[:2] == [("out", "ContractRequestMessage"),
                                                        ("in", "ContractAgreementMessage")]
    # The verification was not held back behind the request: leased at once and on its way.
    _wait(lambda: len(peer.paths) == 2)
    assert peer.paths[1] == "/dsp/negotiations/urn:uuid:p-1/agreement/verification"


def test_an_acknowledgement_no_transaction_takes_is_recorded_in_a_batch(
        connector: Connector, peer: Peer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "ACK_WAIT_SECONDS", 0.5)
    negotiation_id = _initiate(connector, peer)
    assert _row(connector, negotiation_id).state == "REQUESTING"  # waiting, not lost
    _wait(lambda: _row(connector, negotiation_id).state == "REQUESTED", timeout=5)
    row = _row(connector, negotiation_id)
    assert (row.provider_pid, _statuses(connector, row.id)) == ("urn:uuid:p-1", ["sent"])
    assert _timeline(connector, row.id) == [("out", "ContractRequestMessage")]


def test_a_transaction_that_rolls_back_gives_back_what_it_took_and_stopping_records_it(
        connector: Connector, peer: Peer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "ACK_WAIT_SECONDS", 60.0)
    negotiation_id = _initiate(connector, peer)
    time.sleep(0.2)
    with pytest.raises(RuntimeError), connector.db.unit_of_work() as uow:
        connector.outbox.settle(uow, negotiation_id)
        raise RuntimeError("the transaction fails after recording the acknowledgement")
    assert (_row(connector, negotiation_id).state, _statuses(connector, negotiation_id)) == ("REQUESTING", ["pending"])
    with pytest.raises(RuntimeError), connector.db.unit_of_work() as uow:  # marked by the row lock, then rolled back
        negotiations.expect_message(uow, connector.rt, negotiation_id, "urn:uuid:m-1")
        negotiations.get_for_peer(uow, negotiation_id, PROVIDER, lock=True)
        raise RuntimeError("the transaction fails after the lock marked the row sent")
    assert (_row(connector, negotiation_id).state, _statuses(connector, negotiation_id)) == ("REQUESTING", ["pending"])
    connector.outbox.stop()  # no dispatcher left to batch it: recorded now
    assert (_row(connector, negotiation_id).state, _statuses(connector, negotiation_id)) == ("REQUESTED", ["sent"])
    assert _timeline(connector, negotiation_id) == [("out", "ContractRequestMessage")]


def test_a_message_queued_behind_an_acknowledgement_that_arrived_meanwhile_does_not_wait_for_the_batch(
        connector: Connector, peer: Peer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The acknowledgement arrives after the queuing transaction looked for it (simulated: that transaction finds
    nothing to settle), and before it queues its message behind: the message must go out at once, not after
    ACK_WAIT_SECONDS."""
    monkeypatch.setattr(outbox, "ACK_WAIT_SECONDS", 60.0)
    negotiation_id = _initiate(connector, peer)
    _wait(lambda: len(connector.outbox._acks) == 1)  # kept, waiting to be recorded
    with connector.db.unit_of_work() as uow, monkeypatch.context() as patched:
        patched.setattr(connector.outbox, "settle", lambda _uow, _process_id: None)
        negotiations.terminate(uow, connector.rt, negotiation_id, reason="changed my mind")
    _wait(lambda: len(peer.paths) == 2, timeout=5)
    assert peer.paths[1] == "/dsp/negotiations/urn:uuid:p-1/termination"
    assert _statuses(connector, negotiation_id)[0] == "sent"  # the request's acknowledgement, recorded first


def test_the_acknowledgements_of_last_messages_are_recorded_together_within_moments(
        connector: Connector, peer: Peer, monkeypatch: pytest.MonkeyPatch) -> None:
    """No answer follows a termination (nor a FINALIZED event): its acknowledgement waits only LAST_ACK_WAIT_SECONDS
    for others to share its batch, whatever ACK_WAIT_SECONDS says."""
    monkeypatch.setattr(outbox, "ACK_WAIT_SECONDS", 60.0)
    monkeypatch.setattr(outbox, "LAST_ACK_WAIT_SECONDS", 0.3)
    batches: list[int] = []
    record_batch = connector.outbox._record_batch
    monkeypatch.setattr(connector.outbox, "_record_batch",
                        lambda batch: (batches.append(len(batch)) if batch else None, record_batch(batch)))
    ids = [_initiate_another(connector, peer, count) for count in (1, 2)]
    with connector.db.unit_of_work() as uow:  # the requests' acknowledgements are settled here
        for negotiation_id in ids:
            negotiations.terminate(uow, connector.rt, negotiation_id, reason="changed my mind")
    for negotiation_id in ids:
        _wait(lambda negotiation_id=negotiation_id: _row(connector, negotiation_id).state == "TERMINATED",
              timeout=5)
        assert _statuses(connector, negotiation_id) == ["sent", "sent"]
    assert len(connector.outbox._acks) == 0 and batches == [2]  # one transaction for both


def test_acknowledgements_offered_to_the_lock_are_recorded_even_if_no_handler_settles_them(
        connector: Connector, peer: Peer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row marked sent is never left without its process moving on: the transaction records what it took."""
    monkeypatch.setattr(outbox, "ACK_WAIT_SECONDS", 60.0)
    negotiation_id = _initiate(connector, peer)
    time.sleep(0.2)
    with connector.db.unit_of_work() as uow:
        negotiations.expect_message(uow, connector.rt, negotiation_id, "urn:uuid:m-1")
        negotiations.get_for_peer(uow, negotiation_id, PROVIDER, lock=True)
    row = _row(connector, negotiation_id)
    assert (row.state, row.provider_pid, _statuses(connector, negotiation_id)) == ("REQUESTED", "urn:uuid:p-1",
                                                                                   ["sent"])
    assert _timeline(connector, negotiation_id) == [("out", "ContractRequestMessage")]
