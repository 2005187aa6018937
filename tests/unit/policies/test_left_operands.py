"""Every registered left operand: a permit, a deny and an unknown-state case (unknown never permits)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from policies import C2D, DEFAULT_REGISTRY, ODRL, PARTICIPANT, Request, State, compile_policy, parse

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
START = datetime(2026, 5, 1, tzinfo=UTC)


def state(**kw: Any) -> State:
    return State(now=kw.pop("now", NOW), **kw)


# operand, operator, right operand, (request context, state kwargs) for permit / deny / unknown
CASES: list[tuple[str, str, Any, tuple[dict, dict], tuple[dict, dict], tuple[dict, dict]]] = [
    ("dateTime", "lteq", "2026-12-31T00:00:00Z", ({}, {}), ({}, {"now": datetime(2027, 1, 1, tzinfo=UTC)}),
     ({}, {"now": None})),
    ("elapsedTime", "lteq", "P60D", ({}, {"agreement_start": START}),
     ({}, {"agreement_start": datetime(2026, 1, 1, tzinfo=UTC)}), ({}, {})),
    ("count", "lteq", 10, ({}, {"use_count": 3}), ({}, {"use_count": 10}), ({}, {})),
    ("spatial", "isPartOf", "EU", ({"spatial": "DE"}, {}), ({"spatial": "US"}, {}), ({}, {})),
    ("purpose", "isA", "dpv:ResearchAndDevelopment", ({"purpose": "dpv:AcademicResearch"}, {}),
     ({"purpose": "dpv:Advertising"}, {}), ({}, {})),
    ("recipient", "isAnyOf", ["did:web:a", "did:web:b"], ({"recipient": "did:web:a"}, {}),
     ({"recipient": "did:web:z"}, {}), ({}, {})),
    ("participant:membership", "eq", "active", ({}, {"claims": {"membership": "active"}}),
     ({}, {"claims": {"membership": "suspended"}}), ({}, {})),
    ("participant:role", "isAnyOf", ["researcher"], ({}, {"claims": {"role": ["researcher", "admin"]}}),
     ({}, {"claims": {"role": ["sales"]}}), ({}, {})),
    ("participant:country", "isPartOf", "EU", ({}, {"claims": {"country": "FR"}}),
     ({}, {"claims": {"country": "CN"}}), ({}, {})),
    ("c2d:algorithm", "isAnyOf", ["sha256:aa"], ({"algorithm": "sha256:aa"}, {}), ({"algorithm": "sha256:bb"}, {}),
     ({}, {})),
    ("c2d:algorithmSigner", "eq", "did:web:lab", ({"algorithmSigner": "did:web:lab"}, {}),
     ({"algorithmSigner": "did:web:evil"}, {}), ({}, {})),
    ("c2d:minAggregationSize", "gteq", 10, ({"minAggregationSize": 25}, {}), ({"minAggregationSize": 5}, {}),
     ({}, {})),
    ("c2d:dpEpsilon", "lteq", 1.0, ({"dpEpsilon": 0.5}, {}), ({"dpEpsilon": 2}, {}), ({}, {})),
    ("c2d:dpEpsilonBudget", "lteq", 8.0, ({"dpEpsilon": 1.0}, {"dp_epsilon_spent": 6.5}),
     ({"dpEpsilon": 1.0}, {"dp_epsilon_spent": 7.5}), ({"dpEpsilon": 1.0}, {})),
    ("c2d:consentRequired", "eq", True, ({}, {"consent_given": True}), ({}, {"consent_given": False}), ({}, {})),
    ("c2d:outputFormat", "isAnyOf", ["text/csv"], ({"outputFormat": "text/csv"}, {}),
     ({"outputFormat": "application/x-parquet"}, {}), ({}, {})),
    ("c2d:maxOutputBytes", "lteq", 1048576, ({"maxOutputBytes": 2048}, {}), ({"maxOutputBytes": 10**9}, {}),
     ({}, {})),
    ("c2d:egress", "eq", "none", ({"egress": "none"}, {}), ({"egress": "https://exfil.example"}, {}), ({}, {})),
]


def _policy(left: str, op: str, right: Any) -> Any:
    return compile_policy(parse({"@id": "urn:p", "permission": [{"action": "use", "constraint": [
        {"leftOperand": left, "operator": op, "rightOperand": right}]}]}))


def _run(compiled: Any, inputs: tuple[dict, dict], assignee: str | None = "did:web:c") -> tuple[bool, dict]:
    context, kw = inputs
    if kw.get("now", NOW) is None:  # "no clock": a state without now is not constructible, use a fact-less one
        kw = {}
    decision = compiled.evaluate(Request(assignee=assignee, context=context), state(**kw))
    assert compiled.decide(Request(assignee=assignee, context=context), state(**kw)) is decision.permitted
    return decision.permitted, decision.report["rules"][0]["constraints"][0]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_permit_deny_unknown(case: tuple) -> None:
    left, op, right, permit, deny, unknown = case
    compiled = _policy(left, op, right)
    ok, report = _run(compiled, permit)
    assert ok and report["state"] == "satisfied", report
    ok, report = _run(compiled, deny)
    assert not ok and report["state"] == "unsatisfied", report
    if left == "dateTime":
        return  # the clock is always known
    ok, report = _run(compiled, unknown, assignee=None)
    assert not ok and report["state"] == "unknown" and report["reason"], report


def test_every_registered_operand_is_covered() -> None:
    prefixes = {"c2d:": C2D, "participant:": PARTICIPANT}
    covered = set()
    for left, *_ in CASES:
        iri = next((ns + left[len(p):] for p, ns in prefixes.items() if left.startswith(p)), ODRL + left)
        covered.add(iri)
    missing = set(DEFAULT_REGISTRY.names()) - covered - {ODRL + "payAmount", ODRL + "resolution"}
    assert not missing


def test_unknown_left_operand_is_reported_not_dropped() -> None:
    compiled = _policy("partner", "eq", "gold")
    decision = compiled.evaluate(Request(), state())
    constraint = decision.report["rules"][0]["constraints"][0]
    assert not decision.permitted and constraint["state"] == "unknown"
    assert "unknown left operand" in constraint["reason"]


def test_neq_with_unknown_value_is_unknown() -> None:
    decision = _policy("purpose", "neq", "dpv:Marketing").evaluate(Request(), state())
    assert not decision.permitted


def test_conflict_strategies() -> None:
    base = {"@id": "urn:p", "permission": [{"action": "use"}], "prohibition": [{"action": "distribute"}]}
    request = Request(action=ODRL + "distribute")
    assert not compile_policy(parse(base)).decide(request, state())  # invalid (default) voids
    assert compile_policy(parse({**base, "conflict": "perm"})).decide(request, state())
    assert not compile_policy(parse({**base, "conflict": "prohibit"})).decide(request, state())
    assert compile_policy(parse(base)).decide(Request(action=ODRL + "read"), state())


def test_payment_duty_is_a_precondition_and_delete_duty_is_returned() -> None:
    policy = compile_policy(parse({"@id": "urn:p", "permission": [{"action": "use", "duty": [
        {"@id": "urn:pay", "action": "compensate"}, {"@id": "urn:del", "action": "delete"}]}]}))
    assert not policy.decide(Request(), state())
    decision = policy.evaluate(Request(), state(duty_states={"urn:pay": "fulfilled"}))
    assert decision.permitted and [o["uid"] for o in decision.obligations] == ["urn:del"]
    assert not policy.decide(Request(), state(duty_states={"urn:pay": "fulfilled", "urn:del": "violated"}))


def test_action_hierarchy_and_deprecated_actions() -> None:
    policy = compile_policy(parse({"@id": "urn:p", "permission": [{"action": "use"}]}))
    assert policy.decide(Request(action=ODRL + "display"), state())
    assert policy.decide(Request(action=ODRL + "write"), state())  # exactMatch modify, includedIn use
    assert not policy.decide(Request(action=ODRL + "sell"), state())  # transfer is the other root


def test_without_a_stated_action_only_an_equally_broad_prohibition_conflicts() -> None:
    """Catalog and negotiation ask "may this party have the offer at all?", naming no action."""
    narrower = {"@id": "urn:p", "permission": [{"action": "use"}], "prohibition": [{"action": "distribute"}]}
    for decide in (lambda p: compile_policy(parse(p)).decide(Request(), state()),
                   lambda p: compile_policy(parse(p)).evaluate(Request(), state()).permitted):
        assert decide(narrower)  # use is still granted; distribute binds when it is requested
        assert not decide({**narrower, "prohibition": [{"action": "use"}]})  # as broad: the conflict voids it
        assert not decide({"@id": "urn:p", "permission": [{"action": "read"}], "prohibition": [{"action": "use"}]})
        assert not decide({"@id": "urn:p", "prohibition": [{"action": "use"}]})
    report = compile_policy(parse(narrower)).evaluate(Request(), state())
    assert any("binds when that action is requested" in r for r in report.reasons)
    assert not compile_policy(parse(narrower)).decide(Request(action=ODRL + "distribute"), state())
