"""Every management route requires the X-Api-Key header, checked before the body is read."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

ROUTES = [
    ("GET", "/api/management/v3/assets/any"),
    ("POST", "/api/management/v3/assets/request"),
    ("POST", "/api/management/v3/policydefinitions"),
    ("POST", "/api/management/v3/contractnegotiations/request"),
    ("GET", "/api/management/v3/transferprocesses/some-id"),
    ("POST", "/api/management/v3/catalog/request"),
    ("GET", "/api/management/v3/edrs/some-id/dataaddress"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_request_without_api_key_is_refused_with_edc_error_shape(client: TestClient, method: str,
                                                                  path: str) -> None:
    response = client.request(method, path, headers={"X-Api-Key": ""}, content=b"not even json")
    assert response.status_code == 401
    [error] = response.json()
    assert error["type"] == "unauthorized"
    assert "X-Api-Key" in error["message"]
    assert set(error) == {"message", "type", "path", "invalidValue"}


def test_wrong_api_key_is_refused(client: TestClient) -> None:
    response = client.post("/api/management/v3/assets/request", json={}, headers={"X-Api-Key": "test-key-124"})
    assert response.status_code == 401


def test_missing_header_is_refused(client: TestClient) -> None:
    del client.headers["X-Api-Key"]
    assert client.post("/api/management/v3/assets/request", json={}).status_code == 401


def test_right_api_key_is_accepted(client: TestClient) -> None:
    response = client.post("/api/management/v3/assets/request", json={})
    assert response.status_code == 200
    assert response.json() == []


def test_openapi_documents_the_management_routes_and_the_api_key(client: TestClient) -> None:
    spec = client.get("/api/management/openapi.json").json()
    paths = spec["paths"]
    assert "post" in paths["/api/management/v3/assets"]
    assert paths["/api/management/v3/assets"]["post"]["summary"] == "Create an asset"
    body_schema = paths["/api/management/v3/assets"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "dataAddress" in body_schema["required"]
    assert "/api/management/v3/contractnegotiations/{negotiation_id}/approve" in paths
    assert "/api/management/v3/edrs/{transfer_id}/dataaddress" in paths
    schemes = spec["components"]["securitySchemes"]
    assert any(s.get("name") == "X-Api-Key" and s.get("in") == "header" for s in schemes.values())
