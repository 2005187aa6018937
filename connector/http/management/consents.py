"""Consent registry and data-subject tokens for the operator (Sovra extension of the management API).

    POST   /v3/consents/grant              {"subject", "provider", "purpose", "expiresAt"?}  -> the ConsentEvent
    POST   /v3/consents/revoke             {"subject", "provider", "purpose"}                -> the ConsentEvent
    POST   /v3/consents/import             {"events": [{"subject", "provider", "purpose", "action", "expiresAt"?}]}
                                           -> {"imported": n} (all or nothing, at most 10,000 per call)
    GET    /v3/consents?subject=&provider=&purpose=&view=status|events&offset=&limit=
    POST   /v3/subjects/{subject}/tokens   -> {"subject", "token"} (the token is shown this once)
    DELETE /v3/subjects/{subject}/tokens   -> {"subject", "revoked": n}
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from connector.http.deps import ConnectorDep
from connector.http.management.errors import invalid, transaction
from connector.http.management.jsonld_io import Body, respond
from connector.services import consents, subject_tokens

router = APIRouter(tags=["Consents (Sovra)"])
OPERATOR = "operator"


@contextmanager
def consent_transaction(connector: Any) -> Iterator[Session]:
    try:
        with transaction(connector) as uow:
            yield uow
    except consents.InvalidConsentError as exc:
        raise invalid(exc.pointer, exc.problem) from None
    except subject_tokens.InvalidSubjectError as exc:
        raise invalid(exc.pointer, exc.problem) from None


def parse_time(value: Any, pointer: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(pointer, "must be an RFC 3339 date-time string, e.g. 2027-01-01T00:00:00Z", value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(pointer, "must be an RFC 3339 date-time string, e.g. 2027-01-01T00:00:00Z", value) from None
    if parsed.tzinfo is None:
        raise invalid(pointer, "needs a time zone, e.g. 2027-01-01T00:00:00Z", value)
    return parsed


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"/{name}", "is required: a non-empty string", value)
    return value


def _change(body: dict[str, Any], connector: ConnectorDep, action: str) -> JSONResponse:
    expires = parse_time(body.get("expiresAt"), "/expiresAt")
    with consent_transaction(connector) as uow:
        row = consents.record(uow, connector.rt, subject=_text(body, "subject"), provider=_text(body, "provider"),
                              purpose=_text(body, "purpose"), action=action, source=OPERATOR, actor=OPERATOR,
                              expires_at=expires)
        return respond(consents.event_json(row))


@router.post("/v3/consents/grant", summary="Record a data subject's consent for an AI provider and purpose")
def grant(body: Body, connector: ConnectorDep) -> JSONResponse:
    return _change(body, connector, "grant")


@router.post("/v3/consents/revoke", summary="Record the revocation of a data subject's consent")
def revoke(body: Body, connector: ConnectorDep) -> JSONResponse:
    if body.get("expiresAt") is not None:
        raise invalid("/expiresAt", "only a grant may expire; leave it out of a revocation")
    return _change(body, connector, "revoke")


MAX_IMPORT = 10_000


@router.post("/v3/consents/import", summary="Import grants and revocations in bulk (from the app that collects them)")
def import_events(body: Body, connector: ConnectorDep) -> JSONResponse:
    """One transaction: a bad event refuses the whole import, naming it, and records nothing."""
    items = body.get("events")
    if not isinstance(items, list) or not items:
        raise invalid("/events", "is required: a non-empty list of {subject, provider, purpose, action}")
    if len(items) > MAX_IMPORT:
        raise invalid("/events", f"holds {len(items)} events; import at most {MAX_IMPORT} per call")
    parsed = []
    for index, item in enumerate(items):
        where = f"/events/{index}"
        if not isinstance(item, dict):
            raise invalid(where, "must be an object {subject, provider, purpose, action, expiresAt?}")
        parsed.append((where, item, parse_time(item.get("expiresAt"), where + "/expiresAt")))
    with consent_transaction(connector) as uow:
        for where, item, expires in parsed:
            try:
                consents.record(uow, connector.rt, subject=item.get("subject"), provider=item.get("provider"),
                                purpose=item.get("purpose"), action=item.get("action"), source=OPERATOR,
                                actor=OPERATOR, expires_at=expires)
            except consents.InvalidConsentError as exc:
                raise consents.InvalidConsentError(where + exc.pointer, exc.problem) from None
        return respond({"imported": len(parsed)})


@router.get("/v3/consents", summary="List consents: current status per (subject, provider, purpose), or events")
def list_consents(connector: ConnectorDep, subject: str | None = None, provider: str | None = None,
                  purpose: str | None = None, view: Literal["status", "events"] = "status",
                  offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=1000)) -> JSONResponse:
    with connector.db.read_only() as session:
        if view == "events":
            rows = consents.events(session, subject=subject, provider=provider, purpose=purpose, offset=offset,
                                   limit=limit)
            return respond([consents.event_json(r) for r in rows])
        status = consents.status(session, connector.rt, subject=subject, provider=provider, purpose=purpose)
        return respond([{"@type": "ConsentStatus", **s} for s in status[offset:offset + limit]])


@router.post("/v3/subjects/{subject}/tokens", status_code=201,
             summary="Issue a data subject's personal token for /api/subject/v1 (shown once)")
def issue_token(subject: str, connector: ConnectorDep) -> JSONResponse:
    with consent_transaction(connector) as uow:
        token, row = subject_tokens.issue(uow, connector.rt, subject, actor=OPERATOR)
        return respond({"@type": "SubjectToken", "subject": subject, "token": token,
                        "createdAt": row.created_at.isoformat()}, status=201)


@router.delete("/v3/subjects/{subject}/tokens", summary="Revoke every personal token of a data subject")
def revoke_tokens(subject: str, connector: ConnectorDep) -> JSONResponse:
    with consent_transaction(connector) as uow:
        count = subject_tokens.revoke(uow, connector.rt, subject, actor=OPERATOR)
        return respond({"@type": "SubjectTokenRevocation", "subject": subject, "revoked": count})
