"""Validation issues name the JSON pointer, the problem and the fix."""

from __future__ import annotations

import json

from connector.protocol.jsonld import load_document
from policies import C2D_CONTEXT, Request, State, parse, template, validate
from policies.evaluator import compile_policy

ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"


def policy(constraint: dict, context: object = None) -> dict:
    doc = {"@id": "urn:p", "@type": "Offer", "permission": [{"action": "use", "constraint": [constraint]}]}
    if context is not None:
        doc["@context"] = context
    return doc


def codes(doc: dict) -> dict[str, str]:
    return {i.code: i.pointer for i in validate(doc, document_loader=load_document)}


def test_misspelled_operator_suggests_the_closest() -> None:
    issues = validate(policy({"leftOperand": "dateTime", "operator": "lteqq", "rightOperand": "2026-01-01T00:00:00Z"}))
    issue = next(i for i in issues if i.code == "unknown-operator")
    assert issue.pointer == "/permission/0/constraint/0/operator" and '"lteq"' in issue.fix


def test_term_no_context_defines_is_a_relative_iri() -> None:
    found = codes(policy({"leftOperand": "dpEpsilon", "operator": "lteq", "rightOperand": 1.0},
                         context=[ODRL_CONTEXT]))
    assert found["relative-iri"] == "/permission/0/constraint/0/leftOperand"
    fixed = codes(policy({"leftOperand": "dpEpsilon", "operator": "lteq", "rightOperand": 1.0},
                         context=[ODRL_CONTEXT, C2D_CONTEXT]))
    assert "relative-iri" not in fixed and "unknown-left-operand" not in fixed


def test_old_odrl_context_mapping_neq_to_neg() -> None:
    old = {"odrl": "http://www.w3.org/ns/odrl/2/", "permission": {"@id": "odrl:permission", "@type": "@id"},
           "action": {"@id": "odrl:action", "@type": "@vocab"}, "use": "odrl:use",
           "constraint": {"@id": "odrl:constraint", "@type": "@id"},
           "leftOperand": {"@id": "odrl:leftOperand", "@type": "@vocab"}, "dateTime": "odrl:dateTime",
           "operator": {"@id": "odrl:operator", "@type": "@vocab"}, "neq": "odrl:neg",
           "rightOperand": "odrl:rightOperand", "Offer": "odrl:Offer"}
    doc = policy({"leftOperand": "dateTime", "operator": "neq", "rightOperand": "2026-01-01T00:00:00Z"},
                 context=old)
    assert codes(doc)["legacy-neg"] == "/permission/0/constraint/0/operator"
    parsed = parse(doc, document_loader=load_document)  # still read as neq
    assert parsed.permissions[0].constraints[0].operator.endswith("/neq")


def test_string_where_a_datetime_is_needed() -> None:
    issue = next(i for i in validate(policy({"leftOperand": "dateTime", "operator": "lt", "rightOperand": "soon"}))
                 if i.code == "wrong-value-type")
    assert issue.pointer == "/permission/0/constraint/0/rightOperand" and "xsd:dateTime" in issue.problem


def test_duplicate_id() -> None:
    doc = {"@id": "urn:p", "permission": [
        {"@id": "urn:r", "action": "use"}, {"@id": "urn:r", "action": "read"}]}
    assert codes(doc)["duplicate-id"] == "/permission/1/@id"


def test_unknown_left_operand_suggests_a_known_one() -> None:
    issue = next(i for i in validate(policy({"leftOperand": "purpse", "operator": "eq", "rightOperand": "x"}))
                 if i.code == "unknown-left-operand")
    assert "purpose" in issue.fix and issue.to_json()["pointer"].endswith("/leftOperand")


def test_templates_are_valid_and_evaluable() -> None:
    from datetime import UTC, datetime

    docs = [
        template("time-window", id="urn:t", start="2026-01-01T00:00:00Z", end="2026-12-31T00:00:00Z"),
        template("purpose", id="urn:u", purposes=["dpv:ResearchAndDevelopment"]),
        template("membership", id="urn:m", memberships=["active"]),
        template("compute-only", id="urn:c", algorithms=["sha256:aa"], k=10, epsilon=1.0, budget=8.0),
    ]
    for doc in docs:
        assert [i.to_json() for i in validate(doc, document_loader=load_document)] == []
        json.dumps(doc)
    purpose = compile_policy(parse(docs[1]))
    assert purpose.decide(Request(context={"purpose": "dpv:AcademicResearch"}), State(now=datetime.now(UTC)))
