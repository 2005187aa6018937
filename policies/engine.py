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


@dataclass(frozen=True, slots=True)
class Decision:
    permitted: bool
    reasons: tuple[str, ...] = ()

    def explain(self) -> str:
        return "; ".join(self.reasons) or ("permitted" if self.permitted else "denied")


class PolicyEngine(Protocol):
    def evaluate(self, policy: Mapping[str, Any], context: PolicyContext) -> Decision:
        """Decide one policy (DSP compact JSON-LD shape) for one request; unknown terms must deny."""
        ...
