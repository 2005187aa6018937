"""Build DCAT datasets and catalogs in the DSP 2025-1 compact shape (catalog/catalog-schema.json).

Offers inside a catalog carry an @id and no `target`: the enclosing dataset is the target (DSP §Catalog).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from catalog.models import EDC_NS, Asset

DSP_CONTEXT = "https://w3id.org/dspace/2025/1/context.jsonld"
FORMATS = ("HttpData-PULL", "HttpData-PUSH")
COMPUTE_FORMAT = "Compute-PULL"
_COMPUTE_ACTIONS = frozenset({"c2d:compute", "https://w3id.org/sovra/c2d/v1#compute"})


def offer(offer_id: str, policy: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"@id": offer_id, "@type": "Offer"}
    for key in ("permission", "prohibition", "obligation", "profile"):
        if policy.get(key) not in (None, []):
            body[key] = policy[key]
    if "permission" not in body and "prohibition" not in body:
        body["permission"] = [{"action": "use"}]  # an empty policy allows use; the schema needs a rule
    return body


def _public_properties(asset: Asset) -> dict[str, Any]:
    """Asset properties as absolute IRIs, so they survive JSON-LD processing at the peer."""
    out: dict[str, Any] = {}
    for key, value in asset.properties.items():
        if key in ("@id", "id", "@type", EDC_NS + "id"):
            continue
        out[key if ":" in key else EDC_NS + key] = value
    return out


def dataset(asset: Asset, offers: Sequence[dict[str, Any]], *, service_id: str,
            formats: Iterable[str] | None = None) -> dict[str, Any]:
    if formats is None:
        formats = FORMATS + ((COMPUTE_FORMAT,) if any(_grants_compute(o) for o in offers) else ())
    return {
        "@id": asset.id,
        "@type": "Dataset",
        **_public_properties(asset),
        "hasPolicy": list(offers),
        "distribution": [{"@type": "Distribution", "format": f, "accessService": service_id} for f in formats],
    }


def _grants_compute(offer_body: Mapping[str, Any]) -> bool:
    """A dataset is offered for compute-to-data when one of its offers permits the compute action."""
    rules = offer_body.get("permission") or []
    for rule in rules if isinstance(rules, list) else [rules]:
        actions = rule.get("action") if isinstance(rule, Mapping) else None
        for action in actions if isinstance(actions, list) else [actions]:
            name = action.get("@id") if isinstance(action, Mapping) else action
            if name in _COMPUTE_ACTIONS:
                return True
    return False


def data_service(service_id: str, endpoint_url: str) -> dict[str, Any]:
    return {"@id": service_id, "@type": "DataService", "endpointURL": endpoint_url}


def catalog(*, catalog_id: str, participant_id: str, datasets: Sequence[dict[str, Any]],
            service: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "@context": [DSP_CONTEXT],
        "@id": catalog_id,
        "@type": "Catalog",
        "participantId": participant_id,
        "service": [service],
    }
    if datasets:
        body["dataset"] = list(datasets)
    return body
