"""Namespaces, operators and the bundled vocabularies (ODRL action hierarchy, DPV purposes) the engine reasons with.

The hierarchies are data files in `policies/resources/`, read once; nothing here is fetched.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from policies.resources_io import resource_json

ODRL = "http://www.w3.org/ns/odrl/2/"
C2D = "https://w3id.org/sovra/c2d/v1#"
C2D_PROFILE = "https://w3id.org/sovra/c2d/v1"
C2D_CONTEXT = "https://w3id.org/sovra/c2d/v1/context.jsonld"
PARTICIPANT = "https://w3id.org/sovra/participant/v1#"
DPV = "https://w3id.org/dpv#"
RDF_VALUE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#value"
RDF_TYPE = "@type"

OPERATORS = ("eq", "neq", "lt", "lteq", "gt", "gteq", "isA", "hasPart", "isPartOf", "isAllOf", "isAnyOf",
             "isNoneOf")
OPERATOR_IRIS = {ODRL + name: name for name in OPERATORS}
# The W3C ODRL context mapped "neq" to odrl:neg until 2025-04-10 (w3c/poe#311); stale copies still ship it.
LEGACY_NEQ = ODRL + "neg"
LOGICAL_OPERATORS = ("and", "or", "xone", "andSequence")
SET_OPERATORS = frozenset({"isAllOf", "isAnyOf", "isNoneOf"})
ORDER_OPERATORS = frozenset({"lt", "lteq", "gt", "gteq"})

POLICY_TYPES = {ODRL + t: t for t in ("Policy", "Set", "Offer", "Agreement", "Request", "Ticket", "Privacy",
                                      "Assertion")}
CONFLICT_TERMS = {ODRL + t: t for t in ("perm", "prohibit", "invalid")}

# Prefixes a plain-JSON (DSP compact) policy may use without declaring them.
KNOWN_PREFIXES = {
    "odrl": ODRL, "c2d": C2D, "participant": PARTICIPANT, "dpv": DPV,
    "xsd": "http://www.w3.org/2001/XMLSchema#", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "cx-policy": "https://w3id.org/catenax/2025/9/policy/", "dct": "http://purl.org/dc/terms/",
}


@cache
def _actions() -> dict[str, Any]:
    """The bundled ODRL action vocabulary, read once."""
    return resource_json("odrl-actions.json")


def _iri(term: str) -> str:
    return term if ":" in term else ODRL + term


@cache
def action_parents() -> dict[str, str]:
    """action IRI -> the IRI of the action it is `odrl:includedIn`."""
    data = _actions()
    return {_iri(child): _iri(parent) for child, parent in data["includedIn"].items()}


@cache
def action_exact_matches() -> dict[str, str]:
    """Deprecated action IRI -> its replacement (`skos:exactMatch`), e.g. odrl:write -> odrl:modify."""
    data = _actions()
    return {_iri(old): _iri(new) for old, new in data["exactMatch"].items()}


@cache
def known_actions() -> frozenset[str]:
    data = _actions()
    names = set(data["roots"]) | set(data["includedIn"]) | set(data["exactMatch"]) | set(data["implies"])
    return frozenset(_iri(n) for n in names)


def canonical_action(iri: str) -> str:
    return action_exact_matches().get(iri, iri)


@cache
def action_ancestors(iri: str) -> frozenset[str]:
    """The action itself, its replacement if deprecated, and every action it is transitively includedIn."""
    current = canonical_action(iri)
    found = {iri, current}
    parents = action_parents()
    while current in parents and parents[current] not in found:
        current = parents[current]
        found.add(current)
    return frozenset(found)


@cache
def purpose_broader() -> dict[str, tuple[str, ...]]:
    data = resource_json("dpv-purposes.json")
    ns = data["namespace"]
    return {ns + child: tuple(ns + p for p in parents) for child, parents in data["broader"].items()}


@cache
def purpose_ancestors(iri: str) -> frozenset[str]:
    """`iri` and every DPV purpose it is (transitively) a kind of, within the bundled DPV subset."""
    found = {iri}
    pending = [iri]
    broader = purpose_broader()
    while pending:
        for parent in broader.get(pending.pop(), ()):
            if parent not in found:
                found.add(parent)
                pending.append(parent)
    return frozenset(found)


def local_name(iri: str) -> str:
    for sep in ("#", "/", ":"):
        if sep in iri:
            iri = iri.rsplit(sep, 1)[1]
    return iri
