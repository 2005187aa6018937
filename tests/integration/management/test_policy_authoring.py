"""The policy authoring API: validate, evaluate, templates, and the consumer's negotiation preview."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

P = "/api/management/v3/policies"
DSP = ["https://w3id.org/dspace/2025/1/context.jsonld"]
RESEARCH = "https://w3id.org/dpv#ResearchAndDevelopment"


def window_policy(start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {"@context": DSP, "@id": "urn:policy:w", "@type": "Set", "permission": [{"action": "use", "constraint": [
        {"leftOperand": "dateTime", "operator": "gteq", "rightOperand": start},
        {"leftOperand": "dateTime", "operator": "lt", "rightOperand": end}], **extra}]}


def test_validate_accepts_a_good_policy(client: TestClient) -> None:
    answer = client.post(f"{P}/validate", json=window_policy("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"))
    assert answer.status_code == 200
    assert answer.json() == {"valid": True, "issues": []}


def test_validate_names_pointer_problem_and_fix(client: TestClient) -> None:
    policy = window_policy("2026-01-01T00:00:00Z", "next year")
    policy["permission"][0]["constraint"][0]["operator"] = "gteqq"
    body = client.post(f"{P}/validate", json=policy).json()
    assert body["valid"] is False
    by_pointer = {i["pointer"]: i for i in body["issues"]}
    assert by_pointer["/permission/0/constraint/0/operator"]["fix"] == 'did you mean "gteq"?'
    wrong = by_pointer["/permission/0/constraint/1/rightOperand"]
    assert wrong["code"] == "wrong-value-type" and "xsd:dateTime" in wrong["problem"]


def test_validate_flags_the_old_odrl_context_and_undefined_terms(client: TestClient) -> None:
    old_context = {"odrl": "http://www.w3.org/ns/odrl/2/", "permission": {"@id": "odrl:permission", "@type": "@id"},
                   "action": {"@id": "odrl:action", "@type": "@vocab"}, "use": "odrl:use", "purpose": "odrl:purpose",
                   "constraint": {"@id": "odrl:constraint", "@type": "@id"}, "Set": "odrl:Set",
                   "leftOperand": {"@id": "odrl:leftOperand", "@type": "@vocab"}, "eq": "odrl:eq",
                   "operator": {"@id": "odrl:operator", "@type": "@vocab"}, "neq": "odrl:neg",
                   "rightOperand": "odrl:rightOperand", "target": {"@id": "odrl:target", "@type": "@id"}}
    policy = {"@context": old_context, "@id": "urn:p", "@type": "Set", "permission": [
        {"action": "use", "target": "urn:a", "constraint": [
            {"leftOperand": "purpose", "operator": "neq", "rightOperand": "x"},
            {"leftOperand": "colour", "operator": "eq", "rightOperand": "red"}]}]}
    issues = client.post(f"{P}/validate", json=policy).json()["issues"]
    by_code = {i["code"]: i["pointer"] for i in issues}
    assert by_code["legacy-neg"] == "/permission/0/constraint/0/operator", issues
    assert by_code["relative-iri"] == "/permission/0/constraint/1/leftOperand", issues


def test_validate_is_protected_by_the_api_key(client: TestClient) -> None:
    answer = client.post(f"{P}/validate", json={"permission": []}, headers={"X-Api-Key": "wrong"})
    assert answer.status_code == 401


def test_evaluate_permits_inside_the_window_with_a_report(client: TestClient) -> None:
    body = {"policy": window_policy("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
            "request": {"assignee": "did:web:c", "action": "use"}, "state": {"now": "2026-06-01T00:00:00Z"}}
    answer = client.post(f"{P}/evaluate", json=body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["decision"] == "permit"
    assert "satisfied" in str(result["report"])


def test_evaluate_denies_outside_the_window_saying_why(client: TestClient) -> None:
    body = {"policy": window_policy("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
            "state": {"now": "2027-06-01T00:00:00Z"}}
    result = client.post(f"{P}/evaluate", json=body).json()
    assert result["decision"] == "deny"
    assert "dateTime" in " ".join(result["reasons"])


def test_evaluate_reads_purpose_from_the_request_context_and_claims_from_the_state(client: TestClient) -> None:
    policy = {"@context": DSP, "@id": "urn:p", "@type": "Set", "permission": [{"action": "use", "constraint": [
        {"leftOperand": "purpose", "operator": "isA", "rightOperand": RESEARCH},
        {"leftOperand": "https://w3id.org/sovra/participant/v1#membership", "operator": "eq",
         "rightOperand": "active"}]}]}
    request = {"context": {"purpose": "https://w3id.org/dpv#AcademicResearch"}}
    permit = client.post(f"{P}/evaluate", json={"policy": policy, "request": request,
                                                 "state": {"claims": {"membership": "active"}}}).json()
    assert permit["decision"] == "permit", permit
    no_claim = client.post(f"{P}/evaluate", json={"policy": policy, "request": request}).json()
    assert no_claim["decision"] == "deny"


def test_evaluate_count_uses_the_given_use_count(client: TestClient) -> None:
    policy = {"@context": DSP, "@id": "urn:p", "@type": "Set", "permission": [{"action": "use", "constraint": [
        {"leftOperand": "count", "operator": "lteq", "rightOperand": 3}]}]}
    decide = lambda n: client.post(f"{P}/evaluate", json={"policy": policy, "state": {"useCount": n}}).json()  # noqa: E731
    assert decide(2)["decision"] == "permit"
    assert decide(3)["decision"] == "deny"


def test_evaluate_refuses_bad_input_naming_the_field(client: TestClient) -> None:
    naive = client.post(f"{P}/evaluate", json={"policy": window_policy("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
                                                "state": {"now": "2026-06-01T00:00:00"}})
    assert naive.status_code == 400 and naive.json()[0]["path"] == "/state/now"
    scope = client.post(f"{P}/evaluate", json={"policy": {"permission": [{"action": "use"}]}, "scope": "billing"})
    assert scope.status_code == 400 and scope.json()[0]["path"] == "/scope"
    unreadable = client.post(f"{P}/evaluate", json={"policy": {"@type": "Set"}})
    assert unreadable.status_code == 400
    assert unreadable.json()[0]["path"].startswith("/policy")


def test_templates_are_listed_and_filled(client: TestClient) -> None:
    names = [t["name"] for t in client.get(f"{P}/templates").json()]
    assert {"time-window", "purpose", "membership", "compute-only"} <= set(names)
    one = client.get(f"{P}/templates/time-window").json()
    assert set(one["parameters"]) == {"id", "start", "end"}
    filled = client.post(f"{P}/templates/time-window", json={
        "id": "urn:policy:t", "start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"})
    assert filled.status_code == 200, filled.text
    assert filled.json()["policy"]["@id"] == "urn:policy:t"
    missing = client.post(f"{P}/templates/time-window", json={"id": "urn:policy:t"})
    assert missing.status_code == 400 and missing.json()[0]["path"] in ("/end", "/start")
    bad_value = client.post(f"{P}/templates/time-window", json={"id": "urn:t", "start": "soon", "end": "later"})
    assert bad_value.status_code == 400 and "rightOperand" in bad_value.json()[0]["path"]
    assert client.get(f"{P}/templates/nope").status_code == 404


def test_policy_definitions_refuse_errors_and_store_warnings(client: TestClient) -> None:
    bad = {"permission": [{"action": "use", "constraint": [
        {"leftOperand": "dateTime", "operator": "lteqq", "rightOperand": "2026-01-01T00:00:00Z"}]}]}
    refused = client.post("/api/management/v3/policydefinitions", json={"@id": "bad", "policy": bad})
    assert refused.status_code == 400
    error = refused.json()[0]
    assert error["path"] == "/policy/permission/0/constraint/0/operator"
    assert 'did you mean "lteq"?' in error["message"]
    assert error["invalidValue"][0]["code"] == "unknown-operator"
    naive = {"permission": [{"action": "use", "constraint": [
        {"leftOperand": "dateTime", "operator": "lteq", "rightOperand": "2026-01-01T00:00:00"}]}]}
    stored = client.post("/api/management/v3/policydefinitions", json={"@id": "naive", "policy": naive})
    assert stored.status_code == 200  # no time zone is a warning only
    update = client.put("/api/management/v3/policydefinitions/naive", json={"@id": "naive", "policy": bad})
    assert update.status_code == 400


def test_preview_shows_duties_and_constraints_without_sending(client: TestClient) -> None:
    offer = {"@id": "cd:asset:0", "@type": "Offer", "target": "asset-1", "assigner": "did:web:provider.invalid",
             "permission": [{"action": "use", "constraint": [
                 {"leftOperand": "purpose", "operator": "isA", "rightOperand": RESEARCH}],
                 "duty": [{"action": "delete", "constraint": [
                     {"leftOperand": "dateTime", "operator": "lteq", "rightOperand": "2027-01-01T00:00:00Z"}]}]}]}
    body = {"counterPartyAddress": "https://provider.invalid/api/dsp/2025-1",
            "counterPartyId": "did:web:provider.invalid",
            "protocol": "dataspace-protocol-http:2025-1", "policy": offer,
            "requestContext": {"purpose": "https://w3id.org/dpv#AcademicResearch"}}
    answer = client.post("/api/management/v3/contractnegotiations/preview", json=body)
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert preview["sent"] is False
    assert preview["duties"][0]["action"] == "delete"
    assert "dateTime <= 2027-01-01T00:00:00Z" in preview["duties"][0]["text"]
    assert preview["constraints"] == [f"purpose is a {RESEARCH}"]
    assert preview["localCheck"]["decision"] == "permit"
    assert client.post("/api/management/v3/contractnegotiations/request", json={}).json() == []
