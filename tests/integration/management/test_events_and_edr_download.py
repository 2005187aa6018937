"""/v3/events/request (every DSP message, for the console's audit log) and /v3/edrs/{id}/data (download through an
EDR); the full download path runs between two real connectors in tests/e2e/console."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from connector.container import Connector
from connector.persistence.tables import EdrRow, EventRow


def _event(seq_time: datetime, process_id: str, message: str, direction: str = "in") -> EventRow:
    return EventRow(process_id=process_id, direction=direction, message=message, state="REQUESTED", detail=None,
                    at=seq_time)


def test_events_newest_first_filtered_and_typed(client: TestClient, connector: Connector) -> None:
    assert client.post("/api/management/v3/events/request", json={}).json() == []
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with connector.db.unit_of_work() as uow:
        uow.add_all([_event(start, "p-1", "ContractRequestMessage"),
                     _event(start + timedelta(seconds=1), "p-2", "TransferRequestMessage", "out"),
                     _event(start + timedelta(seconds=2), "p-1", "ContractAgreementMessage", "out")])
    newest = client.post("/api/management/v3/events/request", json={"sortField": "seq", "sortOrder": "DESC"}).json()
    assert [e["message"] for e in newest] == ["ContractAgreementMessage", "TransferRequestMessage",
                                              "ContractRequestMessage"]
    assert newest[0]["processId"] == "p-1" and newest[0]["processType"] == "other"  # no such process row
    assert newest[0]["at"] == int((start + timedelta(seconds=2)).timestamp() * 1000)
    sent = client.post("/api/management/v3/events/request", json={"filterExpression": [
        {"operandLeft": "direction", "operator": "=", "operandRight": "out"},
        {"operandLeft": "processId", "operator": "=", "operandRight": "p-1"}]}).json()
    assert [e["message"] for e in sent] == ["ContractAgreementMessage"]
    bad = client.post("/api/management/v3/events/request", json={"filterExpression": [
        {"operandLeft": "colour", "operator": "=", "operandRight": "red"}]})
    assert bad.status_code == 400 and "colour" in bad.json()[0]["message"]


def test_download_needs_an_edr(client: TestClient) -> None:
    response = client.get("/api/management/v3/edrs/no-such-transfer/data")
    assert response.status_code == 404
    assert "no-such-transfer" in response.json()[0]["message"]


def test_download_refuses_an_edr_endpoint_outside_the_egress_rules(client: TestClient, connector: Connector) -> None:
    """The endpoint came from a provider: a link-local address (cloud metadata) is never fetched."""
    with connector.db.unit_of_work() as uow:
        uow.add(EdrRow(transfer_id="t-1", agreement_id="a-1", asset_id="x", provider_id="did:web:p",
                       data_address={"endpointType": "https://w3id.org/idsa/v4.1/HTTP",
                                     "endpoint": "http://169.254.169.254/latest/meta-data"},
                       created_at=datetime.now(UTC)))
    response = client.get("/api/management/v3/edrs/t-1/data")
    assert response.status_code == 502
    assert "not reachable from here" in response.json()[0]["message"]
