"""/v3/catalog: DSP catalog requests to a provider, paging over its Link headers, version discovery, errors.

The provider is a fake DspClient that answers from a table, so these tests see exactly which DSP requests the
management API sends and what it makes of the answers.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from connector.container import Connector
from connector.dsp.client import PeerRejectedError, PeerResponse, PeerUnavailableError

CATALOG = "/api/management/v3/catalog/request"
DATASET = "/api/management/v3/catalog/dataset/request"
DSP = "https://provider.example/api/dsp/2025-1"
DSP_CONTEXT = ["https://w3id.org/dspace/2025/1/context.jsonld"]
PROVIDER_DID = "did:web:provider.example"


def dataset(dataset_id: str) -> dict[str, Any]:
    return {"@id": dataset_id, "@type": "Dataset",
            "hasPolicy": [{"@id": f"cd:{dataset_id}:0", "@type": "Offer", "permission": [{"action": "use"}]}],
            "distribution": [{"@type": "Distribution", "format": "HttpData-PULL", "accessService": "svc"}]}


def catalog_page(*ids: str) -> dict[str, Any]:
    return {"@context": DSP_CONTEXT, "@id": "cat", "@type": "Catalog", "participantId": PROVIDER_DID,
            "dataset": [dataset(i) for i in ids]}


class FakePeer:
    """Answers (method, url) from a table; an Exception in the table is raised. Records every call."""

    def __init__(self, answers: dict[tuple[str, str], Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str, dict[str, Any] | None, str]] = []

    def _answer(self, method: str, url: str) -> PeerResponse:
        answer = self.answers[(method, url)]
        if isinstance(answer, Exception):
            raise answer
        body, links = answer if isinstance(answer, tuple) else (answer, None)
        return PeerResponse(200, body, httpx.Headers({"Link": links} if links else {}))

    def post(self, url: str, body: dict[str, Any], *, audience: str) -> PeerResponse:
        self.calls.append(("POST", url, body, audience))
        return self._answer("POST", url)

    def get(self, url: str, *, audience: str, params: dict[str, str] | None = None) -> PeerResponse:
        self.calls.append(("GET", url, None, audience))
        return self._answer("GET", url)


@pytest.fixture
def install(connector: Connector):  # type: ignore[no-untyped-def]
    def put(answers: dict[tuple[str, str], Any]) -> FakePeer:
        peer = FakePeer(answers)
        connector.dsp_client = peer  # type: ignore[assignment]
        return peer
    return put


def test_catalog_request_sends_a_dsp_catalog_request_and_returns_the_catalog(client: TestClient, install) -> None:
    peer = install({("POST", f"{DSP}/catalog/request"): catalog_page("a", "b")})
    response = client.post(CATALOG, json={"@context": {"@vocab": "https://w3id.org/edc/v0.0.1/ns/"},
                                          "@type": "CatalogRequest", "counterPartyAddress": DSP,
                                          "protocol": "dataspace-protocol-http:2025-1"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@type"] == "Catalog"
    assert body["@context"] == DSP_CONTEXT
    assert [d["@id"] for d in body["dataset"]] == ["a", "b"]
    assert body["dataset"][0]["hasPolicy"][0]["@id"] == "cd:a:0"
    [(method, url, message, audience)] = peer.calls
    assert (method, url, audience) == ("POST", f"{DSP}/catalog/request", PROVIDER_DID)
    assert message == {"@context": DSP_CONTEXT, "@type": "CatalogRequestMessage"}


def test_explicit_counter_party_id_is_the_token_audience(client: TestClient, install) -> None:
    peer = install({("POST", f"{DSP}/catalog/request"): catalog_page()})
    client.post(CATALOG, json={"counterPartyAddress": DSP, "counterPartyId": "did:web:other.example"})
    assert peer.calls[0][3] == "did:web:other.example"


def test_empty_catalog_still_lists_datasets(client: TestClient, install) -> None:
    empty = {"@context": DSP_CONTEXT, "@id": "cat", "@type": "Catalog", "participantId": PROVIDER_DID}
    install({("POST", f"{DSP}/catalog/request"): empty})
    assert client.post(CATALOG, json={"counterPartyAddress": DSP}).json()["dataset"] == []


def test_query_spec_pages_across_the_providers_link_headers(client: TestClient, install) -> None:
    page2 = f"{DSP}/catalog/request?continuationToken=t2"
    page3 = f"{DSP}/catalog/request?continuationToken=t3"
    peer = install({
        ("POST", f"{DSP}/catalog/request"): (catalog_page("a", "b"), f'<{page2}>; rel="next"'),
        ("POST", page2): (catalog_page("c", "d"), f'<{page3}>; rel="next", <{DSP}/catalog/request>; rel="previous"'),
        ("POST", page3): catalog_page("e"),
    })
    body = client.post(CATALOG, json={"counterPartyAddress": DSP, "querySpec": {"offset": 1, "limit": 2}}).json()
    assert [d["@id"] for d in body["dataset"]] == ["b", "c"]
    assert [call[1] for call in peer.calls] == [f"{DSP}/catalog/request", page2]  # stops once it has enough
    body = client.post(CATALOG, json={"counterPartyAddress": DSP, "querySpec": {"limit": 50}}).json()
    assert [d["@id"] for d in body["dataset"]] == ["a", "b", "c", "d", "e"]


def test_next_link_to_another_origin_is_not_followed(client: TestClient, install) -> None:
    peer = install({("POST", f"{DSP}/catalog/request"): (catalog_page("a"),
                                                         '<https://evil.example/steal>; rel="next"')})
    body = client.post(CATALOG, json={"counterPartyAddress": DSP}).json()
    assert [d["@id"] for d in body["dataset"]] == ["a"]
    assert len(peer.calls) == 1


def test_address_without_version_is_completed_from_the_well_known_endpoint(client: TestClient, install) -> None:
    versions = {"protocolVersions": [{"version": "2024-1", "path": "/old"},
                                     {"version": "2025-1", "path": "/api/dsp/2025-1"}]}
    peer = install({("GET", "https://provider.example/.well-known/dspace-version"): versions,
                    ("POST", f"{DSP}/catalog/request"): catalog_page("a")})
    response = client.post(CATALOG, json={"counterPartyAddress": "https://provider.example/api/dsp"})
    assert response.status_code == 200, response.text
    assert [call[1] for call in peer.calls] == ["https://provider.example/.well-known/dspace-version",
                                               f"{DSP}/catalog/request"]


def test_peer_without_2025_1_is_refused_with_a_clear_reason(client: TestClient, install) -> None:
    install({("GET", "https://provider.example/.well-known/dspace-version"):
             {"protocolVersions": [{"version": "2024-1", "path": "/old"}]}})
    response = client.post(CATALOG, json={"counterPartyAddress": "https://provider.example"})
    assert response.status_code == 400
    assert "2025-1" in response.json()[0]["message"]


@pytest.mark.parametrize(("failure", "status", "code"), [
    (PeerRejectedError(f"{DSP}/catalog/request", "HTTP 401: token rejected", 401), 502, "peer.rejected"),
    (PeerUnavailableError(f"{DSP}/catalog/request", "HTTP 503", 503), 502, "peer.unavailable"),
    (PeerUnavailableError(f"{DSP}/catalog/request", "ReadTimeout: timed out"), 504, "peer.timeout"),
])
def test_peer_failures_become_gateway_errors_with_the_reason(client: TestClient, install, failure: Exception,
                                                             status: int, code: str) -> None:
    install({("POST", f"{DSP}/catalog/request"): failure})
    response = client.post(CATALOG, json={"counterPartyAddress": DSP})
    assert response.status_code == status
    [error] = response.json()
    assert error["type"] == code
    assert failure.reason in error["message"]  # type: ignore[attr-defined]


def test_answer_that_is_not_a_catalog_is_a_bad_gateway(client: TestClient, install) -> None:
    install({("POST", f"{DSP}/catalog/request"): {"@context": DSP_CONTEXT, "@type": "CatalogError"}})
    response = client.post(CATALOG, json={"counterPartyAddress": DSP})
    assert response.status_code == 502
    assert "not Catalog" in response.json()[0]["message"]


@pytest.mark.parametrize(("body", "named"), [
    ({"counterPartyAddress": "provider.example"}, "/counterPartyAddress"),
    ({}, "/counterPartyAddress"),
    ({"counterPartyAddress": DSP, "protocol": "dataspace-protocol-http:2024/1"}, "/protocol"),
    ({"counterPartyAddress": DSP, "querySpec": {"filterExpression": [
        {"operandLeft": "id", "operator": "=", "operandRight": "a"}]}}, "/querySpec/filterExpression"),
])
def test_unusable_catalog_request_is_refused_naming_the_field(client: TestClient, install, body: dict,
                                                              named: str) -> None:
    install({})
    response = client.post(CATALOG, json=body)
    assert response.status_code == 400
    assert named in response.json()[0]["message"]


def test_dataset_request_gets_one_dataset(client: TestClient, install) -> None:
    peer = install({("GET", f"{DSP}/catalog/datasets/urn%3Adataset%2F1"):
                    {"@context": DSP_CONTEXT, **dataset("urn:dataset/1")}})
    response = client.post(DATASET, json={"@type": "DatasetRequest", "@id": "urn:dataset/1",
                                          "counterPartyAddress": DSP, "counterPartyId": PROVIDER_DID})
    assert response.status_code == 200, response.text
    assert response.json()["@id"] == "urn:dataset/1"
    assert response.json()["hasPolicy"][0]["permission"] == [{"action": "use"}]
    assert peer.calls[0][3] == PROVIDER_DID
