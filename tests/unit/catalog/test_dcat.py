"""The DCAT dataset lists the transfer formats a consumer can ask for, Compute-PULL only where compute is offered."""

from __future__ import annotations

from catalog import dcat
from catalog.models import Asset

COMPUTE_OFFER = {"@id": "o1", "@type": "Offer", "permission": [{"action": "c2d:compute"}]}
USE_OFFER = {"@id": "o2", "@type": "Offer", "permission": [{"action": "use"}]}


def formats(*offers: dict) -> list[str]:
    asset = Asset(id="a1", properties={}, data_address={"type": "File", "path": "/x"})
    return [d["format"] for d in dcat.dataset(asset, list(offers), service_id="s")["distribution"]]


def test_a_dataset_offered_for_compute_lists_compute_pull() -> None:
    assert formats(COMPUTE_OFFER) == ["HttpData-PULL", "HttpData-PUSH", "Compute-PULL"]
    full_iri = {"permission": [{"action": {"@id": "https://w3id.org/sovra/c2d/v1#compute"}}]}
    assert "Compute-PULL" in formats(USE_OFFER, full_iri)


def test_a_dataset_offered_only_for_use_does_not() -> None:
    assert formats(USE_OFFER) == ["HttpData-PULL", "HttpData-PUSH"]
