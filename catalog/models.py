"""What a provider offers: assets (public properties plus a private data address) and contract definitions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

EDC_NS = "https://w3id.org/edc/v0.0.1/ns/"


@dataclass(frozen=True, slots=True)
class Criterion:
    """One asset-selector term, EDC style: `operandLeft operator operandRight`."""

    operand_left: str
    operator: str
    operand_right: Any


@dataclass(frozen=True, slots=True)
class Asset:
    id: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    private_properties: Mapping[str, Any] = field(default_factory=dict)
    data_address: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContractDefinition:
    """Access policy decides who sees the assets; contract policy is what they may agree to."""

    id: str
    access_policy_id: str
    contract_policy_id: str
    assets_selector: tuple[Criterion, ...] = ()
    auto_agree: bool = True
