"""EDC-compatible Management API v3, mounted by `connector.http.app` under /api/management.

Authentication is applied once, here, to every route (`X-Api-Key`, or the console's session cookie with its
CSRF header). Bodies may be EDC's JSON-LD or plain JSON
(`jsonld_io`); answers follow EDC v3's compacted shapes (`representations`). Sovra's extensions (autoAgree,
approve/decline, accept, counteroffer, provider-initiated offers, events, complete, policy authoring, negotiation
preview) are marked in each summary.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from connector.container import Connector
from connector.http.console.sessions import SessionStore
from connector.http.management import (
    agreements,
    algorithms,
    assets,
    audit,
    catalog,
    computejobs,
    consents,
    contractdefinitions,
    edrs,
    events,
    negotiations,
    policies,
    policy_authoring,
    transfers,
)
from connector.http.management.auth import api_key_guard
from connector.http.management.schemas import ApiError

_ROUTERS = (assets.router, policies.router, policy_authoring.router, contractdefinitions.router, catalog.router,
            negotiations.router, agreements.router, transfers.router, edrs.router, events.router, consents.router,
            audit.router, computejobs.router, algorithms.router)


def build_router(connector: Connector, sessions: SessionStore | None = None) -> APIRouter:
    """Every management route, guarded by the connector's API key (or a console session from `sessions`);
    mount it with prefix="/api/management"."""
    router = APIRouter(dependencies=[Depends(api_key_guard(connector.settings.api_key, sessions))],
                       responses={401: {"model": list[ApiError], "description": "Missing or wrong X-Api-Key"},
                                  403: {"model": list[ApiError], "description": "Console session without its CSRF"}})
    for child in _ROUTERS:
        router.include_router(child)
    return router
