"""Management API errors: one request-error type, and the one place service and peer errors become HTTP answers.

Every failure a management client can cause is a `ManagementRequestError` (a `BodyError`, so the handler that
`connector.http.errors.install` registers answers it in EDC's shape `[{message, type, path, invalidValue}]`).
Services raise their own errors and know nothing of HTTP; `transaction` translates them at the boundary:

    service error                       status   type
    *NotFoundError                      404      not.found
    *ExistsError, *InUseError            409      conflict
    Invalid*Error, MissingPolicyError   400      invalid.request
    IntegrityError (a racing create)    409      conflict
    PeerRejectedError                   502      peer.rejected
    PeerUnavailableError                502/504  peer.unavailable / peer.timeout
    RemoteCatalogError                  502      peer.invalid.response

Domain errors of `contracts` (unknown process 404, illegal transition 400, ...) pass through untouched: the
installed handlers already answer them in EDC's shape under /api/management.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector.dsp.client import PeerRejectedError, PeerUnavailableError
from connector.http.body import BodyError
from connector.services import assets, contract_definitions, policy_definitions, remote_catalog

if TYPE_CHECKING:
    from connector.container import Connector


class ManagementRequestError(BodyError):
    """A request the management API refuses; `path` is the JSON pointer of the offending value, if any."""

    def __init__(self, status: int, code: str, reason: str, *, path: str | None = None,
                 invalid_value: Any = None) -> None:
        super().__init__(status, code, reason)
        self.path = path
        self.invalid_value = invalid_value


def invalid(path: str | None, reason: str, value: Any = None) -> ManagementRequestError:
    """A 400 naming the field: `reason` is the rest of the sentence after the field's JSON pointer."""
    sentence = f"field {path} {reason}" if path else reason
    return ManagementRequestError(400, "invalid.request", sentence, path=path, invalid_value=value)


def not_found(what: str, object_id: str) -> ManagementRequestError:
    return ManagementRequestError(404, "not.found", f"{what} {object_id} does not exist", invalid_value=object_id)


_NOT_FOUND = (assets.AssetNotFoundError, policy_definitions.PolicyDefinitionNotFoundError,
              contract_definitions.ContractDefinitionNotFoundError)
_CONFLICT = (assets.AssetExistsError, assets.AssetInUseError, policy_definitions.PolicyDefinitionExistsError,
             policy_definitions.PolicyDefinitionInUseError, contract_definitions.ContractDefinitionExistsError)
_INVALID = (assets.InvalidAssetError, policy_definitions.InvalidPolicyError,
            contract_definitions.InvalidContractDefinitionError, contract_definitions.MissingPolicyError,
            remote_catalog.CounterPartyAddressError)


def translate(exc: Exception) -> ManagementRequestError | None:
    """The HTTP answer for a service or peer error, or None for errors other handlers own."""
    if isinstance(exc, _NOT_FOUND):
        return ManagementRequestError(404, "not.found", str(exc))
    if isinstance(exc, _CONFLICT):
        return ManagementRequestError(409, "conflict", str(exc))
    if isinstance(exc, _INVALID):
        return ManagementRequestError(400, "invalid.request", str(exc), path=getattr(exc, "pointer", None),
                                      invalid_value=list(getattr(exc, "issues", ())) or None)
    if isinstance(exc, IntegrityError):
        return ManagementRequestError(409, "conflict", "the object was created or changed concurrently; "
                                                       "read it again and retry")
    if isinstance(exc, PeerRejectedError):
        return ManagementRequestError(502, "peer.rejected", f"the counter-party refused the request "
                                                            f"({exc.reason}); check the address and ids")
    if isinstance(exc, PeerUnavailableError):
        timed_out = exc.status is None and "Timeout" in exc.reason
        return ManagementRequestError(504 if timed_out else 502, "peer.timeout" if timed_out else "peer.unavailable",
                                      f"the counter-party at {exc.url} could not be reached ({exc.reason}); "
                                      "retry later or check the address")
    if isinstance(exc, remote_catalog.RemoteCatalogError):
        return ManagementRequestError(502, "peer.invalid.response", str(exc))
    return None


_TRANSLATED = (*_NOT_FOUND, *_CONFLICT, *_INVALID, IntegrityError, PeerRejectedError, PeerUnavailableError,
               remote_catalog.RemoteCatalogError)


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise service and peer errors as the management answer they deserve."""
    try:
        yield
    except _TRANSLATED as exc:
        answer = translate(exc)
        if answer is None:  # pragma: no cover - every class in _TRANSLATED has an answer
            raise
        raise answer from exc


@contextmanager
def transaction(connector: Connector) -> Iterator[Session]:
    """One unit of work for one management request, with service errors translated (and rolled back)."""
    with translated(), connector.db.unit_of_work() as uow:
        yield uow


@contextmanager
def snapshot(connector: Connector) -> Iterator[Session]:
    """A read-only view for a request that changes nothing: it neither takes nor waits for the write lock, so
    operators polling states never slow the protocol down."""
    with translated(), connector.db.read_only() as session:
        yield session
