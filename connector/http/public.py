"""Mount the pull data plane at /api/public: a transfer-bound token opens its asset while the transfer runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
from fastapi import APIRouter

from connector.dataplane import build_public_router
from connector.dataplane.wiring import source_policy
from connector.services import transfers

if TYPE_CHECKING:
    from connector.container import Connector


def build_router(connector: Connector) -> APIRouter:
    def resolve_source(transfer_id: str) -> dict[str, Any] | None:
        # Read on every request: suspending or terminating the transfer revokes the token at once.
        with connector.db.read_only() as uow:
            return transfers.active_source(uow, transfer_id)

    return build_public_router(
        verify=connector.verify_access_token,
        resolve_source=resolve_source,
        policy=source_policy(connector),
        client_factory=lambda: httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0), follow_redirects=False),
    )
