"""A deliberately small, fail-closed evaluator used until the full ODRL engine lands.

It understands rules without constraints, `dateTime` comparisons and the `and`/`or` logical constraints. Anything
else makes its rule unsatisfied, with a reason that names the term: a constraint is never silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from policies.engine import Decision, PolicyContext

_COMPARE = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "lteq": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gteq": lambda a, b: a >= b,
}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _term(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("@id") or value.get("@value") or ""
    text = str(value)
    for prefix in ("http://www.w3.org/ns/odrl/2/", "odrl:"):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def _parse_datetime(value: Any) -> datetime | None:
    text = _term(value)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


class MinimalPolicyEngine:
    def evaluate(self, policy: Mapping[str, Any], context: PolicyContext) -> Decision:
        reasons: list[str] = []
        permitted = True
        for index, rule in enumerate(_as_list(policy.get("permission"))):
            ok, why = self._constraints_hold(rule.get("constraint"), context)
            if not ok:
                permitted = False
                reasons.append(f"permission[{index}] not satisfied: {why}")
        for index, rule in enumerate(_as_list(policy.get("prohibition"))):
            ok, why = self._constraints_hold(rule.get("constraint"), context)
            if ok:
                permitted = False
                reasons.append(f"prohibition[{index}] applies{': ' + why if why else ''}")
        for index, _duty in enumerate(_as_list(policy.get("obligation"))):
            permitted = False
            reasons.append(f"obligation[{index}] cannot be checked by the minimal policy engine")
        return Decision(permitted=permitted, reasons=tuple(reasons))

    def _constraints_hold(self, constraints: Any, context: PolicyContext) -> tuple[bool, str]:
        for constraint in _as_list(constraints):
            ok, why = self._constraint_holds(constraint, context)
            if not ok:
                return False, why
        return True, ""

    def _constraint_holds(self, constraint: Mapping[str, Any], context: PolicyContext) -> tuple[bool, str]:
        if "and" in constraint:
            return self._constraints_hold(constraint["and"], context)
        if "or" in constraint:
            results = [self._constraint_holds(c, context) for c in _as_list(constraint["or"])]
            if any(ok for ok, _ in results):
                return True, ""
            return False, " and ".join(why for _, why in results) or "no alternative holds"
        left = _term(constraint.get("leftOperand"))
        operator = _term(constraint.get("operator"))
        if left != "dateTime":
            return False, f"left operand {left!r} is not supported by the minimal engine (fails closed)"
        compare = _COMPARE.get(operator)
        bound = _parse_datetime(constraint.get("rightOperand"))
        if compare is None or bound is None:
            return False, f"dateTime constraint with operator {operator!r} and right operand not understood"
        if compare(context.now, bound):
            return True, ""
        return False, f"dateTime {context.now.isoformat()} is not {operator} {bound.isoformat()}"
