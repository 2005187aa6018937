"""/v3/assets: create, read, update, delete and data address validation, in JSON-LD and plain JSON."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from connector.container import Connector
from connector.persistence.tables import AgreementRow

ASSETS = "/api/management/v3/assets"
EDC_CONTEXT = {"@vocab": "https://w3id.org/edc/v0.0.1/ns/", "odrl": "http://www.w3.org/ns/odrl/2/"}
HTTP_ADDRESS = {"type": "HttpData", "baseUrl": "https://upstream.example.com/data"}


def test_created_asset_reads_back_in_edc_shape(client: TestClient) -> None:
    created = client.post(ASSETS, json={"@id": "asset-1", "properties": {"name": "Weather"},
                                        "privateProperties": {"owner": "ops"}, "dataAddress": HTTP_ADDRESS})
    assert created.status_code == 200
    assert created.json()["@type"] == "IdResponse"
    assert created.json()["@id"] == "asset-1"
    assert isinstance(created.json()["createdAt"], int)

    asset = client.get(f"{ASSETS}/asset-1").json()
    assert asset["@context"]["@vocab"] == "https://w3id.org/edc/v0.0.1/ns/"
    assert asset["@type"] == "Asset"
    assert asset["properties"] == {"name": "Weather", "id": "asset-1"}
    assert asset["privateProperties"] == {"owner": "ops"}
    assert asset["dataAddress"] == {"@type": "DataAddress", **HTTP_ADDRESS}
    assert asset["createdAt"] == created.json()["createdAt"]


def test_edc_json_ld_body_and_plain_json_body_store_the_same_asset(client: TestClient) -> None:
    client.post(ASSETS, json={"@context": EDC_CONTEXT, "@id": "ld", "@type": "Asset",
                              "properties": {"name": "n", "edc:version": "1"},
                              "dataAddress": {"@type": "DataAddress", **HTTP_ADDRESS}})
    client.post(ASSETS, json={"@id": "plain", "properties": {"name": "n", "version": "1"},
                              "dataAddress": HTTP_ADDRESS})
    ld, plain = client.get(f"{ASSETS}/ld").json(), client.get(f"{ASSETS}/plain").json()
    assert ld["properties"] == {"name": "n", "version": "1", "id": "ld"}
    assert plain["properties"] == {"name": "n", "version": "1", "id": "plain"}
    assert ld["dataAddress"] == plain["dataAddress"]


def test_asset_without_id_gets_one(client: TestClient) -> None:
    created = client.post(ASSETS, json={"properties": {}, "dataAddress": HTTP_ADDRESS})
    asset_id = created.json()["@id"]
    assert asset_id
    assert client.get(f"{ASSETS}/{asset_id}").status_code == 200


def test_creating_an_existing_asset_is_a_conflict(client: TestClient) -> None:
    client.post(ASSETS, json={"@id": "dup", "dataAddress": HTTP_ADDRESS})
    again = client.post(ASSETS, json={"@id": "dup", "dataAddress": HTTP_ADDRESS})
    assert again.status_code == 409
    assert again.json()[0]["type"] == "conflict"


def test_file_asset_under_the_file_root_is_accepted(client: TestClient, connector: Connector) -> None:
    assert connector.settings.file_root is not None
    path = str(connector.settings.file_root / "report.csv")
    created = client.post(ASSETS, json={"@id": "file", "dataAddress": {"type": "File", "path": path}})
    assert created.status_code == 200


@pytest.mark.parametrize(("address", "field"), [
    ({"baseUrl": "https://x.example"}, "/dataAddress/type"),
    ({"type": "AmazonS3", "bucket": "b"}, "/dataAddress/type"),
    ({"type": "HttpData"}, "/dataAddress/baseUrl"),
    ({"type": "HttpData", "baseUrl": "ftp://x.example/file"}, "/dataAddress/baseUrl"),
    ({"type": "File"}, "/dataAddress/path"),
    ({"type": "File", "path": "relative/report.csv"}, "/dataAddress/path"),
    ({"type": "File", "path": "/etc/passwd"}, "/dataAddress/path"),
])
def test_unusable_data_address_is_refused_naming_the_field(client: TestClient, address: dict,
                                                           field: str) -> None:
    response = client.post(ASSETS, json={"@id": "bad", "dataAddress": address})
    assert response.status_code == 400
    [error] = response.json()
    assert error["type"] == "invalid.request"
    assert field in error["message"]
    assert client.get(f"{ASSETS}/bad").status_code == 404


def test_asset_without_data_address_is_refused_naming_it(client: TestClient) -> None:
    response = client.post(ASSETS, json={"@id": "bad", "properties": {}})
    assert response.status_code == 400
    assert "/dataAddress is required" in response.json()[0]["message"]


def test_update_replaces_properties_and_address(client: TestClient) -> None:
    client.post(ASSETS, json={"@id": "u", "properties": {"name": "old"}, "dataAddress": HTTP_ADDRESS})
    new_address = {"type": "HttpData", "baseUrl": "https://other.example.com"}
    updated = client.put(ASSETS, json={"@id": "u", "properties": {"name": "new"}, "dataAddress": new_address})
    assert updated.status_code == 204
    asset = client.get(f"{ASSETS}/u").json()
    assert asset["properties"]["name"] == "new"
    assert asset["dataAddress"]["baseUrl"] == "https://other.example.com"


def test_update_of_unknown_asset_is_not_found(client: TestClient) -> None:
    response = client.put(ASSETS, json={"@id": "ghost", "dataAddress": HTTP_ADDRESS})
    assert response.status_code == 404
    assert "ghost" in response.json()[0]["message"]


def test_delete_removes_the_asset(client: TestClient) -> None:
    client.post(ASSETS, json={"@id": "gone", "dataAddress": HTTP_ADDRESS})
    assert client.delete(f"{ASSETS}/gone").status_code == 204
    assert client.get(f"{ASSETS}/gone").status_code == 404
    assert client.delete(f"{ASSETS}/gone").status_code == 404


def test_asset_an_agreement_refers_to_cannot_be_deleted(client: TestClient, connector: Connector) -> None:
    client.post(ASSETS, json={"@id": "agreed", "dataAddress": HTTP_ADDRESS})
    with connector.db.unit_of_work() as uow:
        uow.add(AgreementRow(id="agreement-1", negotiation_id="n-1", role="PROVIDER", provider_id="me",
                             consumer_id="them", asset_id="agreed", policy={}, signed_at=datetime.now(UTC)))
    response = client.delete(f"{ASSETS}/agreed")
    assert response.status_code == 409
    assert "agreement-1" in response.json()[0]["message"]
    assert client.get(f"{ASSETS}/agreed").status_code == 200


def test_asset_id_with_slashes_round_trips(client: TestClient) -> None:
    client.post(ASSETS, json={"@id": "dept/weather/2024", "dataAddress": HTTP_ADDRESS})
    assert client.get(f"{ASSETS}/dept/weather/2024").json()["@id"] == "dept/weather/2024"


def test_body_that_is_not_an_object_is_refused(client: TestClient) -> None:
    assert client.post(ASSETS, json=[1, 2]).status_code == 400
    assert client.post(ASSETS, content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 400


def test_unknown_json_ld_context_is_refused_not_fetched(client: TestClient) -> None:
    response = client.post(ASSETS, json={"@context": "https://example.com/ctx.jsonld", "@id": "x",
                                         "dataAddress": HTTP_ADDRESS})
    assert response.status_code == 400
    assert "not bundled" in response.json()[0]["message"]


def test_bad_data_address_names_the_json_pointer_and_value(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/api/management/v3/assets", json={
        "@id": "pointer-check", "properties": {}, "dataAddress": {"type": "Ftp", "path": "/x"}},
        headers={"X-Api-Key": "test-key-123"})
    assert response.status_code == 400
    [error] = response.json()
    assert error["path"] and error["path"].startswith("/dataAddress")
