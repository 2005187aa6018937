from __future__ import annotations

from datetime import UTC, datetime

from policies import MinimalPolicyEngine, PolicyContext, Scope

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ENGINE = MinimalPolicyEngine()


def ctx() -> PolicyContext:
    return PolicyContext(scope=Scope.NEGOTIATION, participant_id="did:web:c", now=NOW)


def window(op: str, value: str) -> dict:
    return {"permission": [{"action": "use", "constraint": [
        {"leftOperand": "dateTime", "operator": op, "rightOperand": value}]}]}


def test_rule_without_constraints_permits() -> None:
    assert ENGINE.evaluate({"permission": [{"action": "use"}]}, ctx()).permitted


def test_datetime_window_permits_inside_and_denies_outside() -> None:
    assert ENGINE.evaluate(window("lteq", "2030-01-01T00:00:00Z"), ctx()).permitted
    denied = ENGINE.evaluate(window("lteq", "2020-01-01T00:00:00Z"), ctx())
    assert not denied.permitted and "dateTime" in denied.explain()


def test_unknown_left_operand_denies_and_says_so() -> None:
    policy = {"permission": [{"action": "use", "constraint": [
        {"leftOperand": "purpose", "operator": "eq", "rightOperand": "research"}]}]}
    decision = ENGINE.evaluate(policy, ctx())
    assert not decision.permitted
    assert "'purpose'" in decision.explain()


def test_unconditional_prohibition_denies() -> None:
    assert not ENGINE.evaluate({"prohibition": [{"action": "use"}]}, ctx()).permitted


def test_or_constraint_needs_one_branch() -> None:
    policy = {"permission": [{"action": "use", "constraint": [{"or": [
        {"leftOperand": "dateTime", "operator": "lt", "rightOperand": "2020-01-01T00:00:00Z"},
        {"leftOperand": "dateTime", "operator": "gt", "rightOperand": "2026-01-01T00:00:00Z"}]}]}]}
    assert ENGINE.evaluate(policy, ctx()).permitted
