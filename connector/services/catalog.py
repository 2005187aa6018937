"""The catalog a requester may see: datasets whose contract definitions' access policies let it in.

Paging is keyset on asset id (stable under inserts, cheap at any depth); the continuation token says which side
of which id the page starts. Access policies are evaluated once per request, not once per asset.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import dcat
from catalog.models import Asset, ContractDefinition
from catalog.selection import matches, selected_ids
from connector.persistence.tables import AssetRow, ContractDefinitionRow
from connector.services.offers import access_permitted, policy_of, to_asset, to_definition
from connector.services.runtime import Runtime
from contracts import OfferId


class CatalogRequestError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Page:
    body: dict[str, Any]
    next_token: str | None
    previous_token: str | None


def encode_token(direction: str, asset_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([direction, asset_id]).encode()).decode().rstrip("=")


def decode_token(token: str) -> tuple[str, str]:
    try:
        direction, asset_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError) as exc:
        raise CatalogRequestError("continuationToken is not one we issued; start again without it") from exc
    if direction not in ("after", "before"):
        raise CatalogRequestError("continuationToken is not one we issued; start again without it")
    return direction, str(asset_id)


def service_id(rt: Runtime) -> str:
    return rt.settings.participant_id + "#dsp"


class _Visible:
    """The contract definitions a requester passes, with their contract policies, resolved once."""

    def __init__(self, uow: Session, rt: Runtime, participant_id: str) -> None:
        self.offers: list[tuple[ContractDefinition, dict[str, Any]]] = []
        for row in uow.scalars(select(ContractDefinitionRow).order_by(ContractDefinitionRow.id)):
            definition = to_definition(row)
            policy = policy_of(uow, definition.contract_policy_id)
            if policy is not None and access_permitted(uow, rt, definition, participant_id):
                self.offers.append((definition, policy))
        id_sets = [selected_ids(d.assets_selector) for d, _ in self.offers]
        self.only_ids: frozenset[str] | None = (
            frozenset().union(*id_sets) if id_sets and all(s is not None for s in id_sets) else None  # type: ignore[arg-type]
        )

    def dataset(self, asset: Asset, sid: str) -> dict[str, Any] | None:
        offers = [dcat.offer(str(OfferId(d.id, asset.id, "0")), p) for d, p in self.offers
                  if matches(d.assets_selector, asset)]
        return dcat.dataset(asset, offers, service_id=sid) if offers else None


def catalog_page(uow: Session, rt: Runtime, *, participant_id: str, page_size: int,
                 token: str | None) -> Page:
    if not 1 <= page_size <= 1000:
        raise CatalogRequestError(f"pageSize {page_size} is out of range; use 1 to 1000")
    visible = _Visible(uow, rt, participant_id)
    direction, anchor = decode_token(token) if token else ("after", None)
    sid = service_id(rt)
    datasets: list[dict[str, Any]] = []
    ids: list[str] = []
    more = False
    if visible.offers and visible.only_ids != frozenset():
        for asset in _scan(uow, visible, direction=direction, anchor=anchor):
            entry = visible.dataset(asset, sid)
            if entry is None:
                continue
            if len(datasets) == page_size:
                more = True
                break
            datasets.append(entry)
            ids.append(asset.id)
    if direction == "before":
        datasets.reverse()
        ids.reverse()
    has_next = more if direction == "after" else anchor is not None
    has_previous = (anchor is not None) if direction == "after" else more
    body = dcat.catalog(catalog_id=rt.settings.participant_id + "#catalog", participant_id=rt.settings.participant_id,
                        datasets=datasets, service=dcat.data_service(sid, rt.settings.dsp_url))
    return Page(
        body=body,
        next_token=encode_token("after", ids[-1]) if has_next and ids else None,
        previous_token=encode_token("before", ids[0]) if has_previous and ids else None,
    )


def _scan(uow: Session, visible: _Visible, *, direction: str, anchor: str | None, chunk: int = 256):  # type: ignore[no-untyped-def]
    """Assets in id order from the anchor, fetched in chunks so selection in Python never loads the table."""
    while True:
        query = select(AssetRow)
        if visible.only_ids is not None:
            query = query.where(AssetRow.id.in_(visible.only_ids))
        if anchor is not None:
            query = query.where(AssetRow.id > anchor if direction == "after" else AssetRow.id < anchor)
        query = query.order_by(AssetRow.id if direction == "after" else AssetRow.id.desc()).limit(chunk)
        rows = list(uow.scalars(query))
        for row in rows:
            yield to_asset(row)
        if len(rows) < chunk:
            return
        anchor = rows[-1].id


def dataset_for(uow: Session, rt: Runtime, *, participant_id: str, dataset_id: str) -> dict[str, Any] | None:
    row = uow.get(AssetRow, dataset_id)
    if row is None:
        return None
    entry = _Visible(uow, rt, participant_id).dataset(to_asset(row), service_id(rt))
    if entry is None:
        return None
    return {"@context": [dcat.DSP_CONTEXT], **entry}
