"""Left operands as pluggable functions: where each value comes from, what kind it is, which operators fit.

A left operand is resolved from the evaluation request (what the requester declares: purpose, algorithm, ...) or
from the state of the world (what the connector knows: the clock, the agreement's start, counters, the
requester's verified claims). When the value is not there the function returns `MISSING` and the constraint is
*unknown*, which never satisfies it (fail closed); the report says which input was missing.

Register more with `DEFAULT_REGISTRY.with_operand(...)` (a new registry; registries are immutable once built).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from typing import Any

from policies.resources_io import resource_json
from policies.values import Elapsed, Kind, coerce
from policies.vocab import C2D, ODRL, PARTICIPANT, local_name, purpose_ancestors

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING", "__bool__": lambda self: False})()


@dataclass(frozen=True, slots=True)
class Request:
    """An evaluation request: who (`assignee`) wants to do what (`action`) to what (`target`), with parameters.

    `context` holds request parameters keyed by left-operand IRI or its short name (`purpose`, `algorithm`, ...).
    `action`/`target` None mean "the rule's own action/target" (the caller evaluates the policy attached to the
    asset for the use it governs, as the connector's catalog and negotiation scopes do).
    """

    action: str | None = None
    target: str | None = None
    assignee: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)

    def param(self, iri: str, short: str | None = None) -> Any:
        context = self.context
        if iri in context:
            return context[iri]
        return context.get(short or local_name(iri), MISSING)


@dataclass(frozen=True, slots=True)
class State:
    """The state of the world the caller knows; anything left None is unknown (and so never satisfies).

    - `use_count`: exercises of this agreement so far (the `count` operand adds the one being asked for);
    - `dp_epsilon_spent`: differential-privacy budget already spent on the dataset;
    - `consent_given`: whether data-subject consent covering the job is on record;
    - `claims`: verified identity claims of the requester (`membership`, `role`, `country`, ...);
    - `part_of`: collection membership facts, member -> collections (transitive);
    - `duty_states`: duty uid -> `fulfilled` | `violated` | `not-set`;
    - `facts`: further values by left-operand IRI, for operands plugged in by the caller.
    """

    now: datetime
    agreement_start: datetime | None = None
    use_count: int | None = None
    dp_epsilon_spent: float | None = None
    consent_given: bool | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    part_of: Mapping[str, Iterable[str]] = field(default_factory=dict)
    duty_states: Mapping[str, str] = field(default_factory=dict)
    facts: Mapping[str, Any] = field(default_factory=dict)


Resolver = Callable[[Request, State], Any]
Comparator = Callable[[str, Any, tuple[Any, ...]], bool]


@dataclass(frozen=True, slots=True)
class LeftOperand:
    """How one left operand is resolved and compared. `hierarchy` widens a value to its ancestors (isA etc.)."""

    iri: str
    kind: Kind
    resolve: Resolver
    source: str
    operators: frozenset[str] | None = None
    hierarchy: Callable[[str], frozenset[str]] | None = None
    compare: Comparator | None = None
    missing: str = ""


@dataclass(frozen=True)
class OperandRegistry:
    operands: Mapping[str, LeftOperand]

    def get(self, iri: str) -> LeftOperand | None:
        return self.operands.get(iri)

    def with_operand(self, operand: LeftOperand) -> OperandRegistry:
        return OperandRegistry({**self.operands, operand.iri: operand})

    def names(self) -> list[str]:
        return sorted(self.operands)


def _typed(value: Any, kind: Kind) -> Any:
    """A request/state value as `kind`; lists become frozensets (set-valued left operands)."""
    if value is MISSING or value is None:
        return MISSING
    if isinstance(value, list | tuple | set | frozenset):
        return frozenset(coerce(v, kind) for v in value)
    return coerce(value, kind)


def _param(iri: str, kind: Kind) -> Resolver:
    short = local_name(iri)

    def resolve(request: Request, state: State) -> Any:
        value = request.param(iri, short)
        if value is MISSING:
            value = state.facts.get(iri, MISSING)
        return _typed(value, kind)

    return resolve


def _claim(name: str, kind: Kind) -> Resolver:
    def resolve(request: Request, state: State) -> Any:
        return _typed(state.claims.get(name, MISSING), kind)

    return resolve


def _now(request: Request, state: State) -> Any:
    return state.now


def _elapsed(request: Request, state: State) -> Any:
    if state.agreement_start is None:
        return MISSING
    return Elapsed(state.agreement_start, state.now)


def _count(request: Request, state: State) -> Any:
    return MISSING if state.use_count is None else float(state.use_count + 1)


def _recipient(request: Request, state: State) -> Any:
    value = request.param(ODRL + "recipient")
    if value is MISSING:
        value = request.assignee
    return _typed(value, Kind.IRI)


def _epsilon_budget(request: Request, state: State) -> Any:
    per_job = _typed(request.param(C2D + "dpEpsilon"), Kind.NUMBER)
    if per_job is MISSING or state.dp_epsilon_spent is None or isinstance(per_job, frozenset):
        return MISSING
    return float(state.dp_epsilon_spent) + per_job


def _consent(request: Request, state: State) -> Any:
    return MISSING if state.consent_given is None else bool(state.consent_given)


def _consent_compare(operator: str, left: Any, right: tuple[Any, ...]) -> bool:
    """`consentRequired eq true` holds when consent is on record; `eq false` always holds."""
    if operator != "eq":
        raise ValueError("consentRequired only takes eq")
    return (not right[0]) or left is True


@cache
def regions() -> dict[str, frozenset[str]]:
    data = resource_json("regions.json")
    return {k: frozenset(v) for k, v in data.items() if not k.startswith("_")}


def region_containers(place: str) -> frozenset[str]:
    """Regions that contain `place` (transitively), from the bundled regions table."""
    found: set[str] = set()
    pending = [place]
    table = regions()
    while pending:
        item = pending.pop()
        for region, members in table.items():
            if item in members and region not in found:
                found.add(region)
                pending.append(region)
    return frozenset(found)


_ORDERED = frozenset({"eq", "neq", "lt", "lteq", "gt", "gteq"})
_SETS = frozenset({"eq", "neq", "isAnyOf", "isNoneOf", "isAllOf"})


def _operand(iri: str, kind: Kind, resolve: Resolver, source: str, operators: Iterable[str] | None = None,
             missing: str = "", **extra: Any) -> LeftOperand:
    return LeftOperand(iri=iri, kind=kind, resolve=resolve, source=source,
                       operators=frozenset(operators) if operators is not None else None,
                       missing=missing or f"the request does not give {local_name(iri)}", **extra)


def _defaults() -> list[LeftOperand]:
    return [
        _operand(ODRL + "dateTime", Kind.DATETIME, _now, "state", _ORDERED, "the state has no current time"),
        _operand(ODRL + "elapsedTime", Kind.DURATION, _elapsed, "state", {"eq", "lt", "lteq", "gt", "gteq"},
                 "elapsedTime needs the agreement's start, and the state has none"),
        _operand(ODRL + "count", Kind.NUMBER, _count, "state", _ORDERED,
                 "count needs the agreement's use counter, and the state has none"),
        _operand(ODRL + "spatial", Kind.STRING, _param(ODRL + "spatial", Kind.STRING), "request",
                 _SETS | {"isPartOf", "hasPart"}, "the request does not say where (spatial)"),
        _operand(ODRL + "purpose", Kind.IRI, _param(ODRL + "purpose", Kind.IRI), "request",
                 _SETS | {"isA"}, "the request declares no purpose", hierarchy=purpose_ancestors),
        _operand(ODRL + "recipient", Kind.IRI, _recipient, "request", _SETS,
                 "the request names no recipient and no assignee"),
        _operand(ODRL + "payAmount", Kind.NUMBER, _param(ODRL + "payAmount", Kind.NUMBER), "request", _ORDERED),
        _operand(ODRL + "resolution", Kind.NUMBER, _param(ODRL + "resolution", Kind.NUMBER), "request", _ORDERED),
        _operand(PARTICIPANT + "membership", Kind.STRING, _claim("membership", Kind.STRING), "state", _SETS,
                 "the requester's claims hold no membership"),
        _operand(PARTICIPANT + "role", Kind.STRING, _claim("role", Kind.STRING), "state", _SETS,
                 "the requester's claims hold no role"),
        _operand(PARTICIPANT + "country", Kind.STRING, _claim("country", Kind.STRING), "state",
                 _SETS | {"isPartOf"}, "the requester's claims hold no country"),
        _operand(C2D + "algorithm", Kind.STRING, _param(C2D + "algorithm", Kind.STRING), "request", _SETS,
                 "the job names no algorithm digest"),
        _operand(C2D + "algorithmSigner", Kind.IRI, _param(C2D + "algorithmSigner", Kind.IRI), "request", _SETS,
                 "the job's algorithm carries no signer DID"),
        _operand(C2D + "minAggregationSize", Kind.NUMBER, _param(C2D + "minAggregationSize", Kind.NUMBER),
                 "request", _ORDERED, "the job declares no minimum aggregation size"),
        _operand(C2D + "dpEpsilon", Kind.NUMBER, _param(C2D + "dpEpsilon", Kind.NUMBER), "request", _ORDERED,
                 "the job declares no differential-privacy epsilon"),
        _operand(C2D + "dpEpsilonBudget", Kind.NUMBER, _epsilon_budget, "state", _ORDERED,
                 "dpEpsilonBudget needs the job's epsilon and the epsilon already spent on the dataset"),
        _operand(C2D + "consentRequired", Kind.BOOLEAN, _consent, "state", {"eq"},
                 "the state does not say whether consent is on record", compare=_consent_compare),
        _operand(C2D + "outputFormat", Kind.STRING, _param(C2D + "outputFormat", Kind.STRING), "request", _SETS,
                 "the job names no output format"),
        _operand(C2D + "maxOutputBytes", Kind.NUMBER, _param(C2D + "maxOutputBytes", Kind.NUMBER), "request",
                 _ORDERED, "the job declares no output size"),
        _operand(C2D + "egress", Kind.STRING, _param(C2D + "egress", Kind.STRING), "request", _SETS,
                 "the job names no egress destination"),
    ]


DEFAULT_REGISTRY = OperandRegistry({op.iri: op for op in _defaults()})


def fact_operand(iri: str, kind: Kind, **changes: Any) -> LeftOperand:
    """A left operand read from the request parameters, else `State.facts[iri]` (handy for profile operands)."""
    return replace(_operand(iri, kind, _param(iri, kind), "request"), **changes)
