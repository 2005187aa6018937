"""Compile a `Policy` to closures once, then decide requests fast or with a full compliance report.

Semantics (docs/odrl-conformance.md has the spec text for each choice):
- a rule applies when its action covers the requested one (`includedIn` closure, deprecated actions via
  `exactMatch`), its target and assignee match (equal, or the requested one is `partOf` the collection) and every
  refinement holds for the request; it is *active* when every constraint is satisfied;
- a constraint is satisfied, unsatisfied or unknown; unknown (no value, unknown left operand, incomparable types)
  never satisfies and is reported with the reason;
- closed behaviour (default): permit iff an applicable active permission exists and no duty blocks it; an
  applicable active prohibition conflicts, resolved by the policy's `conflict` (`invalid`, the default, voids the
  policy: deny);
- duties: `precondition` mode needs every active duty fulfilled; `eventual` mode permits until a duty is violated
  and returns the duties as obligations; `auto` (the default) treats payment and consent duties, and duties
  constrained by `event lt policyUsage`, as preconditions and the rest as eventual. An active duty whose own
  constraints are unknown counts as active. A violated policy-level obligation denies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from policies.engine import Decision
from policies.model import Action, AnyConstraint, Asset, Constraint, Duty, Party, Permission, Policy, Prohibition
from policies.operands import DEFAULT_REGISTRY, MISSING, OperandRegistry, Request, State, region_containers
from policies.values import Duration, Elapsed, Kind, coerce, to_json
from policies.vocab import ODRL, OPERATOR_IRIS, action_ancestors, canonical_action, local_name

SATISFIED, UNSATISFIED, UNKNOWN = "satisfied", "unsatisfied", "unknown"
_STATE_NAMES = {True: SATISFIED, False: UNSATISFIED, None: UNKNOWN}
Test = Callable[[Request, State], "bool | None"]


class DutyMode(StrEnum):
    PRECONDITION = "precondition"
    EVENTUAL = "eventual"
    AUTO = "auto"


class Behaviour(StrEnum):
    CLOSED = "closed"
    OPEN = "open"


@dataclass(frozen=True)
class Options:
    duty_mode: DutyMode = DutyMode.AUTO
    behaviour: Behaviour = Behaviour.CLOSED
    registry: OperandRegistry = DEFAULT_REGISTRY


_PRECONDITION_ACTIONS = frozenset({ODRL + "compensate", ODRL + "obtainConsent"})


# -- typed comparison ------------------------------------------------------------------------------------------------
def _order(left: Any, right: Any) -> int:
    if isinstance(left, Elapsed) and isinstance(right, Duration):
        deadline = right.add_to(left.start)
        return (left.end > deadline) - (left.end < deadline)
    if isinstance(left, Duration) and isinstance(right, Duration):
        if left.months == right.months or (left.seconds == right.seconds):
            a, b = (left.seconds, right.seconds) if left.months == right.months else (left.months, right.months)
            return (a > b) - (a < b)
        raise ValueError(f"durations {left} and {right} have no fixed order (months against days)")
    if isinstance(left, frozenset) or isinstance(right, frozenset):
        raise ValueError("a set has no order")
    if type(left) is not type(right) and not (isinstance(left, float) and isinstance(right, float)):
        raise ValueError(f"cannot order {to_json(left)!r} against {to_json(right)!r}")
    return (left > right) - (left < right)


def _members(value: Any) -> frozenset[Any]:
    return value if isinstance(value, frozenset) else frozenset((value,))


def _make_comparator(operator: str, spec_hierarchy: Callable[[str], frozenset[str]] | None,
                     right: tuple[Any, ...]) -> Callable[[Any, State], bool]:
    """`(left, state) -> bool` for one operator and a compiled right operand; raises ValueError if incomparable."""
    r0 = right[0]
    right_set = frozenset(right)

    def widen(value: Any) -> frozenset[Any]:
        return spec_hierarchy(value) if spec_hierarchy is not None and isinstance(value, str) else frozenset((value,))

    if operator == "eq":
        if len(right) > 1:
            return lambda left, st: _members(left) == right_set
        return lambda left, st: _order(left, r0) == 0 if isinstance(left, Elapsed) else left == r0
    if operator == "neq":
        if len(right) > 1:
            return lambda left, st: _members(left) != right_set
        return lambda left, st: _order(left, r0) != 0 if isinstance(left, Elapsed) else left != r0
    if operator == "lt":
        return lambda left, st: _order(left, r0) < 0
    if operator == "lteq":
        return lambda left, st: _order(left, r0) <= 0
    if operator == "gt":
        return lambda left, st: _order(left, r0) > 0
    if operator == "gteq":
        return lambda left, st: _order(left, r0) >= 0
    if operator == "isA":
        return lambda left, st: all(r0 in widen(item) for item in _members(left))
    if operator == "isAnyOf":
        return lambda left, st: any(widen(item) & right_set for item in _members(left))
    if operator == "isNoneOf":
        return lambda left, st: not any(widen(item) & right_set for item in _members(left))
    if operator == "isAllOf":
        return lambda left, st: right_set <= frozenset().union(*(widen(item) for item in _members(left)))
    if operator == "isPartOf":
        return lambda left, st: all(r0 == item or r0 in _containers(item, st) for item in _members(left))
    if operator == "hasPart":
        return lambda left, st: any(item == r0 or item in _containers(r0, st) for item in _members(left))
    raise ValueError(f"operator {operator!r} is not an ODRL 2.2 operator")


def _containers(member: Any, state: State) -> frozenset[str]:
    """Collections/regions `member` is part of: the state's `part_of` facts (transitive) plus the regions table."""
    found: set[str] = set(region_containers(str(member)))
    pending = [member]
    while pending:
        for parent in state.part_of.get(pending.pop(), ()):
            if parent not in found:
                found.add(parent)
                pending.append(parent)
                found |= region_containers(parent)
    return frozenset(found)


