"""Connect the data plane to the control plane: which asset a started transfer serves, and push jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from connector.dataplane.egress import EgressGuard
from connector.dataplane.push import push
from connector.dataplane.sources import SourcePolicy, open_source
from connector.persistence.tables import AssetRow, TransferRow

if TYPE_CHECKING:
    from connector.container import Connector

_LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


def source_policy(connector: Connector) -> SourcePolicy:
    settings = connector.settings
    if settings.file_root is None:
        raise ValueError("file_root is not set; call Settings.with_defaults() first")
    return SourcePolicy(file_root=settings.file_root, http_allow=settings.http_source_allow)


def push_guard(connector: Connector) -> EgressGuard:
    """Push destinations come from the consumer: public addresses only, plus loopback in --dev."""
    return EgressGuard(("*", *(_LOOPBACK if connector.settings.dev else ())))


async def push_transfer(connector: Connector, transfer: TransferRow) -> Any:
    with connector.db.read_only() as uow:
        asset = uow.get(AssetRow, transfer.asset_id) if transfer.asset_id else None
        address = dict(asset.data_address) if asset is not None else None
    if address is None:
        raise LookupError(f"asset {transfer.asset_id} of transfer {transfer.id} no longer exists")
    if not transfer.data_destination:
        raise LookupError(f"transfer {transfer.id} has no destination to push to")
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0), follow_redirects=False) as client:
        source = open_source(address, source_policy(connector), client=client)
        return await push(source, transfer.data_destination, client, guard=push_guard(connector))
