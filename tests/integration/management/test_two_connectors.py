"""Two connectors in one process, driven only through their management APIs: catalog, negotiation, pull.

DSP traffic between them goes through an httpx transport that hands each request to the other app's
TestClient, so every DSP endpoint, the outbox and the public data plane run for real (on SQLite; both sides use
static identity, since did:web resolution would need real hosts).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from connector.container import Connector
from connector.http.app import create_app
from connector.settings import Settings

API_KEY = "test-key-123"
TOKEN = "shared-static-token"
PROVIDER_PORT, CONSUMER_PORT = 18281, 18282
PROVIDER_DID, CONSUMER_DID = f"did:web:localhost%3A{PROVIDER_PORT}", f"did:web:localhost%3A{CONSUMER_PORT}"
M = "/api/management/v3"


class Bridge(httpx.BaseTransport):
    """Deliver each outgoing request to the in-process app listening on its host:port."""

    def __init__(self) -> None:
        self.apps: dict[str, TestClient] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        app = self.apps[request.url.netloc.decode()]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        answer = app.request(request.method, request.url.raw_path.decode(), headers=headers,
                             content=request.read())
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


def _connector(tmp_path: Path, name: str, port: int, peer_did: str, bridge: Bridge) -> Connector:
    settings = Settings(port=port, dev=True, api_key=API_KEY, data_dir=tmp_path / name,
                        database_url=f"sqlite:///{tmp_path / name}.db", identity="static", static_token=TOKEN,
                        static_peer_id=peer_did).with_defaults().validate()
    return Connector(settings, transport=bridge)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient, Connector]]:
    bridge = Bridge()
    provider = _connector(tmp_path, "provider", PROVIDER_PORT, CONSUMER_DID, bridge)
    consumer = _connector(tmp_path, "consumer", CONSUMER_PORT, PROVIDER_DID, bridge)
    with TestClient(create_app(provider), base_url=f"http://localhost:{PROVIDER_PORT}") as provider_app, \
            TestClient(create_app(consumer), base_url=f"http://localhost:{CONSUMER_PORT}") as consumer_app:
        bridge.apps.update({f"localhost:{PROVIDER_PORT}": provider_app, f"localhost:{CONSUMER_PORT}": consumer_app})
        yield provider_app, consumer_app, provider


def _call(app: TestClient, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    response = app.request(method, M + path, json=body, headers={"X-Api-Key": API_KEY})
    assert response.status_code in (200, 204), f"{method} {path}: {response.status_code} {response.text}"
    return response.json() if response.content else None


def _wait_for(read: Callable[[], dict[str, Any]], state: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        current = read()
        if current["state"] == state or time.monotonic() > deadline:
            assert current["state"] == state, current
            return current
        time.sleep(0.05)


def test_consumer_finds_negotiates_and_pulls_through_management_apis(pair) -> None:
    provider_app, consumer_app, provider = pair
    assert provider.settings.file_root is not None
    (provider.settings.file_root / "weather.csv").write_text("day,temp\nmon,21\n")
    edc = {"@vocab": "https://w3id.org/edc/v0.0.1/ns/", "odrl": "http://www.w3.org/ns/odrl/2/"}
    _call(provider_app, "POST", "/assets", {"@context": edc, "@id": "weather", "properties": {"name": "Weather"},
                                            "dataAddress": {"type": "File",
                                                            "path": str(provider.settings.file_root / "weather.csv")}})
    _call(provider_app, "POST", "/policydefinitions", {"@context": edc, "@id": "open", "policy": {
        "@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Set", "permission": [{"action": "use"}]}})
    _call(provider_app, "POST", "/contractdefinitions", {"@context": edc, "@id": "cd", "accessPolicyId": "open",
                                                         "contractPolicyId": "open", "assetsSelector": []})

    provider_dsp = f"http://localhost:{PROVIDER_PORT}/api/dsp/2025-1"
    catalog = _call(consumer_app, "POST", "/catalog/request", {"@context": edc, "counterPartyAddress": provider_dsp,
                                                               "protocol": "dataspace-protocol-http:2025-1"})
    [dataset] = catalog["dataset"]
    offer = dataset["hasPolicy"][0]

    started = _call(consumer_app, "POST", "/contractnegotiations", {
        "@context": edc, "@type": "ContractRequest", "counterPartyAddress": provider_dsp,
        "protocol": "dataspace-protocol-http:2025-1",
        "policy": {**offer, "assigner": catalog["participantId"], "target": dataset["@id"]}})
    negotiation = _wait_for(lambda: _call(consumer_app, "GET", f"/contractnegotiations/{started['@id']}"),
                            "FINALIZED")
    agreement_id = negotiation["contractAgreementId"]
    assert _call(consumer_app, "GET", f"/contractagreements/{agreement_id}")["assetId"] == "weather"
    [provider_side] = _call(provider_app, "POST", "/contractnegotiations/request", {})
    assert provider_side["type"] == "PROVIDER"
    assert provider_side["correlationId"] == started["@id"]

    transfer = _call(consumer_app, "POST", "/transferprocesses", {
        "@context": edc, "counterPartyAddress": provider_dsp, "contractId": agreement_id,
        "transferType": "HttpData-PULL", "protocol": "dataspace-protocol-http:2025-1"})
    _wait_for(lambda: _call(consumer_app, "GET", f"/transferprocesses/{transfer['@id']}"), "STARTED")
    address = _call(consumer_app, "GET", f"/edrs/{transfer['@id']}/dataaddress")
    assert address["endpoint"].startswith(f"http://localhost:{PROVIDER_PORT}/api/public")

    pulled = provider_app.get(httpx.URL(address["endpoint"]).raw_path.decode(),
                              headers={"Authorization": address["authorization"]})
    assert pulled.status_code == 200
    assert pulled.text == "day,temp\nmon,21\n"


def test_provider_answers_a_consumer_resume_of_a_pull_with_a_fresh_start(pair) -> None:
    """Eclipse EDC's consumer waits (RESUMED) for the provider's start after it resumes; ours must send one."""
    provider_app, consumer_app, provider = pair
    assert provider.settings.file_root is not None
    (provider.settings.file_root / "r.txt").write_text("resumable\n")
    _call(provider_app, "POST", "/assets", {"@id": "r", "dataAddress": {
        "type": "File", "path": str(provider.settings.file_root / "r.txt")}})
    _call(provider_app, "POST", "/policydefinitions", {"@id": "open", "policy": {
        "@type": "Set", "permission": [{"action": "use"}]}})
    _call(provider_app, "POST", "/contractdefinitions", {"@id": "cd", "accessPolicyId": "open",
                                                         "contractPolicyId": "open", "assetsSelector": []})
    provider_dsp = f"http://localhost:{PROVIDER_PORT}/api/dsp/2025-1"
    catalog = _call(consumer_app, "POST", "/catalog/request", {"counterPartyAddress": provider_dsp})
    [dataset] = catalog["dataset"]
    started = _call(consumer_app, "POST", "/contractnegotiations", {"counterPartyAddress": provider_dsp, "policy": {
        **dataset["hasPolicy"][0], "assigner": catalog["participantId"], "target": "r"}})
    agreement_id = _wait_for(lambda: _call(consumer_app, "GET", f"/contractnegotiations/{started['@id']}"),
                             "FINALIZED")["contractAgreementId"]
    transfer = _call(consumer_app, "POST", "/transferprocesses", {
        "counterPartyAddress": provider_dsp, "contractId": agreement_id, "transferType": "HttpData-PULL"})
    path = f"/transferprocesses/{transfer['@id']}"
    _wait_for(lambda: _call(consumer_app, "GET", path), "STARTED")
    first = _call(consumer_app, "GET", f"/edrs/{transfer['@id']}/dataaddress")["authorization"]

    _call(consumer_app, "POST", f"{path}/suspend", {"reason": "pause"})
    _wait_for(lambda: _call(consumer_app, "GET", path), "SUSPENDED")
    _call(consumer_app, "POST", f"{path}/resume", {})
    [provider_side] = _call(provider_app, "POST", "/transferprocesses/request", {})

    def provider_starts() -> list[str]:
        events = _call(provider_app, "GET", f"/transferprocesses/{provider_side['@id']}/events")
        return [e["direction"] for e in events if e["message"] == "TransferStartMessage"]

    deadline = time.monotonic() + 20
    while provider_starts() != ["out", "in", "out"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert provider_starts() == ["out", "in", "out"]
    _wait_for(lambda: _call(consumer_app, "GET", path), "STARTED")
    fresh = _call(consumer_app, "GET", f"/edrs/{transfer['@id']}/dataaddress")["authorization"]
    assert fresh != first
    pulled = provider_app.get("/api/public", headers={"Authorization": fresh})
    assert pulled.status_code == 200
    assert pulled.text == "resumable\n"
