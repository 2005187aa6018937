"""A policy in words: what each rule allows, forbids or demands, and under which constraints.

For people deciding whether to accept an offer (the consumer's preview) and for authors checking what they wrote.
The output is JSON-serialisable: per rule its action, target, constraints (each as a sentence and as its parts) and
duties, plus a flat list of sentences.
"""

from __future__ import annotations

from typing import Any

from policies.model import AnyConstraint, Constraint, Duty, Permission, Policy, Prohibition
from policies.vocab import local_name

_OPERATOR_WORDS = {
    "eq": "=", "neq": "!=", "lt": "<", "lteq": "<=", "gt": ">", "gteq": ">=", "isA": "is a", "hasPart": "has part",
    "isPartOf": "is part of", "isAllOf": "is all of", "isAnyOf": "is any of", "isNoneOf": "is none of",
}
_LOGICAL_WORDS = {"and": "and", "or": "or", "xone": "exactly one of", "andSequence": "and then"}


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("@value", value.get("@id", value)))
    return str(value)


def constraint_text(constraint: AnyConstraint) -> str:
    if isinstance(constraint, Constraint):
        operator = local_name(constraint.operator)
        right = constraint.right_operand_reference or ", ".join(_value(v) for v in constraint.right_operand)
        if len(constraint.right_operand) > 1:
            right = f"[{right}]"
        unit = f" {local_name(constraint.unit)}" if constraint.unit else ""
        return f"{local_name(constraint.left_operand)} {_OPERATOR_WORDS.get(operator, operator)} {right}{unit}"
    joiner = f" {_LOGICAL_WORDS.get(local_name(constraint.operator), constraint.operator)} "
    return "(" + joiner.join(constraint_text(c) for c in constraint.constraints) + ")"


def _constraint(constraint: AnyConstraint) -> dict[str, Any]:
    if isinstance(constraint, Constraint):
        return {"text": constraint_text(constraint), "leftOperand": constraint.left_operand,
                "operator": local_name(constraint.operator),
                "rightOperand": constraint.right_operand_reference or [_value(v) for v in constraint.right_operand]}
    return {"text": constraint_text(constraint), "operator": local_name(constraint.operator),
            "constraints": [_constraint(c) for c in constraint.constraints]}


def _when(constraints: tuple[AnyConstraint, ...]) -> str:
    return (" when " + " and ".join(constraint_text(c) for c in constraints)) if constraints else ""


def _duty(duty: Duty) -> dict[str, Any]:
    action = local_name(duty.action.iri)
    return {"action": action, "pointer": duty.pointer, "constraints": [_constraint(c) for c in duty.constraints],
            "text": f"must {action}{_when(duty.constraints)}"}


def _rule(rule: Permission | Prohibition, verb: str) -> dict[str, Any]:
    action = local_name(rule.action.iri)
    target = rule.target.uid if rule.target is not None else None
    duties = rule.duties if isinstance(rule, Permission) else rule.remedies
    text = f"{verb} {action}" + (f" {target}" if target else "") + _when(rule.constraints)
    if duties:
        text += "; in return " + "; ".join(_duty(d)["text"] for d in duties)
    return {"action": action, "target": target, "pointer": rule.pointer,
            "constraints": [_constraint(c) for c in rule.constraints],
            "refinements": [_constraint(c) for c in rule.action.refinements],
            ("duties" if isinstance(rule, Permission) else "remedies"): [_duty(d) for d in duties], "text": text}


def describe(policy: Policy) -> dict[str, Any]:
    """The policy rule by rule, in words; `obligations` gathers every duty the assignee takes on."""
    permissions = [_rule(p, "may") for p in policy.permissions]
    prohibitions = [_rule(p, "must not") for p in policy.prohibitions]
    obligations = [_duty(o) for o in policy.obligations]
    duties = [d for p in permissions for d in p["duties"]] + obligations
    return {
        "type": policy.type.value, "uid": policy.uid, "permissions": permissions, "prohibitions": prohibitions,
        "obligations": obligations, "duties": duties,
        "constraints": sorted({c["text"] for r in permissions + prohibitions for c in r["constraints"]}),
        "summary": [r["text"] for r in permissions + prohibitions] + [o["text"] for o in obligations],
    }
