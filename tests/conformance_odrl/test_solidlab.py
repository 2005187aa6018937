"""SolidLab ODRL test suite: 68 cases, decisions and per-constraint satisfaction (eventual duty mode)."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from policies import DutyMode, Options, compile_policy
from tests.conformance_odrl.solidlab import Case, load_cases

OPTIONS = Options(duty_mode=DutyMode.EVENTUAL)


@cache
def cases() -> list[Case]:
    return load_cases()


def _flatten(constraints: list[dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for c in constraints:
        out[str(c["constraint"])] = c["state"]
        out.update(_flatten(c.get("members", [])))
    return out


@pytest.mark.parametrize("index", range(68))
def test_decision_agrees(index: int) -> None:
    case = cases()[index]
    compiled = compile_policy(case.policy, OPTIONS)
    decision = compiled.evaluate(case.request, case.state)
    expected = case.expected == "Allow"
    assert decision.permitted is expected, (case.file, decision.reasons)
    assert compiled.decide(case.request, case.state) is expected
    # Per-constraint satisfaction, where the expected report gives it.
    seen: dict[str, str] = {}
    for rule in decision.report["rules"]:
        seen.update(_flatten(rule["constraints"]))
    for constraint, state in case.expected_constraints.items():
        assert seen.get(constraint) == state, (case.file, constraint)


def test_suite_has_68_cases_27_allow() -> None:
    assert len(cases()) == 68
    assert sum(c.expected == "Allow" for c in cases()) == 27
