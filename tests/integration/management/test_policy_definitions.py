"""/v3/policydefinitions: any JSON-LD spelling of an ODRL policy is stored in DSP 2025-1 compact shape."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from connector.protocol.errors import JsonLdError
from connector.protocol.jsonld import DSP_CONTEXT, DSP_ODRL_CONTEXT, to_dsp_shape

POLICIES = "/api/management/v3/policydefinitions"
EDC_CONTEXT = {"@vocab": "https://w3id.org/edc/v0.0.1/ns/", "odrl": "http://www.w3.org/ns/odrl/2/"}
OPEN = {"permission": [{"action": "use"}]}
COMPACT_POLICY = {"@type": "Set", "permission": [{"action": "use", "constraint": [
    {"leftOperand": "dateTime", "operator": "lt", "rightOperand": "2030-01-01T00:00:00Z"}]}]}


def _stored_policy(client: TestClient, definition_id: str) -> dict:
    response = client.get(f"{POLICIES}/{definition_id}")
    assert response.status_code == 200
    assert response.json()["@type"] == "PolicyDefinition"
    return response.json()["policy"]


def test_edc_json_ld_policy_comes_back_in_dsp_compact_shape(client: TestClient) -> None:
    body = {"@context": EDC_CONTEXT, "@id": "p-ld", "policy": {
        "@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Set",
        "permission": [{"action": "use", "constraint": [
            {"leftOperand": "dateTime", "operator": "lt", "rightOperand": "2030-01-01T00:00:00Z"}]}]}}
    created = client.post(POLICIES, json=body)
    assert created.status_code == 200
    assert created.json()["@id"] == "p-ld"
    assert _stored_policy(client, "p-ld") == COMPACT_POLICY


def test_odrl_prefixed_policy_under_edc_vocab_comes_back_unprefixed(client: TestClient) -> None:
    body = {"@context": EDC_CONTEXT, "@id": "p-prefixed", "policy": {
        "@type": "odrl:Set",
        "odrl:permission": {"odrl:action": {"@id": "odrl:use"}, "odrl:constraint": {
            "odrl:leftOperand": "dateTime", "odrl:operator": {"@id": "odrl:lt"},
            "odrl:rightOperand": "2030-01-01T00:00:00Z"}}}}
    assert client.post(POLICIES, json=body).status_code == 200
    assert _stored_policy(client, "p-prefixed") == COMPACT_POLICY


def test_plain_json_policy_is_stored_as_given(client: TestClient) -> None:
    assert client.post(POLICIES, json={"@id": "p-plain", "policy": COMPACT_POLICY}).status_code == 200
    assert _stored_policy(client, "p-plain") == COMPACT_POLICY


def test_policy_without_type_is_a_set(client: TestClient) -> None:
    client.post(POLICIES, json={"@id": "p-untyped", "policy": {"permission": [{"action": "use"}]}})
    assert _stored_policy(client, "p-untyped") == {"@type": "Set", "permission": [{"action": "use"}]}


def test_empty_policy_is_refused_with_the_allow_all_fix(client: TestClient) -> None:
    """EDC reads an empty policy as allow-all, ODRL as permitting nothing: refused, and the fix says so."""
    response = client.post(POLICIES, json={"@context": EDC_CONTEXT, "@id": "open", "policy": {}})
    assert response.status_code == 400
    error = response.json()[0]
    assert error["path"] == "/policy/permission"
    assert '"permission": [{"action": "use"}]' in error["message"]
    assert client.get(f"{POLICIES}/open").status_code == 404


@pytest.mark.parametrize(("policy", "pointer"), [
    ("use", "/policy"),
    ({"@type": "Contract", "permission": [{"action": "use"}]}, "/policy/@type"),
    ({"permission": ["use"]}, "/policy/permission/0"),
    ({"permission": [{"constraint": []}]}, "/policy/permission/0/action"),
    ({"permission": [{"action": "use", "constraint": ["x"]}]}, "/policy/permission/0/constraint/0"),
    ({"prohibition": [{"action": "use", "constraint": [{"rightOperand": 1}]}]},
     "/policy/prohibition/0/constraint/0"),
])
def test_malformed_policy_is_refused_naming_the_json_pointer(client: TestClient, policy: object,
                                                             pointer: str) -> None:
    response = client.post(POLICIES, json={"@id": "bad", "policy": policy})
    assert response.status_code == 400
    assert pointer in response.json()[0]["message"]
    assert client.get(f"{POLICIES}/bad").status_code == 404


def test_policy_definition_without_policy_is_refused(client: TestClient) -> None:
    response = client.post(POLICIES, json={"@id": "bad"})
    assert response.status_code == 400
    assert "/policy is required" in response.json()[0]["message"]


def test_update_replaces_the_policy(client: TestClient) -> None:
    client.post(POLICIES, json={"@id": "p", "policy": {"permission": [{"action": "use"}]}})
    updated = client.put(f"{POLICIES}/p", json={"@context": EDC_CONTEXT, "@id": "p", "policy": COMPACT_POLICY})
    assert updated.status_code == 204
    assert _stored_policy(client, "p") == COMPACT_POLICY


def test_update_with_a_different_body_id_is_refused(client: TestClient) -> None:
    client.post(POLICIES, json={"@id": "p", "policy": OPEN})
    response = client.put(f"{POLICIES}/p", json={"@id": "q", "policy": OPEN})
    assert response.status_code == 400
    assert "/@id" in response.json()[0]["message"]


def test_policy_used_by_a_contract_definition_cannot_be_deleted(client: TestClient) -> None:
    client.post(POLICIES, json={"@id": "used", "policy": OPEN})
    client.post("/api/management/v3/contractdefinitions",
                json={"@id": "cd", "accessPolicyId": "used", "contractPolicyId": "used"})
    response = client.delete(f"{POLICIES}/used")
    assert response.status_code == 409
    assert "cd" in response.json()[0]["message"]
    assert client.delete("/api/management/v3/contractdefinitions/cd").status_code == 204
    assert client.delete(f"{POLICIES}/used").status_code == 204
    assert client.get(f"{POLICIES}/used").status_code == 404


def test_a_peers_poisoned_import_cannot_change_how_policies_are_read(client: TestClient) -> None:
    # pyld caches contexts process-wide and its @import writes into cached contexts; a DSP peer's message must not
    # be able to redefine the ODRL terms the management API reads policies with.
    poisoned = {"@context": [DSP_CONTEXT, {"@import": DSP_ODRL_CONTEXT, "permission": "urn:evil:permission"}],
                "@type": "ContractAgreementMessage", "providerPid": "p", "consumerPid": "c",
                "agreement": {"@id": "a", "@type": "Agreement", "permission": [{"action": "use"}], "target": "t",
                              "assigner": "x", "assignee": "y", "timestamp": "2026-01-01T00:00:00Z"}}
    with pytest.raises(JsonLdError):
        to_dsp_shape(poisoned)
    body = {"@context": EDC_CONTEXT, "@id": "after-poison", "policy": {
        "@type": "Set", "permission": [{"action": "use", "constraint": [
            {"leftOperand": "dateTime", "operator": "lt", "rightOperand": "2030-01-01T00:00:00Z"}]}]}}
    assert client.post(POLICIES, json=body).status_code == 200
    assert _stored_policy(client, "after-poison") == COMPACT_POLICY
