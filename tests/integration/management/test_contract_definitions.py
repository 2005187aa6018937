"""/v3/contractdefinitions: policies must exist, selectors must be readable, autoAgree defaults to true."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

DEFINITIONS = "/api/management/v3/contractdefinitions"
EDC_NS = "https://w3id.org/edc/v0.0.1/ns/"
EDC_CONTEXT = {"@vocab": EDC_NS}


@pytest.fixture
def policies(client: TestClient) -> None:
    for policy_id in ("access", "contract"):
        assert client.post("/api/management/v3/policydefinitions",
                           json={"@id": policy_id, "policy": {"permission": [{"action": "use"}]}}).status_code == 200


def test_definition_reads_back_with_auto_agree_on_by_default(client: TestClient, policies: None) -> None:
    body = {"@context": EDC_CONTEXT, "@id": "cd-1", "accessPolicyId": "access", "contractPolicyId": "contract",
            "assetsSelector": {"@type": "Criterion", "operandLeft": EDC_NS + "id", "operator": "=",
                               "operandRight": "asset-1"}}
    assert client.post(DEFINITIONS, json=body).status_code == 200
    definition = client.get(f"{DEFINITIONS}/cd-1").json()
    assert definition["@type"] == "ContractDefinition"
    assert definition["accessPolicyId"] == "access"
    assert definition["contractPolicyId"] == "contract"
    assert definition["assetsSelector"] == [{"@type": "Criterion", "operandLeft": EDC_NS + "id", "operator": "=",
                                             "operandRight": "asset-1"}]
    assert definition["autoAgree"] is True


def test_auto_agree_can_be_switched_off(client: TestClient, policies: None) -> None:
    client.post(DEFINITIONS, json={"@id": "manual", "accessPolicyId": "access", "contractPolicyId": "contract",
                                   "autoAgree": False})
    assert client.get(f"{DEFINITIONS}/manual").json()["autoAgree"] is False


@pytest.mark.parametrize(("access", "contract", "named"), [
    ("missing", "contract", "accessPolicyId"),
    ("access", "missing", "contractPolicyId"),
])
def test_definition_naming_a_missing_policy_is_refused_naming_which(client: TestClient, policies: None,
                                                                    access: str, contract: str,
                                                                    named: str) -> None:
    response = client.post(DEFINITIONS, json={"@id": "cd", "accessPolicyId": access, "contractPolicyId": contract})
    assert response.status_code == 400
    [error] = response.json()
    assert error["message"].startswith(f"{named} missing")
    assert client.get(f"{DEFINITIONS}/cd").status_code == 404


def test_selector_with_an_unknown_operator_is_refused(client: TestClient, policies: None) -> None:
    response = client.post(DEFINITIONS, json={
        "@id": "cd", "accessPolicyId": "access", "contractPolicyId": "contract",
        "assetsSelector": [{"operandLeft": "id", "operator": "contains", "operandRight": "x"}]})
    assert response.status_code == 400
    assert "/assetsSelector/0/operator" in response.json()[0]["message"]


def test_update_and_delete(client: TestClient, policies: None) -> None:
    client.post(DEFINITIONS, json={"@id": "cd", "accessPolicyId": "access", "contractPolicyId": "contract"})
    updated = client.put(DEFINITIONS, json={"@id": "cd", "accessPolicyId": "contract", "contractPolicyId": "access",
                                            "autoAgree": False})
    assert updated.status_code == 204
    definition = client.get(f"{DEFINITIONS}/cd").json()
    assert (definition["accessPolicyId"], definition["contractPolicyId"], definition["autoAgree"]) == (
        "contract", "access", False)
    assert client.put(DEFINITIONS, json={"@id": "cd", "accessPolicyId": "nope",
                                         "contractPolicyId": "access"}).status_code == 400
    assert client.delete(f"{DEFINITIONS}/cd").status_code == 204
    assert client.get(f"{DEFINITIONS}/cd").status_code == 404
    assert client.put(DEFINITIONS, json={"@id": "cd", "accessPolicyId": "access",
                                         "contractPolicyId": "access"}).status_code == 404
