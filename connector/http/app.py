"""The one FastAPI app of a connector: every path prefix on one port, auth applied where routers are mounted.

    /.well-known/dspace-version   version metadata (unauthenticated, plain JSON)
    /.well-known/did.json         our DID document (did:web)
    /api/dsp/2025-1/...           DSP provider endpoints and consumer callbacks (self-issued token)
    /api/management/v3/...        management API (X-Api-Key)
    /api/public/...               pull data plane (transfer-bound token)
    /console                      the admin console (session cookie from the API key; calls the management API)
    /api/subject/v1/...           a data subject's consents, jobs and results (her personal token, or her
                                  /console/me session cookie)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from connector.container import Connector
from connector.http import console, errors
from connector.http.console.sessions import SessionStore
from connector.http.console.subject_signin import SubjectSessions
from connector.http.dsp import router as dsp_router
from connector.http.management import build_router as management_router
from connector.http.public import build_router as public_router
from connector.http.subject import SUBJECT_PATH
from connector.http.subject import build_app as subject_app
from connector.settings import DSP_PATH


class StripTrailingSlash:
    """Route `/x/` like `/x` without a redirect: a 307 to the canonical URL breaks some POST clients."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope = {**scope, "path": path.rstrip("/") or "/"}
        await self.app(scope, receive, send)


def version_metadata(connector: Connector) -> dict[str, Any]:
    return {"protocolVersions": [{
        "version": "2025-1",
        "path": DSP_PATH,
        "binding": "HTTPS",
        "serviceId": connector.settings.participant_id + "#dsp",
        "identifierType": "did:web",
    }]}


def create_app(connector: Connector, *, manage_lifecycle: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            connector.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                connector.stop()

    app = FastAPI(title="Sovra connector", version="0.1.0", lifespan=lifespan, redirect_slashes=False,
                  openapi_url="/api/management/openapi.json", docs_url="/api/management/docs", redoc_url=None)
    app.state.connector = connector
    errors.install(app)

    @app.get("/.well-known/dspace-version", include_in_schema=False)
    def dspace_version() -> JSONResponse:
        return JSONResponse(version_metadata(connector))

    @app.get("/.well-known/did.json", include_in_schema=False)
    def did_document() -> JSONResponse:
        return JSONResponse(connector.did_document, media_type="application/did+json")

    sessions = SessionStore(connector.rt.clock)
    subjects = SubjectSessions(SessionStore(connector.rt.clock))  # never the operator's store: no management access
    app.mount(DSP_PATH, _dsp_app(connector))
    app.mount(SUBJECT_PATH, subject_app(connector, subjects))
    app.include_router(management_router(connector, sessions), prefix="/api/management")
    app.include_router(public_router(connector))
    if connector.settings.tck:  # test-only extension, off by default (connector/tck)
        from connector.tck.hooks import build_router as tck_router

        app.include_router(tck_router())
    console.install(app, connector, sessions, subjects)
    app.add_middleware(StripTrailingSlash)
    return app


def _dsp_app(connector: Connector) -> FastAPI:
    """The DSP endpoints as their own mounted app: a peer's message is dispatched by prefix, never matched
    against the management API's routes, which made routing the largest cost per DSP request."""
    dsp = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False)
    dsp.state.connector = connector
    errors.install(dsp)
    dsp.include_router(dsp_router)
    return dsp