# -- compiled constraints -------------------------------------------------------------------------------------------
class CompiledConstraint:
    """One constraint as a fast three-valued `test` plus an `explain` for reports (same semantics)."""

    __slots__ = ("test", "explain")

    def __init__(self, test: Test, explain: Callable[[Request, State], dict[str, Any]]) -> None:
        self.test = test
        self.explain = explain


def _describe(c: Constraint) -> dict[str, Any]:
    return {"constraint": c.uid or c.pointer, "pointer": c.pointer, "leftOperand": c.left_operand,
            "operator": local_name(c.operator) if c.operator.startswith(ODRL) else c.operator,
            "rightOperand": [to_json(v.get("@id", v.get("@value")) if isinstance(v, dict) else v)
                             for v in c.right_operand] or c.right_operand_reference}


def _never(c: Constraint, reason: str) -> CompiledConstraint:
    def test(request: Request, state: State) -> bool | None:
        return None

    def explain(request: Request, state: State) -> dict[str, Any]:
        return {**_describe(c), "state": UNKNOWN, "value": None, "reason": reason}

    return CompiledConstraint(test, explain)


def compile_constraint(c: AnyConstraint, registry: OperandRegistry) -> CompiledConstraint:
    if not isinstance(c, Constraint):
        return _compile_logical(c.operator, [compile_constraint(m, registry) for m in c.constraints],
                                c.uid or c.pointer, c.pointer)
    spec = registry.get(c.left_operand)
    if spec is None:
        hint = "" if ":" in c.left_operand else " (the term expanded to a relative IRI: no context defines it)"
        return _never(c, f"unknown left operand {c.left_operand}{hint}: no function is registered for it, so the "
                         "constraint is not satisfied (fail closed)")
    operator = OPERATOR_IRIS.get(c.operator)
    if operator is None:
        return _never(c, f"unknown operator {c.operator}: the constraint is not satisfied (fail closed)")
    if spec.operators is not None and operator not in spec.operators:
        return _never(c, f"operator {operator} is not defined for {local_name(spec.iri)} (use one of "
                         f"{', '.join(sorted(spec.operators))}); not satisfied (fail closed)")
    right_kind = Kind.DURATION if spec.kind is Kind.DURATION else spec.kind
    raw_right = c.right_operand
    if not raw_right:
        raw_right = (c.right_operand_reference,)
    try:
        right = tuple(coerce(v, right_kind) for v in raw_right)
    except ValueError as exc:
        return _never(c, f"right operand not usable for {local_name(spec.iri)}: {exc}")
    if c.right_operand_reference and not c.right_operand:
        return _never(c, f"rightOperandReference {c.right_operand_reference} is never dereferenced (no fetching); "
                         "put the value in rightOperand")
    if spec.compare is not None:
        custom = spec.compare

        def compare(left: Any, state: State) -> bool:
            return custom(operator, left, right)
    else:
        compare = _make_comparator(operator, spec.hierarchy, right)
    resolve = spec.resolve
    hierarchy_left = operator in ("isA",)

    def test(request: Request, state: State) -> bool | None:
        try:
            left = resolve(request, state)
            if left is MISSING:
                return None
            return compare(left, state)
        except (ValueError, TypeError):
            return None

    def explain(request: Request, state: State) -> dict[str, Any]:
        base = _describe(c)
        try:
            left = resolve(request, state)
        except (ValueError, TypeError) as exc:
            return {**base, "state": UNKNOWN, "value": None, "reason": f"{local_name(spec.iri)}: {exc}"}
        if left is MISSING:
            return {**base, "state": UNKNOWN, "value": None, "reason": spec.missing}
        try:
            ok = compare(left, state)
        except (ValueError, TypeError) as exc:
            return {**base, "state": UNKNOWN, "value": to_json(left), "reason": str(exc)}
        verdict = "holds" if ok else "does not hold"
        how = " (with the purpose hierarchy)" if hierarchy_left and spec.hierarchy else ""
        shown = to_json(right if len(right) > 1 else right[0])
        return {**base, "state": SATISFIED if ok else UNSATISFIED, "value": to_json(left),
                "reason": f"{local_name(spec.iri)} {to_json(left)} {operator} {shown} {verdict}{how}"}

    return CompiledConstraint(test, explain)


