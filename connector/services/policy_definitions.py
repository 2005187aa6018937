"""Policy definitions: named ODRL policies that contract definitions use as access or contract policy.

Policies are stored in the DSP 2025-1 compact shape (unprefixed `permission`, `action`, `constraint`, ...), the
shape the policy engine evaluates and the catalog advertises; the management edge converts whatever JSON-LD a
client sent into it before calling here. A policy is checked twice before it is stored: a shallow shape check
(policy type, rules and constraints are objects in lists), then the ODRL validator (`policies.validate`): its
errors refuse the policy, naming each JSON pointer and the fix; its warnings (`review`) do not block. A policy a
contract definition uses cannot be deleted (as in EDC): the definition would then offer nothing, silently.

    PolicyDefinitionError
    ├── PolicyDefinitionNotFoundError   no definition with that id
    ├── PolicyDefinitionExistsError     create with an id already taken
    ├── PolicyDefinitionInUseError      delete of a policy a contract definition uses
    └── InvalidPolicyError              the policy is malformed (`pointer` names where)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from connector.persistence.tables import ContractDefinitionRow, PolicyDefinitionRow
from connector.services.runtime import Runtime
from policies import Issue, validate

POLICY_TYPES = ("Set", "Offer", "Agreement", "Policy")
RULE_KEYS = ("permission", "prohibition", "obligation")
_NESTED_RULES = ("duty", "remedy", "consequence")
_LOGICAL = ("and", "or", "xone", "andSequence")
# Validator findings that do not apply to a stored definition: the definition's own @id names the policy (offers
# and agreements made from it get ids of their own).
_NOT_FOR_DEFINITIONS = frozenset({"missing-id"})


class PolicyDefinitionError(Exception):
    """Base class of the errors this module raises."""


class PolicyDefinitionNotFoundError(PolicyDefinitionError):
    def __init__(self, definition_id: str) -> None:
        self.definition_id = definition_id
        super().__init__(f"policy definition {definition_id} does not exist")


class PolicyDefinitionExistsError(PolicyDefinitionError):
    def __init__(self, definition_id: str) -> None:
        self.definition_id = definition_id
        super().__init__(f"policy definition {definition_id} already exists; update it with PUT or choose "
                         "another @id")


class PolicyDefinitionInUseError(PolicyDefinitionError):
    def __init__(self, definition_id: str, contract_definition_id: str) -> None:
        self.definition_id = definition_id
        self.contract_definition_id = contract_definition_id
        super().__init__(f"policy definition {definition_id} cannot be deleted because contract definition "
                         f"{contract_definition_id} uses it; delete or change that contract definition first")


class InvalidPolicyError(PolicyDefinitionError):
    def __init__(self, pointer: str, problem: str, issues: tuple[dict[str, str], ...] = ()) -> None:
        self.pointer = pointer
        self.problem = problem
        self.issues = issues
        """Every blocking finding of the validator (pointer, problem, fix, ...), when it found them."""
        super().__init__(f"{pointer} {problem}")

    @classmethod
    def from_issues(cls, errors: list[Issue], *, pointer: str) -> InvalidPolicyError:
        found = tuple({**e.to_json(), "pointer": pointer + e.pointer} for e in errors)
        first = found[0]
        others = "".join(f"; also {i['pointer']}: {i['problem']} (fix: {i['fix']})" for i in found[1:])
        return cls(first["pointer"], f"{first['problem']} (fix: {first['fix']}){others}", found)


_EMPTY_POLICY_FIX = ('add a rule; to let everyone use the asset write "permission": [{"action": "use"}] (EDC reads '
                     "an empty policy as allow-all, ODRL as permitting nothing, so Sovra refuses it)")


def review(policy: Mapping[str, Any]) -> list[Issue]:
    """What the ODRL validator finds in a policy in stored (DSP compact) shape, as it applies to a definition."""
    return [replace(i, fix=_EMPTY_POLICY_FIX) if i.code == "no-rules" else i
            for i in validate(policy) if i.code not in _NOT_FOR_DEFINITIONS]


def check_policy(policy: Any, *, pointer: str = "/policy") -> dict[str, Any]:
    """A policy fit to store: `check_shape`, then no error from the ODRL validator (warnings pass)."""
    checked = check_shape(policy, pointer=pointer)
    errors = [i for i in review(checked) if i.severity == "error"]
    if errors:
        raise InvalidPolicyError.from_issues(errors, pointer=pointer)
    return checked


def check_shape(policy: Any, *, pointer: str = "/policy") -> dict[str, Any]:
    """Return the policy with its `@type` defaulted to Set; raise InvalidPolicyError naming the JSON pointer.

    Shape only: a peer's offer may use left operands our engine does not know, and a consumer may still ask
    for it (the provider judges its own policy)."""
    if not isinstance(policy, Mapping):
        raise InvalidPolicyError(pointer, "must be a JSON object (an ODRL policy)")
    checked = dict(policy)
    policy_type = checked.setdefault("@type", "Set")
    if policy_type not in POLICY_TYPES:
        raise InvalidPolicyError(f"{pointer}/@type", f"is {policy_type!r}; use one of {', '.join(POLICY_TYPES)}")
    for key in RULE_KEYS:
        _check_rules(checked.get(key), f"{pointer}/{key}")
    return checked


def _check_rules(rules: Any, pointer: str) -> None:
    if rules is None:
        return
    if not isinstance(rules, list):
        raise InvalidPolicyError(pointer, "must be a list of rules")
    for index, rule in enumerate(rules):
        here = f"{pointer}/{index}"
        if not isinstance(rule, Mapping):
            raise InvalidPolicyError(here, "must be an object (an ODRL rule with an action)")
        if rule.get("action") is None:
            raise InvalidPolicyError(f"{here}/action", "is missing; every rule needs an action such as \"use\"")
        _check_constraints(rule.get("constraint"), f"{here}/constraint")
        for key in _NESTED_RULES:
            _check_rules(rule.get(key), f"{here}/{key}")


def _check_constraints(constraints: Any, pointer: str) -> None:
    if constraints is None:
        return
    if not isinstance(constraints, list):
        raise InvalidPolicyError(pointer, "must be a list of constraints")
    for index, constraint in enumerate(constraints):
        here = f"{pointer}/{index}"
        if not isinstance(constraint, Mapping):
            raise InvalidPolicyError(here, "must be an object (leftOperand, operator, rightOperand)")
        logical = [key for key in _LOGICAL if key in constraint]
        if logical:
            _check_constraints(constraint[logical[0]], f"{here}/{logical[0]}")
        elif "leftOperand" not in constraint or "operator" not in constraint:
            raise InvalidPolicyError(here, "needs leftOperand and operator (or one of and, or, xone, andSequence)")


def get(uow: Session, definition_id: str) -> PolicyDefinitionRow:
    row = uow.get(PolicyDefinitionRow, definition_id)
    if row is None:
        raise PolicyDefinitionNotFoundError(definition_id)
    return row


def create(uow: Session, rt: Runtime, *, definition_id: str | None, policy: Any,
           private_properties: Mapping[str, Any]) -> PolicyDefinitionRow:
    checked = check_policy(policy)
    definition_id = definition_id or rt.new_id()
    if uow.get(PolicyDefinitionRow, definition_id) is not None:
        raise PolicyDefinitionExistsError(definition_id)
    row = PolicyDefinitionRow(id=definition_id, policy=checked, private_properties=dict(private_properties),
                              created_at=rt.clock())
    uow.add(row)
    return row


def update(uow: Session, *, definition_id: str, policy: Any,
           private_properties: Mapping[str, Any]) -> PolicyDefinitionRow:
    """Replace the policy. Agreements already made keep the policy they copied; new offers use this one."""
    checked = check_policy(policy)
    row = get(uow, definition_id)
    row.policy = checked
    row.private_properties = dict(private_properties)
    return row


def delete(uow: Session, definition_id: str) -> None:
    row = get(uow, definition_id)
    user = uow.scalars(select(ContractDefinitionRow.id).where(or_(
        ContractDefinitionRow.access_policy_id == definition_id,
        ContractDefinitionRow.contract_policy_id == definition_id)).limit(1)).first()
    if user is not None:
        raise PolicyDefinitionInUseError(definition_id, user)
    uow.delete(row)
