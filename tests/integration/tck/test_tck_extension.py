"""The DSP TCK extension (--tck) and the follow-up seam it plugs into, driven in-process step by step.

Each test mirrors the behaviour one TCK case relies on, so a regression shows here without Maven: the seed the
TCK's ids name, the hooks, and scripted moves that wait for the peer instead of the connector's automation.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from connector.container import Connector
from connector.http.app import create_app
from connector.persistence.migrate import upgrade
from connector.persistence.tables import NegotiationRow, OutboxRow, TransferRow
from connector.services import negotiations
from connector.services.followups import NoScript
from connector.settings import Settings, SettingsError
from connector.tck.hooks import enable

TOKEN = "tck-static-token"
TCK = "TCK_PARTICIPANT"
CALLBACK = "http://localhost:18999"
DSP = ["https://w3id.org/dspace/2025/1/context.jsonld"]


class Peer:
    """The TCK's callback server: answers 200 to everything (an empty body unless scripted) and records it."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, Any] | None]] = []
        self.received: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        import json

        self.received.append((request.url.path, json.loads(request.content or b"{}")))
        status, body = self.answers.pop(0) if self.answers else (200, None)
        return httpx.Response(status, json=body) if body is not None else httpx.Response(status)

    def paths(self) -> list[str]:
        return [path for path, _ in self.received]


@pytest.fixture
def peer() -> Peer:
    return Peer()


def _settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(port=18195, dev=True, api_key="test-key-123", database_url=database_url,
                                  data_dir=tmp_path / "data", identity="static", static_token=TOKEN,
                                  static_peer_id=TCK, tck=True)
    values.update(overrides)
    return Settings(**values).with_defaults().validate()


@pytest.fixture
def connector(database_url: str, tmp_path: Path, peer: Peer) -> Iterator[Connector]:
    connector = Connector(_settings(database_url, tmp_path), transport=httpx.MockTransport(peer))
    upgrade(connector.db.engine)  # no worker thread: each test delivers the outbox itself
    enable(connector)
    yield connector
    connector.db.dispose()


@pytest.fixture
def client(connector: Connector) -> Iterator[TestClient]:
    with TestClient(create_app(connector, manage_lifecycle=False), base_url="http://localhost:18195",
                    headers={"Authorization": TOKEN}) as test_client:
        yield test_client


def _deliver(connector: Connector) -> int:
    """Send everything queued, including messages the script holds back (pace), like the worker would later."""
    with connector.db.unit_of_work() as uow:
        for row in uow.query(OutboxRow).filter(OutboxRow.status == "pending"):
            row.next_attempt_at = connector.rt.clock() - timedelta(seconds=1)
    return connector.outbox.run_once()


def _deliver_all(connector: Connector) -> None:
    while _deliver(connector):
        pass


def _negotiation(connector: Connector, pid: str) -> NegotiationRow:
    with connector.db.read_only() as session:
        return session.get(NegotiationRow, pid)  # type: ignore[return-value]


def _transfer(connector: Connector, pid: str) -> TransferRow:
    with connector.db.read_only() as session:
        return session.get(TransferRow, pid)  # type: ignore[return-value]


# -- settings --------------------------------------------------------------------------------------------------------
def test_the_extension_is_off_by_default_and_needs_the_static_identity(database_url: str, tmp_path: Path) -> None:
    assert Settings().tck is False
    plain = Connector(Settings(port=18196, dev=True, api_key="test-key-123", database_url=database_url,
                               data_dir=tmp_path / "plain").with_defaults().validate())
    assert isinstance(plain.rt.script, NoScript)
    assert not any(getattr(r, "path", "").startswith("/tck") for r in create_app(plain).routes)
    with pytest.raises(SettingsError, match="static identity"):
        _settings(database_url, tmp_path, identity="did")


# -- seed (CAT:01-01 ... CAT:01-03) ---------------------------------------------------------------------------------
def test_the_catalog_lists_the_tck_datasets_and_cat0103_does_not_exist(client: TestClient) -> None:
    catalog = client.post("/api/dsp/2025-1/catalog/request",
                          json={"@context": DSP, "@type": "CatalogRequestMessage"}).json()
    ids = {d["@id"] for d in catalog["dataset"]}
    assert {"CAT0101", "CAT0102", "ACN0101"} <= ids and "CAT0103" not in ids
    assert client.get("/api/dsp/2025-1/catalog/datasets/CAT0102").json()["@id"] == "CAT0102"
    missing = client.get("/api/dsp/2025-1/catalog/datasets/CAT0103")
    assert (missing.status_code, missing.json()["@type"]) == (404, "CatalogError")