def _compile_logical(operator: str, members: list[CompiledConstraint], uid: str, pointer: str) -> CompiledConstraint:
    tests = tuple(m.test for m in members)

    def combine(results: list[bool | None]) -> bool | None:
        if operator in ("and", "andSequence"):
            if False in results:
                return False
            return None if None in results else True
        if operator == "or":
            if True in results:
                return True
            return None if None in results else False
        if None in results:  # xone: one unknown member makes "exactly one" undecidable
            return None
        return results.count(True) == 1

    def test(request: Request, state: State) -> bool | None:
        return combine([t(request, state) for t in tests])

    def explain(request: Request, state: State) -> dict[str, Any]:
        parts = [m.explain(request, state) for m in members]
        result = combine([{SATISFIED: True, UNSATISFIED: False}.get(p["state"]) for p in parts])
        return {"constraint": uid, "pointer": pointer, "logicalOperator": operator, "state": _STATE_NAMES[result],
                "members": parts}

    return CompiledConstraint(test, explain)


def _all_true(tests: tuple[Test, ...], request: Request, state: State) -> bool:
    for t in tests:
        if t(request, state) is not True:
            return False
    return True


# -- compiled rules --------------------------------------------------------------------------------------------------
def _matches_entity(uid: str | None, requested: str | None, state: State, *, absent_matches: bool) -> bool | None:
    if uid is None:
        return True
    if requested is None:
        return True if absent_matches else None
    return requested == uid or uid in _containers(requested, state)


