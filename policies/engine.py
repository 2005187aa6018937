"""The one seam through which the connector asks "is this allowed?" at every step.

The connector calls `PolicyEngine.evaluate` in four scopes (catalog, negotiation, transfer, monitor) and never
interprets ODRL itself, so replacing the engine changes no caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class Scope(StrEnum):
    CATALOG = "catalog"
    NEGOTIATION = "negotiation"
    TRANSFER = "transfer"
    MONITOR = "monitor"
    COMPUTE = "compute"


@dataclass(frozen=True, slots=True)
class PolicyContext:
    """What the engine may know about the request: who asks, when, and facts the shell gathered."""

    scope: Scope
    participant_id: str
    now: datetime
    agreement_start: datetime | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    # Optional, for callers that know more (all default to "not known"):
    action: str | None = None
    """The requested action IRI (or ODRL term); None means "the use each rule governs"."""
    target: str | None = None
    """The requested asset; None means the asset the policy is attached to."""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    """Request parameters by left operand (`purpose`, `c2d:algorithm`, ... or full IRIs)."""
    state: Mapping[str, Any] = field(default_factory=dict)
    """Further state of the world: `use_count`, `dp_epsilon_spent`, `consent_given`, `part_of`, `duty_states`,
    `facts` (see `policies.operands.State`)."""


@dataclass(frozen=True, slots=True)
class Decision:
    permitted: bool
    reasons: tuple[str, ...] = ()
    report: Mapping[str, Any] | None = None
    """The JSON-serialisable compliance report (per rule and constraint), when the engine produced one."""
    obligations: tuple[Mapping[str, Any], ...] = ()
    """Duties the permit binds the requester to (eventual duties, due obligations)."""

    def explain(self) -> str:
        return "; ".join(self.reasons) or ("permitted" if self.permitted else "denied")


class PolicyEngine(Protocol):
    def evaluate(self, policy: Mapping[str, Any], context: PolicyContext) -> Decision:
        """Decide one policy (DSP compact JSON-LD shape) for one request; unknown terms must deny."""
        ...
