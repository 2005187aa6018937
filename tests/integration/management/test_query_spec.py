"""QuerySpec on every list endpoint: paging, sorting, filters on columns and on JSON properties, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from connector.container import Connector
from connector.persistence.tables import NegotiationRow

ASSETS = "/api/management/v3/assets"
EDC_NS = "https://w3id.org/edc/v0.0.1/ns/"
HTTP_ADDRESS = {"type": "HttpData", "baseUrl": "https://upstream.example.com"}


@pytest.fixture
def five_assets(client: TestClient) -> None:
    for index, name in enumerate(["delta", "alpha", "echo", "charlie", "bravo"]):
        response = client.post(ASSETS, json={"@id": f"asset-{index}", "dataAddress": HTTP_ADDRESS,
                                             "properties": {"name": name, "rank": index, "tags": ["t", name]}})
        assert response.status_code == 200


def _ids(client: TestClient, spec: dict, path: str = ASSETS) -> list[str]:
    response = client.post(f"{path}/request", json=spec)
    assert response.status_code == 200, response.text
    return [entity["@id"] for entity in response.json()]


def test_empty_query_lists_everything_oldest_first(client: TestClient, five_assets: None) -> None:
    assert _ids(client, {}) == [f"asset-{i}" for i in range(5)]
    assert client.post(f"{ASSETS}/request").status_code == 200  # no body at all is the empty query


def test_offset_and_limit_page_through_sorted_ids(client: TestClient, five_assets: None) -> None:
    spec = {"sortField": "id", "sortOrder": "ASC", "limit": 2}
    assert _ids(client, {**spec, "offset": 0}) == ["asset-0", "asset-1"]
    assert _ids(client, {**spec, "offset": 2}) == ["asset-2", "asset-3"]
    assert _ids(client, {**spec, "offset": 4}) == ["asset-4"]
    assert _ids(client, {**spec, "offset": 5}) == []


def test_sort_by_a_property_descending(client: TestClient, five_assets: None) -> None:
    names = ["echo", "delta", "charlie", "bravo", "alpha"]
    by_name = {"delta": "asset-0", "alpha": "asset-1", "echo": "asset-2", "charlie": "asset-3", "bravo": "asset-4"}
    assert _ids(client, {"sortField": "name", "sortOrder": "DESC"}) == [by_name[n] for n in names]
    assert _ids(client, {"sortField": "name", "sortOrder": "DESC", "offset": 1, "limit": 2}) == [
        by_name["delta"], by_name["charlie"]]


def test_filters_on_id_and_on_properties(client: TestClient, five_assets: None) -> None:
    def where(*criteria: tuple) -> list[str]:
        spec = {"filterExpression": [{"operandLeft": left, "operator": op, "operandRight": right}
                                     for left, op, right in criteria],
                "sortField": "id"}
        return _ids(client, spec)

    assert where((EDC_NS + "id", "=", "asset-3")) == ["asset-3"]
    assert where(("id", "in", ["asset-1", "asset-4", "nope"])) == ["asset-1", "asset-4"]
    assert where(("id", "!=", "asset-0"), ("id", "like", "asset-%"), ("id", "<", "asset-3")) == [
        "asset-1", "asset-2"]
    assert where(("name", "=", "echo")) == ["asset-2"]
    assert where((EDC_NS + "name", "like", "%HARL%")) == ["asset-3"]
    assert where(("rank", ">=", 3)) == ["asset-3", "asset-4"]
    assert where(("properties.tags", "=", "bravo")) == ["asset-4"]
    assert where(("dataAddress.type", "=", "HttpData"), ("rank", "<", 1)) == ["asset-0"]
    assert where(("missing", "=", "x")) == []


def test_property_filter_with_paging_skips_only_matching_rows(client: TestClient, five_assets: None) -> None:
    spec = {"filterExpression": [{"operandLeft": "rank", "operator": ">", "operandRight": 0}],
            "sortField": "id", "offset": 1, "limit": 2}
    assert _ids(client, spec) == ["asset-2", "asset-3"]


def test_single_criterion_object_in_json_ld_is_accepted(client: TestClient, five_assets: None) -> None:
    spec = {"@context": {"@vocab": EDC_NS}, "@type": "QuerySpec",
            "filterExpression": {"operandLeft": "name", "operator": "=", "operandRight": "alpha"}}
    assert _ids(client, spec) == ["asset-1"]


@pytest.mark.parametrize(("spec", "named"), [
    ({"filterExpression": [{"operandLeft": "id", "operator": "contains", "operandRight": "x"}]},
     "/filterExpression/0/operator"),
    ({"filterExpression": [{"operator": "=", "operandRight": "x"}]}, "/filterExpression/0/operandLeft"),
    ({"limit": 1001}, "/limit"),
    ({"limit": 0}, "/limit"),
    ({"offset": -1}, "/offset"),
    ({"sortOrder": "UP"}, "/sortOrder"),
    ({"filterExpression": [{"operandLeft": "createdAt", "operator": ">", "operandRight": "yesterday"}]},
     "/filterExpression/0/operandRight"),
])
def test_bad_query_spec_is_refused_naming_the_field(client: TestClient, spec: dict, named: str) -> None:
    response = client.post(f"{ASSETS}/request", json=spec)
    assert response.status_code == 400
    assert named in response.json()[0]["message"]


def test_unknown_field_is_refused_naming_it(client: TestClient) -> None:
    spec = {"filterExpression": [{"operandLeft": "colour", "operator": "=", "operandRight": "red"}]}
    response = client.post("/api/management/v3/policydefinitions/request", json=spec)
    assert response.status_code == 400
    assert "'colour'" in response.json()[0]["message"]
    response = client.post("/api/management/v3/contractnegotiations/request", json={"sortField": "colour"})
    assert response.status_code == 400
    assert "/sortField" in response.json()[0]["message"]


def test_negotiations_filter_by_state_type_and_time(client: TestClient, connector: Connector) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with connector.db.unit_of_work() as uow:
        for index, (role, state) in enumerate([("CONSUMER", "FINALIZED"), ("PROVIDER", "FINALIZED"),
                                               ("CONSUMER", "REQUESTED")]):
            moment = start + timedelta(minutes=index)
            uow.add(NegotiationRow(
                id=f"n-{index}", role=role, state=state, consumer_pid=f"c-{index}", provider_pid=f"p-{index}",
                counter_party_id="did:web:peer", counter_party_address="https://peer/api/dsp/2025-1",
                asset_id="a", offer={}, offer_by=role, created_at=moment, updated_at=moment))
    path = "/api/management/v3/contractnegotiations"

    def where(*criteria: tuple) -> list[str]:
        spec = {"filterExpression": [{"operandLeft": left, "operator": op, "operandRight": right}
                                     for left, op, right in criteria]}
        return _ids(client, spec, path)

    assert where(("state", "=", "FINALIZED")) == ["n-0", "n-1"]
    assert where(("state", "=", "FINALIZED"), ("type", "=", "CONSUMER")) == ["n-0"]
    assert where(("correlationId", "=", "c-1")) == ["n-1"]  # a provider's correlation id is the consumerPid
    assert where(("createdAt", ">", int((start + timedelta(seconds=30)).timestamp() * 1000))) == ["n-1", "n-2"]
    assert where(("createdAt", "<=", "2026-01-01T00:01:00Z")) == ["n-0", "n-1"]
    assert _ids(client, {"sortField": "createdAt", "sortOrder": "DESC", "limit": 1}, path) == ["n-2"]
