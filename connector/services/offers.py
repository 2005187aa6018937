"""Provider side: trace a requested offer back to what we advertise, and check it is still agreeable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from catalog import Asset, ContractDefinition, Criterion, dcat, matches
from connector.persistence.tables import AssetRow, ContractDefinitionRow, PolicyDefinitionRow
from connector.services.policy_scopes import catalog_decision, negotiation_decision
from connector.services.runtime import Runtime
from contracts import OfferId, OfferRejectedError
from contracts.offers import same_rules


@dataclass(frozen=True, slots=True)
class ResolvedOffer:
    definition: ContractDefinition
    asset: Asset
    contract_policy: dict[str, Any]


def to_asset(row: AssetRow) -> Asset:
    return Asset(id=row.id, properties=row.properties, private_properties=row.private_properties,
                 data_address=row.data_address)


def to_definition(row: ContractDefinitionRow) -> ContractDefinition:
    selector = tuple(
        Criterion(c["operandLeft"], c["operator"], c.get("operandRight")) for c in row.assets_selector
    )
    return ContractDefinition(id=row.id, access_policy_id=row.access_policy_id,
                              contract_policy_id=row.contract_policy_id, assets_selector=selector,
                              auto_agree=row.auto_agree)


def policy_of(uow: Session, policy_id: str) -> dict[str, Any] | None:
    row = uow.get(PolicyDefinitionRow, policy_id)
    return None if row is None else row.policy


def access_permitted(uow: Session, rt: Runtime, definition: ContractDefinition, participant_id: str) -> bool:
    policy = policy_of(uow, definition.access_policy_id)
    if policy is None:  # a definition whose access policy was deleted offers nothing (fail closed)
        return False
    return catalog_decision(rt, policy, participant_id).permitted


def resolve_offer(uow: Session, rt: Runtime, *, participant_id: str, offer: dict[str, Any],
                  target: str | None) -> ResolvedOffer:
    """Raise OfferRejectedError unless the offer is one we advertise to this participant, unchanged."""
    offer_id = OfferId.parse(str(offer.get("@id", "")))
    definition_row = uow.get(ContractDefinitionRow, offer_id.definition_id)
    asset_row = uow.get(AssetRow, offer_id.asset_id)
    if definition_row is None or asset_row is None:
        raise OfferRejectedError(f"offer {offer.get('@id')} is not in our catalog", offer_id=str(offer.get("@id")))
    definition, asset = to_definition(definition_row), to_asset(asset_row)
    if target is not None and target != asset.id:
        raise OfferRejectedError(
            f"offer {offer.get('@id')} is for dataset {asset.id}, not {target}", offer_id=str(offer.get("@id"))
        )
    if not matches(definition.assets_selector, asset) or not access_permitted(uow, rt, definition, participant_id):
        raise OfferRejectedError(f"offer {offer.get('@id')} is not in our catalog", offer_id=str(offer.get("@id")))
    contract_policy = policy_of(uow, definition.contract_policy_id)
    if contract_policy is None:
        raise OfferRejectedError(f"offer {offer.get('@id')} is no longer available", offer_id=str(offer.get("@id")))
    if not same_rules(offer, dcat.offer("", contract_policy)):
        raise OfferRejectedError(
            f"offer {offer.get('@id')} differs from the advertised policy; request the offer exactly as our "
            "catalog lists it",
            offer_id=str(offer.get("@id")),
        )
    return ResolvedOffer(definition=definition, asset=asset, contract_policy=contract_policy)


def negotiation_permitted(rt: Runtime, policy: dict[str, Any], participant_id: str,
                          request_context: dict[str, Any] | None = None) -> tuple[bool, str]:
    decision = negotiation_decision(rt, policy, participant_id, request_context)
    return decision.permitted, decision.explain()
