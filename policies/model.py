"""The typed ODRL 2.2 model: what a policy says, after JSON-LD expansion and atomisation.

Every rule here is atomic (one action, one target, one assignee), with the policy's shared properties already
copied down (ODRL IM 2.2 §2.7). IRIs are absolute, except where the source used a term no context defined; those
stay relative and the evaluator treats them as unknown (fail closed). `pointer` is the JSON pointer of the element
in the source document, so reports and validation issues can say where a rule or constraint came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class PolicyType(StrEnum):
    POLICY = "Policy"
    SET = "Set"
    OFFER = "Offer"
    AGREEMENT = "Agreement"
    REQUEST = "Request"
    TICKET = "Ticket"
    PRIVACY = "Privacy"
    ASSERTION = "Assertion"


class ConflictStrategy(StrEnum):
    """ODRL `conflict`: which wins when a permission and a prohibition both apply. `invalid` voids the policy."""

    PERM = "perm"
    PROHIBIT = "prohibit"
    INVALID = "invalid"


class RuleKind(StrEnum):
    PERMISSION = "permission"
    PROHIBITION = "prohibition"
    OBLIGATION = "obligation"
    DUTY = "duty"
    REMEDY = "remedy"
    CONSEQUENCE = "consequence"


@dataclass(frozen=True, slots=True)
class Constraint:
    """An atomic constraint: `leftOperand operator rightOperand` (or `rightOperandReference`)."""

    left_operand: str
    operator: str
    right_operand: tuple[Any, ...] = ()
    right_operand_reference: str | None = None
    unit: str | None = None
    data_type: str | None = None
    status: Any = None
    uid: str | None = None
    pointer: str = ""


@dataclass(frozen=True, slots=True)
class LogicalConstraint:
    """`and`, `or`, `xone` or `andSequence` over other constraints (order kept from the source array)."""

    operator: str
    constraints: tuple[Constraint | LogicalConstraint, ...]
    uid: str | None = None
    pointer: str = ""


AnyConstraint = Constraint | LogicalConstraint


@dataclass(frozen=True, slots=True)
class Action:
    iri: str
    refinements: tuple[AnyConstraint, ...] = ()


@dataclass(frozen=True, slots=True)
class Asset:
    """A target asset, or an AssetCollection (members are those `partOf` it, narrowed by `refinements`)."""

    uid: str | None
    collection: bool = False
    source: str | None = None
    refinements: tuple[AnyConstraint, ...] = ()


@dataclass(frozen=True, slots=True)
class Party:
    """A party, or a PartyCollection (members are those `partOf` it, narrowed by `refinements`)."""

    uid: str | None
    collection: bool = False
    source: str | None = None
    refinements: tuple[AnyConstraint, ...] = ()


@dataclass(frozen=True, slots=True)
class Duty:
    """A duty on a permission, a policy-level obligation, a remedy or a consequence."""

    kind: RuleKind
    action: Action
    uid: str | None = None
    target: Asset | None = None
    assigner: Party | None = None
    assignee: Party | None = None
    constraints: tuple[AnyConstraint, ...] = ()
    consequences: tuple[Duty, ...] = ()
    pointer: str = ""


Obligation = Duty


@dataclass(frozen=True, slots=True)
class Permission:
    action: Action
    uid: str | None = None
    target: Asset | None = None
    assigner: Party | None = None
    assignee: Party | None = None
    constraints: tuple[AnyConstraint, ...] = ()
    duties: tuple[Duty, ...] = ()
    pointer: str = ""
    kind: RuleKind = RuleKind.PERMISSION


@dataclass(frozen=True, slots=True)
class Prohibition:
    action: Action
    uid: str | None = None
    target: Asset | None = None
    assigner: Party | None = None
    assignee: Party | None = None
    constraints: tuple[AnyConstraint, ...] = ()
    remedies: tuple[Duty, ...] = ()
    pointer: str = ""
    kind: RuleKind = RuleKind.PROHIBITION


@dataclass(frozen=True, slots=True)
class Policy:
    uid: str | None
    type: PolicyType
    permissions: tuple[Permission, ...] = ()
    prohibitions: tuple[Prohibition, ...] = ()
    obligations: tuple[Duty, ...] = ()
    profiles: tuple[str, ...] = ()
    conflict: ConflictStrategy = ConflictStrategy.INVALID
    assigner: Party | None = None
    assignee: Party | None = None
    target: Asset | None = None
    inherit_from: tuple[str, ...] = ()
    conflict_terms: tuple[str, ...] = ()
