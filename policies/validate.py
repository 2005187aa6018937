"""Policy validation for authors: every problem with a JSON pointer, what is wrong, and how to fix it.

Three layers, reported together:
- `structure`: the DSP 2025-1 policy shape (contract-schema.json): `@id`, at least one rule, an action per rule,
  atomic constraints with leftOperand/operator/rightOperand, logical constraints with exactly one operand;
- `jsonld`: what JSON-LD expansion does to the terms: a term no context defines becomes a relative IRI (DSP's
  own context defines no left operands), and the pre-2025 W3C ODRL context maps `neq` to `odrl:neg`;
- `profile`: what the engine can evaluate: known left operands, real operators (misspellings get the closest
  match), right operands of the kind the left operand needs (a dateTime must be an xsd:dateTime), unique `@id`s.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from policies.model import AnyConstraint, Constraint, Duty, Permission, Policy, Prohibition
from policies.operands import DEFAULT_REGISTRY, OperandRegistry
from policies.parse import DocumentLoader, PolicyError, build, expand_compact, expand_jsonld, is_fast_path
from policies.values import Kind, coerce, has_timezone, is_absolute_iri, literal
from policies.vocab import C2D_CONTEXT, LEGACY_NEQ, LOGICAL_OPERATORS, ODRL, OPERATOR_IRIS, OPERATORS, local_name

_RULE_KEYS = ("permission", "prohibition", "obligation")
_NESTED_RULES = {"permission": ("duty",), "prohibition": ("remedy",), "obligation": ("consequence",),
                 "duty": ("consequence",), "remedy": (), "consequence": ()}
_ATOMIC_KEYS = ("leftOperand", "operator", "rightOperand", "rightOperandReference")


@dataclass(frozen=True, slots=True)
class Issue:
    pointer: str
    problem: str
    fix: str
    layer: str = "structure"
    severity: str = "error"
    code: str = ""

    def to_json(self) -> dict[str, str]:
        return {"pointer": self.pointer, "problem": self.problem, "fix": self.fix, "layer": self.layer,
                "severity": self.severity, "code": self.code}


def _plain(key: str) -> str:
    for prefix in ("odrl:", ODRL):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _get(node: Mapping[str, Any], key: str) -> Any:
    for candidate in (key, "odrl:" + key, ODRL + key):
        if candidate in node:
            return node[candidate]
    return None


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _ptr(base: str, *parts: Any) -> str:
    return base + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


# -- structure -------------------------------------------------------------------------------------------------------
def _structure(doc: Any) -> Iterator[Issue]:
    if not isinstance(doc, Mapping):
        yield Issue("", "the policy is not a JSON object", "send one JSON object with @id and permission",
                    code="not-an-object")
        return
    if not (doc.get("@id") or _get(doc, "uid")):
        yield Issue("/@id", "the policy has no @id", 'add "@id": "urn:uuid:<a fresh uuid>"', code="missing-id")
    if not any(_items(_get(doc, k)) for k in _RULE_KEYS):
        yield Issue("/permission", "the policy has no permission, prohibition or obligation",
                    'add at least one rule, e.g. "permission": [{"action": "use"}]', code="no-rules")
    for key in _RULE_KEYS:
        for i, rule in enumerate(_items(_get(doc, key))):
            yield from _rule(rule, key, _ptr("", key, i))


def _rule(rule: Any, kind: str, pointer: str) -> Iterator[Issue]:
    if not isinstance(rule, Mapping):
        yield Issue(pointer, f"a {kind} must be an object", f'write {{"action": "use"}} for the {kind}',
                    code="rule-not-object")
        return
    if _get(rule, "action") in (None, [], ""):
        yield Issue(_ptr(pointer, "action"), f"the {kind} has no action",
                    'add "action": "use" (or the narrower action it governs)', code="missing-action")
    for i, constraint in enumerate(_items(_get(rule, "constraint"))):
        yield from _constraint(constraint, _ptr(pointer, "constraint", i))
    for nested in _NESTED_RULES.get(kind, ()):
        for i, duty in enumerate(_items(_get(rule, nested))):
            yield from _rule(duty, nested, _ptr(pointer, nested, i))


def _constraint(node: Any, pointer: str) -> Iterator[Issue]:
    if not isinstance(node, Mapping):
        yield Issue(pointer, "a constraint must be an object", 'write {"leftOperand": ..., "operator": ..., '
                    '"rightOperand": ...}', code="constraint-not-object")
        return
    keys = {_plain(k) for k in node}
    logical = [k for k in LOGICAL_OPERATORS if k in keys]
    if logical:
        if len(logical) > 1 or keys & {"leftOperand", "operator", "rightOperand"}:
            yield Issue(pointer, f"a logical constraint takes exactly one of and/or/xone/andSequence and nothing "
                                 f"else; found {sorted(keys - {'@id', '@type', 'uid'})}",
                        "split it into nested logical constraints", code="logical-multiplicity")
        for op in logical:
            members = _items(_get(node, op))
            if not members:
                yield Issue(_ptr(pointer, op), f"{op} has no constraints", f"list at least one constraint in {op}",
                            code="logical-empty")
            for i, member in enumerate(members):
                yield from _constraint(member, _ptr(pointer, op, i))
        return
    if not keys & set(_ATOMIC_KEYS):
        found = sorted(keys - {"@id", "@type", "uid"})
        yield Issue(pointer, f"not a constraint: it has neither leftOperand/operator/rightOperand nor one of "
                             f"and/or/xone/andSequence (found {found})",
                    'write {"leftOperand": "dateTime", "operator": "lteq", "rightOperand": "..."} or '
                    '{"and": [...]}', code="not-a-constraint")
        return
    for key, example in (("leftOperand", '"dateTime"'), ("operator", '"eq"')):
        if key not in keys:
            yield Issue(_ptr(pointer, key), f"the constraint has no {key}", f"add \"{key}\": {example}",
                        code=f"missing-{key}")
    if "rightOperand" not in keys and "rightOperandReference" not in keys:
        yield Issue(_ptr(pointer, "rightOperand"), "the constraint has no rightOperand",
                    'add "rightOperand": the value to compare with', code="missing-rightOperand")


# -- duplicate ids ---------------------------------------------------------------------------------------------------
def _duplicate_ids(doc: Any) -> Iterator[Issue]:
    seen: dict[str, str] = {}

    def walk(value: Any, pointer: str) -> Iterator[Issue]:
        if isinstance(value, Mapping):
            node_id = value.get("@id") if "@id" in value else _get(value, "uid")
            if isinstance(node_id, str) and len(value) > 1:
                if node_id in seen:
                    yield Issue(_ptr(pointer, "@id"), f"@id {node_id} is already used at {seen[node_id] or '/'}",
                                "give every rule and constraint its own @id (or drop the @id)",
                                layer="profile", code="duplicate-id")
                else:
                    seen[node_id] = pointer
            for key, item in value.items():
                if key != "@context":
                    yield from walk(item, _ptr(pointer, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from walk(item, _ptr(pointer, i))

    yield from walk(doc, "")


# -- JSON-LD ---------------------------------------------------------------------------------------------------------
def _raw_pointers(doc: Any, key: str, value: str) -> list[str]:
    """Where in the source `key` has the string `value` (to place an issue found after expansion)."""
    found: list[str] = []

    def walk(node: Any, pointer: str) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                here = _ptr(pointer, k)
                if _plain(k) == key and (v == value or (isinstance(v, list) and value in v)):
                    found.append(here)
                walk(v, here)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, _ptr(pointer, i))

    walk(doc, "")
    return found or ["/@context"]


def _expanded_terms(value: Any, out: dict[str, set[str]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            name = key[len(ODRL):] if key.startswith(ODRL) else None
            if name in ("leftOperand", "operator", "action"):
                for v in _items(item):
                    if isinstance(v, dict) and "@id" in v:
                        out.setdefault(name, set()).add(v["@id"])
            _expanded_terms(item, out)
    elif isinstance(value, list):
        for item in value:
            _expanded_terms(item, out)


def _jsonld(doc: Any, expanded: list[dict[str, Any]]) -> Iterator[Issue]:
    terms: dict[str, set[str]] = {}
    _expanded_terms(expanded, terms)
    for key, values in terms.items():
        for iri in sorted(values):
            if iri == LEGACY_NEQ:
                for pointer in _raw_pointers(doc, key, "neq") or ["/@context"]:
                    yield Issue(pointer, "the ODRL context in @context maps \"neq\" to odrl:neg (the W3C context "
                                         "bug fixed on 2025-04-10), so other processors read a non-existent "
                                         "operator", "use a corrected ODRL context or write \"odrl:neq\"; Sovra "
                                                     "reads odrl:neg as neq", layer="jsonld", code="legacy-neg")
            elif not is_absolute_iri(iri):
                for pointer in _raw_pointers(doc, key, iri):
                    yield Issue(pointer, f"\"{iri}\" is not defined by any context in @context, so it expands to "
                                         f"a relative IRI and means nothing",
                                f"add the context that defines it (for ODRL and Sovra terms: {C2D_CONTEXT}), or "
                                f"write the full IRI, e.g. \"odrl:{iri}\"", layer="jsonld", code="relative-iri")


# -- profile ---------------------------------------------------------------------------------------------------------
def _constraints_of(policy: Policy) -> Iterator[Constraint]:
    def walk(items: tuple[AnyConstraint, ...]) -> Iterator[Constraint]:
        for item in items:
            if isinstance(item, Constraint):
                yield item
            else:
                yield from walk(item.constraints)

    def rule(r: Permission | Prohibition | Duty) -> Iterator[Constraint]:
        yield from walk(r.constraints)
        yield from walk(r.action.refinements)
        for entity in (r.target, r.assignee):
            if entity is not None:
                yield from walk(entity.refinements)
        nested = r.duties if isinstance(r, Permission) else r.remedies if isinstance(r, Prohibition) \
            else r.consequences
        for d in nested:
            yield from rule(d)

    seen: set[str] = set()
    for r in (*policy.permissions, *policy.prohibitions, *policy.obligations):
        for c in rule(r):
            if c.pointer not in seen:
                seen.add(c.pointer)
                yield c


def _profile(policy: Policy, registry: OperandRegistry) -> Iterator[Issue]:
    known = {local_name(i): i for i in registry.names()}
    for c in _constraints_of(policy):
        operator = c.operator
        name = local_name(operator) if operator.startswith(ODRL) else operator
        if operator not in OPERATOR_IRIS and operator != LEGACY_NEQ:
            close = difflib.get_close_matches(name, OPERATORS, n=1, cutoff=0.5)
            hint = f'did you mean "{close[0]}"?' if close else f"use one of {', '.join(OPERATORS)}"
            extra = " (term-lteq is a DSP schema value, not an ODRL 2.2 operator)" if name == "term-lteq" else ""
            yield Issue(_ptr(c.pointer, "operator"), f"unknown operator \"{name}\"{extra}", hint,
                        layer="profile", code="unknown-operator")
        spec = registry.get(c.left_operand)
        if spec is None:
            short = local_name(c.left_operand)
            close = difflib.get_close_matches(short, list(known), n=1, cutoff=0.6)
            hint = f'did you mean "{close[0]}" ({known[close[0]]})?' if close else \
                f"use a left operand the engine knows: {', '.join(sorted(known))}, or register one"
            yield Issue(_ptr(c.pointer, "leftOperand"), f"unknown left operand {c.left_operand}: no function "
                                                        "evaluates it, so the constraint can never be satisfied",
                        hint, layer="profile", code="unknown-left-operand")
            continue
        for value in c.right_operand:
            raw, datatype = literal(value)
            try:
                coerce(value, spec.kind)
            except ValueError as exc:
                needed = {Kind.DATETIME: "an xsd:dateTime", Kind.DURATION: "an xsd:duration",
                          Kind.NUMBER: "a number", Kind.BOOLEAN: "an xsd:boolean"}.get(spec.kind, spec.kind.value)
                yield Issue(_ptr(c.pointer, "rightOperand"), f"{local_name(spec.iri)} needs {needed}: {exc}",
                            _fix_for(spec.kind), layer="profile", code="wrong-value-type")
                continue
            if spec.kind is Kind.DATETIME and isinstance(raw, str) and len(raw) > 10 and not has_timezone(raw):
                yield Issue(_ptr(c.pointer, "rightOperand"), f"{raw!r} has no time zone, so it is read as UTC",
                            "add Z or an offset, e.g. 2026-01-31T23:59:59Z", layer="profile", severity="warning",
                            code="no-timezone")


def _fix_for(kind: Kind) -> str:
    return {
        Kind.DATETIME: 'write {"@value": "2026-01-31T23:59:59Z", "@type": "xsd:dateTime"} (or the plain string)',
        Kind.DURATION: "write an xsd:duration such as P30D or PT12H",
        Kind.NUMBER: "write a JSON number",
        Kind.BOOLEAN: "write true or false",
    }.get(kind, "write a string or an IRI")


def validate(doc: Any, *, document_loader: DocumentLoader | None = None,
             registry: OperandRegistry = DEFAULT_REGISTRY) -> list[Issue]:
    """All issues found in `doc` (empty when the policy is valid and fully evaluable)."""
    issues = list(_structure(doc))
    issues.extend(_duplicate_ids(doc))
    if not isinstance(doc, Mapping):
        return issues
    try:
        if is_fast_path(doc):
            expanded = [expand_compact(doc)]
        else:
            expanded = expand_jsonld(doc, document_loader)
            issues.extend(_jsonld(doc, expanded))
        policy = build(expanded)
    except PolicyError as exc:
        if not any(i.layer == "structure" for i in issues):
            issues.append(Issue(exc.pointer or "/", exc.problem, "see the problem text", layer="jsonld"
                                if exc.pointer == "/@context" else "structure", code="unreadable"))
        return issues
    issues.extend(_profile(policy, registry))
    return issues