def test_the_hooks_refuse_a_caller_without_the_static_token(client: TestClient) -> None:
    answer = client.post("/tck/negotiations/requests", headers={"Authorization": "wrong"},
                         json={"providerId": TCK, "offerId": "offerACNC0101", "datasetId": "ACNC0101",
                               "connectorAddress": CALLBACK})
    assert answer.status_code == 401


# -- CUT as provider ------------------------------------------------------------------------------------------------
def _request(client: TestClient, dataset: str) -> str:
    answer = client.post("/api/dsp/2025-1/negotiations/request", json={
        "@context": DSP, "@type": "ContractRequestMessage", "consumerPid": f"urn:tck:{dataset}",
        "callbackAddress": CALLBACK,
        "offer": {"@id": f"CD123:{dataset}:456", "@type": "Offer", "target": dataset,
                  "permission": [{"action": "use"}]}})
    assert answer.status_code == 201, answer.text
    return answer.json()["providerPid"]


def test_cn_02_05_offer_then_terminate_once_the_offer_is_acknowledged(
        client: TestClient, connector: Connector, peer: Peer) -> None:
    pid = _request(client, "ACN0205")
    with connector.db.read_only() as session:
        [held] = session.query(OutboxRow).filter(OutboxRow.process_id == pid).all()
    assert held.next_attempt_at > connector.rt.clock()  # paced: the TCK expects the offer only a moment later
    _deliver_all(connector)
    assert peer.paths() == ["/negotiations/urn:tck:ACN0205/offers", "/negotiations/urn:tck:ACN0205/termination"]
    assert peer.received[0][1]["offer"]["@id"] == "CD123:ACN0205:456"
    assert _negotiation(connector, pid).state == "TERMINATED"


def test_cn_03_03_an_accepted_offer_is_held_and_verification_in_accepted_is_refused(
        client: TestClient, connector: Connector, peer: Peer) -> None:
    pid = _request(client, "ACN0303")
    _deliver_all(connector)
    pids = {"@context": DSP, "providerPid": pid, "consumerPid": "urn:tck:ACN0303"}
    accepted = client.post(f"/api/dsp/2025-1/negotiations/{pid}/events",
                           json={**pids, "@type": "ContractNegotiationEventMessage", "eventType": "ACCEPTED"})
    assert accepted.status_code == 200
    _deliver_all(connector)
    assert peer.paths() == ["/negotiations/urn:tck:ACN0303/offers"]  # no agreement: the scenario holds
    verification = client.post(f"/api/dsp/2025-1/negotiations/{pid}/agreement/verification",
                               json={**pids, "@type": "ContractAgreementVerificationMessage"})
    assert verification.status_code == 400
    assert _negotiation(connector, pid).state == "ACCEPTED"


def test_tp_01_04_start_suspend_resume_complete_each_after_the_previous_ack(
        client: TestClient, connector: Connector, peer: Peer) -> None:
    answer = client.post("/api/dsp/2025-1/transfers/request", json={
        "@context": DSP, "@type": "TransferRequestMessage", "consumerPid": "urn:tck:tp", "agreementId": "ATP0104",
        "format": "HttpData-PULL", "callbackAddress": CALLBACK})
    assert answer.status_code == 201, answer.text
    _deliver_all(connector)
    assert [p.rsplit("/", 1)[1] for p in peer.paths()] == ["start", "suspension", "start", "completion"]
    assert _transfer(connector, answer.json()["providerPid"]).state == "COMPLETED"


# -- CUT as consumer ------------------------------------------------------------------------------------------------
def _hook_negotiation(client: TestClient, dataset: str) -> str:
    answer = client.post("/tck/negotiations/requests", json={
        "providerId": TCK, "offerId": f"offer{dataset}", "datasetId": dataset, "connectorAddress": CALLBACK})
    assert answer.status_code == 200, answer.text
    return answer.json()["@id"]


def test_the_negotiation_hook_requests_the_tcks_offer_unchanged_and_accepts_an_empty_2xx(
        client: TestClient, connector: Connector, peer: Peer) -> None:
    pid = _hook_negotiation(client, "ACNC0201")
    _deliver_all(connector)  # the peer answers 200 with no body, as the TCK does
    [(path, body)] = peer.received
    assert path == "/negotiations/request"
    assert body["offer"]["@id"] == "offerACNC0201" and body["offer"]["target"] == "ACNC0201"
    assert body["callbackAddress"] == connector.settings.dsp_url
    assert _negotiation(connector, pid).state == "REQUESTED"


