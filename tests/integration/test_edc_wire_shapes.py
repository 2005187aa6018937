"""DSP messages exactly as Eclipse EDC 0.14 sends them (captured from the interop peer) are understood.

EDC adds its own context `https://w3id.org/edc/dspace/v0.0.1` after the DSP context, puts a paging QuerySpec
into every catalog request's `filter`, uses bare UUIDs as process ids, and authenticates with its iam-mock JSON
token. tests/interop/test_edc.py runs the real thing; these pin each shape without a JVM.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from connector.container import Connector
from connector.dataplane.public_api import pull_data_address
from connector.http.app import create_app
from connector.http.management.representations import edr_data_address
from connector.settings import Settings

API_KEY = "test-key-123"
EDC_CONTEXT = ["https://w3id.org/dspace/2025/1/context.jsonld", "https://w3id.org/edc/dspace/v0.0.1"]
DSP = "/api/dsp/2025-1"


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(port=18181, dev=True, api_key=API_KEY, database_url=database_url, data_dir=tmp_path / "data",
                        identity="iam-mock", static_peer_id="edc-peer").with_defaults().validate()
    with TestClient(create_app(Connector(settings)), base_url="http://localhost:18181",
                    headers={"X-Api-Key": API_KEY}) as test_client:
        yield test_client


def edc_token(audience: str = "http://localhost:18181" + DSP) -> dict[str, str]:
    return {"Authorization": json.dumps({"region": "eu", "audience": audience, "clientId": "edc-peer"})}


def publish(client: TestClient, tmp_path: Path) -> None:
    path = tmp_path / "data" / "files" / "a.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"a")
    for route, body in (
        ("/v3/assets", {"@id": "asset-1", "dataAddress": {"type": "File", "path": str(path)}}),
        ("/v3/policydefinitions", {"@id": "p", "policy": {"@type": "Set", "permission": [{"action": "use"}]}}),
        ("/v3/contractdefinitions", {"@id": "cd", "accessPolicyId": "p", "contractPolicyId": "p",
                                     "assetsSelector": [], "autoAgree": False}),
    ):
        assert client.post("/api/management" + route, json=body).status_code < 300


def catalog_request(filter_: list[object]) -> dict[str, object]:
    return {"@type": "CatalogRequestMessage", "filter": filter_, "@context": EDC_CONTEXT}


def test_edc_catalog_request_with_its_context_and_paging_query_spec_gets_the_catalog(
        client: TestClient, tmp_path: Path) -> None:
    publish(client, tmp_path)
    paging = {"@type": "QuerySpec", "limit": 50, "offset": 0, "sortOrder": "ASC", "filterExpression": []}

    response = client.post(DSP + "/catalog/request", json=catalog_request([paging]), headers=edc_token())

    assert response.status_code == 200, response.text
    assert [dataset["@id"] for dataset in response.json()["dataset"]] == ["asset-1"]


def test_a_query_spec_with_filter_expressions_is_still_refused(client: TestClient) -> None:
    restricting = {"@type": "QuerySpec", "filterExpression": [
        {"@type": "Criterion", "operandLeft": "id", "operator": "=", "operandRight": "asset-1"}]}

    response = client.post(DSP + "/catalog/request", json=catalog_request([restricting]), headers=edc_token())

    assert response.status_code == 400
    assert response.json()["code"] == "filter.unsupported"


def test_edc_contract_request_with_bare_uuid_pids_and_its_context_is_accepted(
        client: TestClient, tmp_path: Path) -> None:
    publish(client, tmp_path)
    catalog = client.post(DSP + "/catalog/request", json=catalog_request([]), headers=edc_token()).json()
    offer = catalog["dataset"][0]["hasPolicy"][0]
    message = {
        "@id": "40703eac-79ad-4747-bfd5-8b8c6d0f40e1", "@type": "ContractRequestMessage",
        "consumerPid": "2d0cc5b0-8e9d-44ae-a5af-44068e71d01d", "callbackAddress": "http://localhost:19193/protocol/2025-1",
        "offer": {**offer, "assigner": catalog["participantId"], "target": "asset-1"}, "@context": EDC_CONTEXT}

    response = client.post(DSP + "/negotiations/request", json=message, headers=edc_token())

    assert response.status_code == 201, response.text
    assert response.json()["consumerPid"] == "2d0cc5b0-8e9d-44ae-a5af-44068e71d01d"


def test_an_iam_mock_token_for_another_connector_is_refused(client: TestClient) -> None:
    response = client.post(DSP + "/catalog/request", json=catalog_request([]),
                           headers=edc_token(audience="http://localhost:9999/api/dsp/2025-1"))

    assert response.status_code == 401


# --- DataAddress shapes ------------------------------------------------------------------------------------------

EDC_NS = "https://w3id.org/edc/v0.0.1/ns/"
# The DataAddress of an EDC 0.14 provider's TransferStartMessage for HttpData-PULL, as Sovra stores it (captured
# from the interop run; token shortened): no top-level `endpoint`, every value an EDC-named endpoint property.
EDC_PROVIDER_ADDRESS = {
    "@type": "DataAddress", "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
    "endpointProperties": [
        {"@type": "EndpointProperty", "name": EDC_NS + "endpoint", "value": "http://localhost:42039/public"},
        {"@type": "EndpointProperty", "name": EDC_NS + "authType", "value": "bearer"},
        {"@type": "EndpointProperty", "name": EDC_NS + "endpointType", "value": "https://w3id.org/idsa/v4.1/HTTP"},
        {"@type": "EndpointProperty", "name": EDC_NS + "authorization", "value": "eyJraWQi.eyJpc3Mi.SpKUE8p1"},
    ],
}


def test_an_edc_providers_pull_address_gives_our_edr_its_endpoint_and_token() -> None:
    flat = edr_data_address(EDC_PROVIDER_ADDRESS)

    assert flat["endpoint"] == "http://localhost:42039/public"
    assert flat["authorization"] == "eyJraWQi.eyJpc3Mi.SpKUE8p1"


def test_our_pull_address_carries_what_edc_reads() -> None:
    """EDC keeps endpoint property names as keys and drops those that are not IRIs (and ignores `endpoint`)."""
    address = pull_data_address("http://localhost:1/api/public", "tok")
    as_edc_reads = {p["name"]: p["value"] for p in address["endpointProperties"] if "://" in p["name"]}

    assert as_edc_reads[EDC_NS + "endpoint"] == "http://localhost:1/api/public"
    assert as_edc_reads[EDC_NS + "authorization"] == "tok"
    assert as_edc_reads[EDC_NS + "endpointType"] == "https://w3id.org/idsa/v4.1/HTTP"
    # and the DSP 2025-1 shape is still there for everyone else
    assert address["endpoint"] == "http://localhost:1/api/public"
    assert {"@type": "EndpointProperty", "name": "authorization", "value": "tok"} in address["endpointProperties"]
