"""The fixed data the TCK configuration refers to: datasets, one contract definition, finalized agreements.

    datasets   ACN0101...ACN0304 (offered as `CD123:<dataset>:456`), ACNC0101...ACNC0306, CAT0101, CAT0102
               (CAT0103 must NOT exist: the TCK checks the CatalogError for it)
    agreements ATP0101...ATP0306 (we provide, the TCK consumes) and ATPC0101...ATPC0306 (we consume), finalized

Seeding is idempotent: rows that exist are left alone, so a restart on the same database changes nothing.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from connector.persistence.tables import (
    AgreementRow,
    AssetRow,
    ContractDefinitionRow,
    NegotiationRow,
    PolicyDefinitionRow,
)
from connector.services.runtime import Runtime
from connector.tck.scenarios import CONSUMER_AGREEMENTS, DATASETS, PROVIDER_AGREEMENTS
from contracts import Role
from contracts.negotiation import NegotiationState

CONTRACT_DEFINITION = "CD123"  # the TCK's offer ids read `CD123:<dataset>:456`
POLICY = "tck-use"
USE = {"@type": "Set", "permission": [{"action": "use"}]}
CATALOG_DATASETS = ("CAT0101", "CAT0102")
ABSENT_DATASET = "CAT0103"
DATA_ADDRESS = {"type": "HttpData", "baseUrl": "https://example.com/tck"}


def seed(uow: Session, rt: Runtime, *, tck_participant: str) -> None:
    """Write the seed; `tck_participant` is the TCK's participant id (the static identity's peer)."""
    now = rt.clock()
    if uow.get(PolicyDefinitionRow, POLICY) is None:
        uow.add(PolicyDefinitionRow(id=POLICY, policy=USE, private_properties={}, created_at=now))
    if uow.get(ContractDefinitionRow, CONTRACT_DEFINITION) is None:
        uow.add(ContractDefinitionRow(id=CONTRACT_DEFINITION, access_policy_id=POLICY, contract_policy_id=POLICY,
                                      assets_selector=[], auto_agree=True, created_at=now))
    for dataset in (*DATASETS, *CATALOG_DATASETS):
        if uow.get(AssetRow, dataset) is None:
            uow.add(AssetRow(id=dataset, properties={"name": f"TCK dataset {dataset}"}, private_properties={},
                             data_address=DATA_ADDRESS, created_at=now))
    ours, theirs = rt.settings.participant_id, tck_participant
    for agreement_id in PROVIDER_AGREEMENTS:
        _agreement(uow, rt, agreement_id, role=Role.PROVIDER, provider=ours, consumer=theirs)
    for agreement_id in CONSUMER_AGREEMENTS:
        _agreement(uow, rt, agreement_id, role=Role.CONSUMER, provider=theirs, consumer=ours)


def _agreement(uow: Session, rt: Runtime, agreement_id: str, *, role: Role, provider: str, consumer: str) -> None:
    """A finalized agreement and the finalized negotiation it came from (a transfer request checks both)."""
    if uow.get(AgreementRow, agreement_id) is not None:
        return
    now = rt.clock()
    negotiation_id = f"urn:tck:negotiation:{agreement_id}"
    dataset = f"dataset-{agreement_id}"
    uow.add(NegotiationRow(
        id=negotiation_id, role=role, state=NegotiationState.FINALIZED, consumer_pid=negotiation_id,
        provider_pid=negotiation_id, counter_party_id=consumer if role == Role.PROVIDER else provider,
        counter_party_address="https://tck.invalid", asset_id=dataset, contract_definition_id=CONTRACT_DEFINITION,
        offer={"@id": f"{CONTRACT_DEFINITION}:{dataset}:456", **USE}, offer_by=Role.PROVIDER,
        agreement_id=agreement_id, created_at=now, updated_at=now,
    ))
    uow.add(AgreementRow(id=agreement_id, negotiation_id=negotiation_id, role=role, provider_id=provider,
                         consumer_id=consumer, asset_id=dataset, policy={"permission": [{"action": "use"}]},
                         signed_at=now.replace(microsecond=0), finalized=True))