class CompiledRule:
    __slots__ = ("rule", "kind", "uid", "action", "action_refinements", "target", "target_refinements",
                 "assignee", "assignee_refinements", "constraints", "tests", "duties", "key", "all_refinements",
                 "refinement_tests")

    def __init__(self, rule: Permission | Prohibition | Duty, options: Options) -> None:
        registry = options.registry
        self.rule = rule
        self.kind = rule.kind.value
        self.uid = rule.uid
        self.key = rule.uid or rule.pointer
        self.action = canonical_action(rule.action.iri)
        self.action_refinements = tuple(compile_constraint(r, registry) for r in rule.action.refinements)
        self.target = rule.target.uid if isinstance(rule.target, Asset) else None
        self.target_refinements = tuple(compile_constraint(r, registry) for r in
                                        (rule.target.refinements if rule.target else ()))
        self.assignee = rule.assignee.uid if isinstance(rule.assignee, Party) else None
        self.assignee_refinements = tuple(compile_constraint(r, registry) for r in
                                          (rule.assignee.refinements if rule.assignee else ()))
        self.constraints = tuple(compile_constraint(c, registry) for c in rule.constraints)
        self.tests = tuple(c.test for c in self.constraints)
        self.all_refinements = self.action_refinements + self.target_refinements + self.assignee_refinements
        self.refinement_tests = tuple(r.test for r in self.all_refinements)
        nested: tuple[Duty, ...] = ()
        if isinstance(rule, Permission):
            nested = rule.duties
        elif isinstance(rule, Prohibition):
            nested = rule.remedies
        else:
            nested = rule.consequences
        self.duties = tuple(CompiledDuty(d, options) for d in nested)

    def action_covers(self, requested: str | None) -> bool:
        return requested is None or not self.action or self.action in action_ancestors(requested)

    def applies_to_party(self, request: Request, state: State) -> bool:
        """A policy-level obligation binds the requester when it names no assignee or names the requester."""
        return _matches_entity(self.assignee, request.assignee, state, absent_matches=True) is not False

    def refinements(self) -> tuple[CompiledConstraint, ...]:
        return self.all_refinements

    def applies(self, request: Request, state: State) -> bool:
        requested = request.action
        if requested is not None and self.action and self.action not in action_ancestors(requested):
            return False
        if self.target is not None and request.target is not None and \
                _matches_entity(self.target, request.target, state, absent_matches=True) is not True:
            return False
        if self.assignee is not None and \
                _matches_entity(self.assignee, request.assignee, state, absent_matches=False) is not True:
            return False
        for test in self.refinement_tests:
            if test(request, state) is not True:
                return False
        return True

    def active(self, request: Request, state: State) -> bool:
        return _all_true(self.tests, request, state)

    def premises(self, request: Request, state: State) -> dict[str, Any]:
        target = _matches_entity(self.target, request.target, state, absent_matches=True)
        party = _matches_entity(self.assignee, request.assignee, state, absent_matches=False)
        return {
            "action": {"state": SATISFIED if self.action_covers(request.action) else UNSATISFIED,
                       "rule": self.action, "requested": request.action},
            "target": {"state": _STATE_NAMES[target], "rule": self.target, "requested": request.target},
            "party": {"state": _STATE_NAMES[party], "rule": self.assignee, "requested": request.assignee},
            "refinements": [r.explain(request, state) for r in self.refinements()],
        }


class CompiledDuty(CompiledRule):
    __slots__ = ("precondition",)

    def __init__(self, duty: Duty, options: Options) -> None:
        super().__init__(duty, options)
        self.precondition = _is_precondition(duty, options.duty_mode)

    def status(self, request: Request, state: State) -> tuple[bool, str]:
        """(active, deontic state). Unknown duty constraints keep the duty active (fail closed)."""
        active = all(t(request, state) is not False for t in self.tests)
        return active, state.duty_states.get(self.key, "not-set") if active else "not-set"

    def blocks(self, request: Request, state: State) -> bool:
        active, deontic = self.status(request, state)
        if not active:
            return False
        return deontic == "violated" or (self.precondition and deontic != "fulfilled")

    def report(self, request: Request, state: State) -> dict[str, Any]:
        active, deontic = self.status(request, state)
        return {"kind": self.kind, "uid": self.uid, "pointer": self.rule.pointer, "action": self.action,
                "activation": "active" if active else "inactive", "deonticState": deontic,
                "precondition": self.precondition, "blocks": self.blocks(request, state),
                "constraints": [c.explain(request, state) for c in self.constraints],
                "refinements": [r.explain(request, state) for r in self.refinements()]}