def test_cn_c_03_06_an_agreement_is_not_verified_when_the_scenario_holds(
        client: TestClient, connector: Connector, peer: Peer) -> None:
    pid = _hook_negotiation(client, "ACNC0306")
    _deliver_all(connector)
    pids = {"@context": DSP, "providerPid": "urn:tck:p", "consumerPid": pid}
    offer = {"@id": "offerACNC0306", "@type": "Offer", "target": "ACNC0306", "permission": [{"action": "use"}],
             "assigner": TCK, "assignee": connector.settings.participant_id}
    assert client.post(f"/api/dsp/2025-1/negotiations/{pid}/offers",
                       json={**pids, "@type": "ContractOfferMessage", "offer": offer}).status_code == 200
    _deliver_all(connector)
    agreement = {"@id": "urn:tck:agreement", "@type": "Agreement", "target": "ACNC0306", "assigner": TCK,
                 "assignee": connector.settings.participant_id, "timestamp": "2026-01-01T00:00:00Z",
                 "permission": [{"action": "use"}]}
    assert client.post(f"/api/dsp/2025-1/negotiations/{pid}/agreement",
                       json={**pids, "@type": "ContractAgreementMessage", "agreement": agreement}).status_code == 200
    _deliver_all(connector)
    assert peer.paths() == ["/negotiations/request", "/negotiations/urn:tck:p/events"]  # ACCEPTED, no verification
    assert _negotiation(connector, pid).state == "AGREED"


def test_tp_c_02_03_suspend_on_start_then_terminate_after_the_suspension_ack(
        client: TestClient, connector: Connector, peer: Peer) -> None:
    answer = client.post("/tck/transfers/requests", json={
        "providerId": TCK, "agreementId": "ATPC0203", "format": "HttpData-PULL", "connectorAddress": CALLBACK})
    assert answer.status_code == 200, answer.text
    pid = answer.json()["@id"]
    peer.answers.append((200, {"@context": DSP, "@type": "TransferProcess", "providerPid": "urn:tck:tp",
                               "consumerPid": pid, "state": "REQUESTED"}))
    _deliver_all(connector)
    assert "dataAddress" not in peer.received[0][1]  # a pull request carries no data address
    start = {"@context": DSP, "@type": "TransferStartMessage", "providerPid": "urn:tck:tp", "consumerPid": pid,
             "dataAddress": {"@type": "DataAddress", "endpoint": "http://example.com",
                             "endpointType": "https://w3id.org/idsa/v4.1/HTTP"}}
    assert client.post(f"/api/dsp/2025-1/transfers/{pid}/start", json=start).status_code == 200
    _deliver_all(connector)
    assert peer.paths()[1:] == ["/transfers/urn:tck:tp/suspension", "/transfers/urn:tck:tp/termination"]
    assert _transfer(connector, pid).state == "TERMINATED"


# -- the default is unchanged ---------------------------------------------------------------------------------------
def test_without_a_script_a_consumer_still_verifies_an_agreement(database_url: str, tmp_path: Path,
                                                                  peer: Peer) -> None:
    connector = Connector(_settings(database_url, tmp_path, tck=False), transport=httpx.MockTransport(peer))
    upgrade(connector.db.engine)
    try:
        with connector.db.unit_of_work() as uow:
            pid = negotiations.initiate(uow, connector.rt, counter_party_address=CALLBACK, counter_party_id=TCK,
                                        offer={"@id": "CD1:a:1", "target": "a", "permission": [{"action": "use"}]}).id
        peer.answers.append((201, {"providerPid": "urn:p"}))
        _deliver_all(connector)
        with connector.db.unit_of_work() as uow:
            negotiations.consumer_on_agreement(uow, connector.rt, participant_id=TCK, pid=pid, message={
                "providerPid": "urn:p", "consumerPid": pid,
                "agreement": {"@id": "urn:a", "target": "a", "assigner": TCK, "permission": [{"action": "use"}],
                              "timestamp": "2026-01-01T00:00:00Z"}})
        _deliver_all(connector)
        assert peer.paths()[-1] == "/negotiations/urn:p/agreement/verification"
    finally:
        connector.db.dispose()
