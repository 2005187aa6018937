"""One table from error class to HTTP status, and the DSP error body each protocol area answers with.

Handlers are registered per base class; Starlette walks the exception's MRO, so subclasses are covered. A process
that belongs to another participant is an UnknownProcessError (404), never a 403 that would confirm it exists.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from connector.dsp.messages import error_body
from connector.http.body import BodyError
from connector.protocol.errors import ProtocolError, SchemaViolationError
from connector.services.catalog import CatalogRequestError
from contracts import (
    InvalidMessageError,
    InvalidTransitionError,
    OfferRejectedError,
    UnknownProcessError,
)
from identity.errors import IdentityError

log = logging.getLogger("sovra.http")

_STATUS: list[tuple[type[Exception], int, str]] = [
    (UnknownProcessError, 404, "not.found"),
    (InvalidTransitionError, 400, "invalid.transition"),
    (OfferRejectedError, 400, "offer.rejected"),
    (InvalidMessageError, 400, "invalid.message"),
    (SchemaViolationError, 400, "schema.violation"),
    (ProtocolError, 400, "invalid.jsonld"),
    (CatalogRequestError, 400, "invalid.request"),
    (IdentityError, 401, "unauthorized"),
]


def dsp_error_type(path: str) -> str:
    if "/negotiations" in path:
        return "ContractNegotiationError"
    if "/transfers" in path:
        return "TransferError"
    return "CatalogError"


def _pids(request: Request) -> dict[str, str]:
    message: dict[str, Any] = getattr(request.state, "dsp_message", None) or {}
    pids = {"provider_pid": str(message.get("providerPid") or ""),
            "consumer_pid": str(message.get("consumerPid") or "")}
    path_pid = request.path_params.get("pid")
    if path_pid and not (pids["provider_pid"] or pids["consumer_pid"]):
        pids["provider_pid"] = str(path_pid)
    return pids


def dsp_error_response(request: Request, status: int, code: str, reason: str) -> JSONResponse:
    body = error_body(dsp_error_type(request.url.path), code=code, reason=reason, **_pids(request))
    headers = {"WWW-Authenticate": 'Bearer realm="dsp"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def management_error_response(status: int, code: str, reason: str, path: str | None = None,
                              invalid_value: Any = None) -> JSONResponse:
    """EDC's management API error shape: a list of {message, type, path, invalidValue}."""
    return JSONResponse([{"message": reason, "type": code, "path": path, "invalidValue": invalid_value}],
                        status_code=status)


def _handler(status: int, code: str):  # type: ignore[no-untyped-def]
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        reason = str(exc)
        if status >= 500:
            log.exception("unhandled error", exc_info=exc)
        if request.url.path.startswith("/api/management"):
            return management_error_response(status, code, reason)
        return dsp_error_response(request, status, code, reason)

    return handle


def install(app: FastAPI) -> None:
    for exc_type, status, code in _STATUS:
        app.add_exception_handler(exc_type, _handler(status, code))
    app.add_exception_handler(BodyError, _body_error)


def _json_safe(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | type(None) | list | dict) else str(value)


async def _body_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BodyError)  # noqa: S101 - registered for BodyError only
    if request.url.path.startswith("/api/management"):
        return management_error_response(exc.status, exc.code, str(exc), getattr(exc, "path", None),
                                         _json_safe(getattr(exc, "invalid_value", None)))
    return dsp_error_response(request, exc.status, exc.code, str(exc))