def _is_precondition(duty: Duty, mode: DutyMode) -> bool:
    if mode is DutyMode.PRECONDITION:
        return True
    if mode is DutyMode.EVENTUAL:
        return False
    if canonical_action(duty.action.iri) in _PRECONDITION_ACTIONS:
        return True
    return any(isinstance(c, Constraint) and c.left_operand == ODRL + "event" and c.operator == ODRL + "lt"
               for c in duty.constraints)


# -- compiled policy -------------------------------------------------------------------------------------------------
class CompiledPolicy:
    """A policy ready to evaluate: `decide` answers yes/no fast, `evaluate` adds the compliance report."""

    def __init__(self, policy: Policy, options: Options | None = None) -> None:
        self.policy = policy
        self.options = options or Options()
        self.permissions = tuple(CompiledRule(r, self.options) for r in policy.permissions)
        self.prohibitions = tuple(CompiledRule(r, self.options) for r in policy.prohibitions)
        self.obligations = tuple(CompiledDuty(r, self.options) for r in policy.obligations)

    def decide(self, request: Request, state: State) -> bool:
        if request.action is None:
            granted = [r for r in self.permissions if r.applies(request, state) and r.active(request, state)
                       and not any(d.blocks(request, state) for d in r.duties)]
            forbidden = [r for r in self.prohibitions if r.applies(request, state) and r.active(request, state)]
            permitted, prohibited = _weigh_without_action(granted, forbidden)
        else:
            permitted = False
            for rule in self.permissions:
                if rule.applies(request, state) and rule.active(request, state) and not any(
                        d.blocks(request, state) for d in rule.duties):
                    permitted = True
                    break
            prohibited = False
            for rule in self.prohibitions:
                if rule.applies(request, state) and rule.active(request, state):
                    prohibited = True
                    break
        if self.obligations and any(o.applies_to_party(request, state) and o.status(request, state)[1] ==
                                    "violated" for o in self.obligations):
            return False
        return self._combine(permitted, prohibited)[0]

    def _combine(self, permitted: bool, prohibited: bool) -> tuple[bool, str]:
        if self.options.behaviour is Behaviour.OPEN and not prohibited:
            return True, "open behaviour: nothing prohibits the request"
        if permitted and prohibited:
            strategy = self.policy.conflict.value
            if strategy == "perm":
                return True, "a permission and a prohibition both apply; conflict strategy perm: the permission wins"
            if strategy == "prohibit":
                return False, ("a permission and a prohibition both apply; conflict strategy prohibit: the "
                               "prohibition wins")
            return False, ("a permission and a prohibition both apply and the conflict strategy is invalid (the "
                           "ODRL default): the policy is void")
        if prohibited:
            return False, "an active prohibition applies"
        if permitted:
            return True, "an applicable permission is active"
        return False, "no applicable permission is active (closed world: what is not permitted is denied)"

    def evaluate(self, request: Request, state: State) -> Decision:
        rules: list[dict[str, Any]] = []
        reasons: list[str] = []
        obligations: list[dict[str, Any]] = []
        permitted = prohibited = violated = False
        granted: list[CompiledRule] = []
        forbidden: list[CompiledRule] = []
        for rule in self.permissions:
            report = self._rule_report(rule, request, state)
            rules.append(report)
            if report["applicable"] and report["activation"] == "active":
                blocking = [d for d in report["duties"] if d["blocks"]]
                if blocking:
                    report["controlState"] = "deny"
                    for duty in blocking:
                        why = "violated" if duty["deonticState"] == "violated" else "not yet fulfilled"
                        reasons.append(f"{rule.kind} {rule.key}: duty {duty['uid'] or duty['pointer']} "
                                       f"({local_name(duty['action'])}) is {why}")
                else:
                    report["controlState"] = "permit"
                    permitted = True
                    granted.append(rule)
                    obligations.extend(d for d in report["duties"] if d["activation"] == "active"
                                       and d["deonticState"] != "fulfilled")
            elif report["applicable"]:
                report["controlState"] = "deny"
                reasons.append(f"{rule.kind} {rule.key} is not active: " + _failed(report["constraints"]))
        for rule in self.prohibitions:
            report = self._rule_report(rule, request, state)
            rules.append(report)
            if report["applicable"] and report["activation"] == "active":
                prohibited = True
                forbidden.append(rule)
                infringed = state.duty_states.get(rule.key) == "violated"
                report["deonticState"] = "violated" if infringed else "not-set"
                if infringed:
                    obligations.extend(report["duties"])
                reasons.append(f"prohibition {rule.key} applies and is active")
        for duty in self.obligations:
            report = duty.report(request, state)
            report["applicable"] = duty.applies_to_party(request, state)
            rules.append(report)
            if report["applicable"] and report["deonticState"] == "violated":
                violated = True
                reasons.append(f"obligation {duty.key} ({local_name(duty.action)}) is violated")
                obligations.extend(c.report(request, state) for c in duty.duties)
            elif report["applicable"] and report["activation"] == "active" and report["deonticState"] != "fulfilled":
                obligations.append(report)
        if request.action is None and forbidden:
            for rule in forbidden:
                if granted and not any(_covers(rule.action, p.action) for p in granted):
                    reasons.append(f"prohibition {rule.key} forbids {local_name(rule.action)}, narrower than what "
                                   "is permitted: it binds when that action is requested")
            permitted, prohibited = _weigh_without_action(granted, forbidden)
        decision, why = self._combine(permitted, prohibited)
        if violated:
            decision, why = False, "a policy obligation is violated"
        reasons.insert(0, why)
        report = {
            "policy": self.policy.uid, "decision": "permit" if decision else "deny",
            "conflict": self.policy.conflict.value, "dutyMode": self.options.duty_mode.value,
            "request": {"action": request.action, "target": request.target, "assignee": request.assignee,
                        "context": {k: to_json(v) for k, v in request.context.items()}},
            "rules": rules, "obligations": obligations if decision else [], "reasons": reasons,
        }
        return Decision(permitted=decision, reasons=tuple(reasons), report=report,
                        obligations=tuple(obligations) if decision else ())

    def _rule_report(self, rule: CompiledRule, request: Request, state: State) -> dict[str, Any]:
        premises = rule.premises(request, state)
        applicable = rule.applies(request, state)
        constraints = [c.explain(request, state) for c in rule.constraints]
        active = all(c["state"] == SATISFIED for c in constraints)
        return {"kind": rule.kind, "uid": rule.uid, "pointer": rule.rule.pointer, "action": rule.action,
                "target": rule.target, "assignee": rule.assignee, "applicable": applicable,
                "activation": ("active" if active else "inactive"), "premises": premises,
                "constraints": constraints, "duties": [d.report(request, state) for d in rule.duties]}


