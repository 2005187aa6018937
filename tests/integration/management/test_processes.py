"""Negotiations, agreements, transfers and EDRs through the management API: shapes, commands, unknown ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from connector.container import Connector
from connector.persistence.tables import AgreementRow, EdrRow, EventRow, NegotiationRow, TransferRow

API = "/api/management/v3"
PEER = "did:web:provider.example"
PEER_DSP = "http://localhost:9/api/dsp/2025-1"  # nothing listens there: sends fail and are retried later
SIGNED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
POLICY = {"permission": [{"action": "use"}]}
PULL_ADDRESS = {  # what a provider's TransferStartMessage carries for a pull (DSP 2025-1 DataAddress)
    "@type": "DataAddress", "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
    "endpoint": "https://provider.example/api/public",
    "endpointProperties": [{"@type": "EndpointProperty", "name": "authorization", "value": "token-xyz"},
                           {"@type": "EndpointProperty", "name": "authType", "value": "bearer"}],
}


@pytest.fixture
def finalized(client: TestClient, connector: Connector) -> None:
    """A finalized consumer negotiation, its agreement, a started pull transfer with its EDR, and events."""
    with connector.db.unit_of_work() as uow:
        uow.add(NegotiationRow(
            id="neg-1", role="CONSUMER", state="FINALIZED", consumer_pid="neg-1", provider_pid="their-neg",
            counter_party_id=PEER, counter_party_address=PEER_DSP, asset_id="asset-1", offer=POLICY,
            offer_by="CONSUMER", agreement_id="agr-1", created_at=SIGNED, updated_at=SIGNED))
        uow.add(AgreementRow(id="agr-1", negotiation_id="neg-1", role="CONSUMER", provider_id=PEER,
                             consumer_id=connector.settings.participant_id, asset_id="asset-1", policy=POLICY,
                             signed_at=SIGNED, finalized=True))
        uow.add(TransferRow(
            id="tp-1", role="CONSUMER", state="STARTED", consumer_pid="tp-1", provider_pid="their-tp",
            counter_party_id=PEER, counter_party_address=PEER_DSP, agreement_id="agr-1", asset_id="asset-1",
            transfer_type="HttpData-PULL", created_at=SIGNED, updated_at=SIGNED))
        uow.add(EdrRow(transfer_id="tp-1", agreement_id="agr-1", asset_id="asset-1", provider_id=PEER,
                       data_address=PULL_ADDRESS,
                       created_at=SIGNED))
        uow.add(EventRow(process_id="neg-1", direction="out", message="ContractRequestMessage", state="REQUESTED",
                         at=SIGNED))
        uow.add(EventRow(process_id="neg-1", direction="in", message="ContractAgreementMessage", state="AGREED",
                         at=SIGNED))


def test_negotiation_reads_in_edc_shape(client: TestClient, finalized: None) -> None:
    negotiation = client.get(f"{API}/contractnegotiations/neg-1").json()
    assert negotiation["@type"] == "ContractNegotiation"
    assert negotiation["@id"] == "neg-1"
    assert negotiation["type"] == "CONSUMER"
    assert negotiation["state"] == "FINALIZED"
    assert negotiation["counterPartyId"] == PEER
    assert negotiation["counterPartyAddress"] == PEER_DSP
    assert negotiation["correlationId"] == "their-neg"
    assert negotiation["contractAgreementId"] == "agr-1"
    assert negotiation["protocol"] == "dataspace-protocol-http:2025-1"
    assert negotiation["createdAt"] == int(SIGNED.timestamp() * 1000)
    assert "errorDetail" not in negotiation
    assert client.get(f"{API}/contractnegotiations/neg-1/state").json() == {"@type": "NegotiationState",
                                                                            "state": "FINALIZED"}


def test_agreement_reads_in_edc_shape_from_both_endpoints(client: TestClient, connector: Connector,
                                                          finalized: None) -> None:
    agreement = client.get(f"{API}/contractagreements/agr-1").json()
    assert client.get(f"{API}/contractnegotiations/neg-1/agreement").json() == agreement
    assert agreement["@type"] == "ContractAgreement"
    assert agreement["assetId"] == "asset-1"
    assert agreement["contractSigningDate"] == int(SIGNED.timestamp())
    assert agreement["providerId"] == PEER
    assert agreement["consumerId"] == connector.settings.participant_id
    assert agreement["policy"]["@type"] == "Agreement"
    assert agreement["policy"]["permission"] == [{"action": "use"}]
    assert agreement["policy"]["target"] == "asset-1"
    assert client.get(f"{API}/contractagreements/agr-1/negotiation").json()["@id"] == "neg-1"
    listed = client.post(f"{API}/contractagreements/request", json={
        "filterExpression": [{"operandLeft": "assetId", "operator": "=", "operandRight": "asset-1"}]}).json()
    assert [a["@id"] for a in listed] == ["agr-1"]


def test_negotiation_events_are_listed_oldest_first(client: TestClient, finalized: None) -> None:
    events = client.get(f"{API}/contractnegotiations/neg-1/events").json()
    assert [(e["direction"], e["message"]) for e in events] == [
        ("out", "ContractRequestMessage"), ("in", "ContractAgreementMessage")]


def test_transfer_and_edr_read_in_edc_shape(client: TestClient, finalized: None) -> None:
    transfer = client.get(f"{API}/transferprocesses/tp-1").json()
    assert transfer["@type"] == "TransferProcess"
    assert (transfer["type"], transfer["state"], transfer["contractId"]) == ("CONSUMER", "STARTED", "agr-1")
    assert transfer["correlationId"] == "their-tp"
    assert transfer["transferType"] == "HttpData-PULL"
    assert client.get(f"{API}/transferprocesses/tp-1/state").json() == {"@type": "TransferState",
                                                                        "state": "STARTED"}
    [entry] = client.post(f"{API}/edrs/request", json={}).json()
    assert entry["@id"] == entry["transferProcessId"] == "tp-1"
    assert (entry["agreementId"], entry["contractNegotiationId"], entry["assetId"], entry["providerId"]) == (
        "agr-1", "neg-1", "asset-1", PEER)
    address = client.get(f"{API}/edrs/tp-1/dataaddress").json()
    assert address["@type"] == "DataAddress"
    assert address["type"] == address["endpointType"] == "https://w3id.org/idsa/v4.1/HTTP"
    assert address["endpoint"] == "https://provider.example/api/public"
    assert (address["authorization"], address["authType"]) == ("token-xyz", "bearer")


def test_edrs_filter_by_negotiation_and_can_be_deleted(client: TestClient, finalized: None) -> None:
    spec = {"filterExpression": [{"operandLeft": "contractNegotiationId", "operator": "=", "operandRight": "neg-1"}]}
    assert len(client.post(f"{API}/edrs/request", json=spec).json()) == 1
    spec["filterExpression"][0]["operandRight"] = "neg-2"
    assert client.post(f"{API}/edrs/request", json=spec).json() == []
    assert client.delete(f"{API}/edrs/tp-1").status_code == 204
    assert client.get(f"{API}/edrs/tp-1/dataaddress").status_code == 404


@pytest.mark.parametrize("path", [
    "/contractnegotiations/nope", "/contractnegotiations/nope/state", "/contractnegotiations/nope/agreement",
    "/contractnegotiations/nope/events", "/contractagreements/nope", "/contractagreements/nope/negotiation",
    "/transferprocesses/nope", "/transferprocesses/nope/state", "/transferprocesses/nope/events",
    "/edrs/nope/dataaddress",
])
def test_unknown_process_ids_are_not_found(client: TestClient, path: str) -> None:
    response = client.get(API + path)
    assert response.status_code == 404
    [error] = response.json()
    assert error["type"] == "not.found"
    assert "nope" in error["message"]


@pytest.mark.parametrize("path", ["/contractnegotiations/nope/terminate", "/contractnegotiations/nope/approve",
                                  "/transferprocesses/nope/suspend", "/transferprocesses/nope/terminate"])
def test_commands_on_unknown_processes_are_not_found(client: TestClient, path: str) -> None:
    assert client.post(API + path, json={"reason": "x"}).status_code == 404


def test_illegal_commands_are_refused_and_change_nothing(client: TestClient, finalized: None) -> None:
    terminate = client.post(f"{API}/contractnegotiations/neg-1/terminate",
                            json={"@type": "TerminateNegotiation", "reason": "changed my mind"})
    assert terminate.status_code == 400
    approve = client.post(f"{API}/contractnegotiations/neg-1/approve")
    assert approve.status_code == 400
    decline = client.post(f"{API}/contractnegotiations/neg-1/decline", json={"reason": "no"})
    assert decline.status_code == 400
    assert "not waiting for a decision" in decline.json()[0]["message"]
    assert client.post(f"{API}/transferprocesses/tp-1/resume").status_code == 400
    assert client.get(f"{API}/contractnegotiations/neg-1/state").json()["state"] == "FINALIZED"
    assert client.get(f"{API}/transferprocesses/tp-1/state").json()["state"] == "STARTED"


def test_suspend_records_the_intent_to_tell_the_provider(client: TestClient, finalized: None) -> None:
    assert client.post(f"{API}/transferprocesses/tp-1/suspend", json={"reason": "pause"}).status_code == 204
    assert client.get(f"{API}/transferprocesses/tp-1/state").json()["state"] in ("SUSPENDING", "SUSPENDED")


def test_negotiation_request_in_edc_json_ld_is_started(client: TestClient) -> None:
    body = {"@context": {"@vocab": "https://w3id.org/edc/v0.0.1/ns/"}, "@type": "ContractRequest",
            "counterPartyAddress": PEER_DSP, "protocol": "dataspace-protocol-http:2025-1",
            "policy": {"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "odrl:Offer",
                       "@id": "cd:asset-1:1", "target": "asset-1", "permission": [{"action": "use"}],
                       "prohibition": [], "obligation": []}}
    created = client.post(f"{API}/contractnegotiations", json=body)
    assert created.status_code == 200, created.text
    negotiation = client.get(f"{API}/contractnegotiations/{created.json()['@id']}").json()
    assert negotiation["type"] == "CONSUMER"
    assert negotiation["state"] in ("REQUESTING", "REQUESTED"), negotiation
    assert negotiation["counterPartyId"] == "did:web:localhost%3A9"  # derived from the address
    assert negotiation["assetId"] == "asset-1"
    assert negotiation["offer"]["@type"] == "Offer"
    assert negotiation["offer"]["assigner"] == "did:web:localhost%3A9"
    assert negotiation["offer"]["permission"] == [{"action": "use"}]


@pytest.mark.parametrize(("policy", "named"), [
    ({"@id": "o", "target": "a"}, "/policy"),
    ("offer", "/policy"),
])
def test_negotiation_request_without_a_usable_offer_is_refused(client: TestClient, policy: object,
                                                               named: str) -> None:
    response = client.post(f"{API}/contractnegotiations", json={"counterPartyAddress": PEER_DSP,
                                                                "counterPartyId": PEER, "policy": policy})
    assert response.status_code == 400
    assert named in response.json()[0]["message"]


def test_negotiation_request_for_another_protocol_is_refused(client: TestClient) -> None:
    response = client.post(f"{API}/contractnegotiations", json={
        "counterPartyAddress": PEER_DSP, "protocol": "dataspace-protocol-http", "policy": POLICY})
    assert response.status_code == 400
    assert "/protocol" in response.json()[0]["message"]


def test_transfer_request_uses_the_agreement_and_its_negotiation_address(client: TestClient,
                                                                          finalized: None) -> None:
    created = client.post(f"{API}/transferprocesses", json={
        "@context": {"@vocab": "https://w3id.org/edc/v0.0.1/ns/"}, "@type": "TransferRequest",
        "contractId": "agr-1", "transferType": "HttpData-PUSH", "protocol": "dataspace-protocol-http:2025-1",
        "dataDestination": {"type": "HttpData", "baseUrl": "https://sink.example/in", "authKey": "Authorization",
                            "authCode": "Bearer s3cret"}})
    assert created.status_code == 200, created.text
    transfer = client.get(f"{API}/transferprocesses/{created.json()['@id']}").json()
    assert transfer["counterPartyAddress"] == PEER_DSP
    assert transfer["counterPartyId"] == PEER
    assert transfer["state"] in ("REQUESTING", "REQUESTED")
    assert transfer["dataDestination"] == {
        "@type": "DataAddress", "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
        "endpoint": "https://sink.example/in",
        "endpointProperties": [{"@type": "EndpointProperty", "name": "authorization", "value": "Bearer s3cret"}]}


@pytest.mark.parametrize(("body", "named"), [
    ({"contractId": "nope", "transferType": "HttpData-PULL"}, "/contractId"),
    ({"contractId": "agr-1", "transferType": "AmazonS3-PUSH"}, "/transferType"),
    ({"contractId": "agr-1", "transferType": "HttpData-PUSH"}, "/dataDestination"),
    ({"contractId": "agr-1", "transferType": "HttpData-PUSH", "dataDestination": {"type": "HttpData"}},
     "/dataDestination/baseUrl"),
    ({"contractId": "agr-1", "transferType": "HttpData-PUSH",
      "dataDestination": {"type": "HttpData", "baseUrl": "https://s", "authKey": "X-Key", "authCode": "k"}},
     "/dataDestination/authKey"),
    ({"transferType": "HttpData-PULL"}, "/contractId"),
])
def test_unusable_transfer_request_is_refused_naming_the_field(client: TestClient, finalized: None, body: dict,
                                                               named: str) -> None:
    response = client.post(f"{API}/transferprocesses", json=body)
    assert response.status_code == 400
    assert named in response.json()[0]["message"]
