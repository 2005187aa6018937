"""Provider side: trace a requested offer back to what we advertise, and check it is still agreeable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Table, bindparam, select, true
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
    return _definition(row.id, row.access_policy_id, row.contract_policy_id, row.assets_selector, row.auto_agree)


def _definition(definition_id: str, access_policy_id: str, contract_policy_id: str, assets_selector: list[Any],
                auto_agree: bool) -> ContractDefinition:
    selector = tuple(Criterion(c["operandLeft"], c["operator"], c.get("operandRight")) for c in assets_selector)
    return ContractDefinition(id=definition_id, access_policy_id=access_policy_id,
                              contract_policy_id=contract_policy_id, assets_selector=selector, auto_agree=auto_agree)


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
    found = uow.connection().execute(_OFFER_ROWS, {"definition": offer_id.definition_id,
                                                   "asset": offer_id.asset_id}).first()
    if found is None:
        raise OfferRejectedError(f"offer {offer.get('@id')} is not in our catalog", offer_id=str(offer.get("@id")))
    definition = _definition(found.definition_id, found.access_policy_id, found.contract_policy_id,
                             found.assets_selector, found.auto_agree)
    asset = Asset(id=found.asset_id, properties=found.properties, private_properties=found.private_properties,
                  data_address=found.data_address)
    if target is not None and target != asset.id:
        raise OfferRejectedError(
            f"offer {offer.get('@id')} is for dataset {asset.id}, not {target}", offer_id=str(offer.get("@id"))
        )
    access_policy = found.access_policy  # None when deleted: the definition then offers nothing (fail closed)
    if (not matches(definition.assets_selector, asset) or access_policy is None
            or not catalog_decision(rt, access_policy, participant_id).permitted):
        raise OfferRejectedError(f"offer {offer.get('@id')} is not in our catalog", offer_id=str(offer.get("@id")))
    contract_policy = found.contract_policy
    if contract_policy is None:
        raise OfferRejectedError(f"offer {offer.get('@id')} is no longer available", offer_id=str(offer.get("@id")))
    if not same_rules(offer, dcat.offer("", contract_policy)):
        raise OfferRejectedError(
            f"offer {offer.get('@id')} differs from the advertised policy; request the offer exactly as our "
            "catalog lists it",
            offer_id=str(offer.get("@id")),
        )
    return ResolvedOffer(definition=definition, asset=asset, contract_policy=contract_policy)


def _offer_rows() -> Select[Any]:
    """Everything an offer id names (definition, asset, both policies) in one prebuilt query: this runs for every
    contract request, and four ORM loads cost more than the rest of the request's checks together."""
    definitions: Table = ContractDefinitionRow.__table__  # type: ignore[assignment]
    assets: Table = AssetRow.__table__  # type: ignore[assignment]
    policies: Table = PolicyDefinitionRow.__table__  # type: ignore[assignment]
    access, contract = policies.alias("access"), policies.alias("contract")
    return (
        select(definitions.c.id.label("definition_id"), definitions.c.access_policy_id,
               definitions.c.contract_policy_id, definitions.c.assets_selector, definitions.c.auto_agree,
               assets.c.id.label("asset_id"), assets.c.properties, assets.c.private_properties,
               assets.c.data_address, access.c.policy.label("access_policy"),
               contract.c.policy.label("contract_policy"))
        .select_from(definitions.join(assets, true())
                     .outerjoin(access, access.c.id == definitions.c.access_policy_id)
                     .outerjoin(contract, contract.c.id == definitions.c.contract_policy_id))
        .where(definitions.c.id == bindparam("definition"), assets.c.id == bindparam("asset"))
    )


_OFFER_ROWS = _offer_rows()


def negotiation_permitted(rt: Runtime, policy: dict[str, Any], participant_id: str,
                          request_context: dict[str, Any] | None = None) -> tuple[bool, str]:
    decision = negotiation_decision(rt, policy, participant_id, request_context)
    return decision.permitted, decision.explain()