def _covers(prohibited_action: str | None, permitted_action: str | None) -> bool:
    """A prohibition takes away a permission only if it forbids the same action or a broader one."""
    if not prohibited_action:
        return True
    if not permitted_action:
        return False
    return prohibited_action in action_ancestors(permitted_action)


def _weigh_without_action(granted: list[CompiledRule], forbidden: list[CompiledRule]) -> tuple[bool, bool]:
    """(permitted, prohibited) when the request names no action ("may this party have this offer at all?").

    "permit use, prohibit distribute" still grants something, so it is no conflict here; the prohibition binds when
    a later request names `distribute`. Only a prohibition as broad as every active permission conflicts.
    """
    if not forbidden:
        return bool(granted), False
    if not granted:
        return False, True
    if any(not any(_covers(q.action, p.action) for q in forbidden) for p in granted):
        return True, False
    return True, True


def _failed(constraints: list[dict[str, Any]]) -> str:
    return "; ".join(f"{c.get('pointer')}: {c['state']} ({c.get('reason', c.get('logicalOperator'))})"
                     for c in constraints if c["state"] != SATISFIED) or "a constraint is not satisfied"


def compile_policy(policy: Policy, options: Options | None = None) -> CompiledPolicy:
    return CompiledPolicy(policy, options)


def describe_action(action: Action) -> str:
    return local_name(action.iri)
