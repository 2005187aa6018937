"""The consent registry: data subjects' grants and revocations per AI provider and purpose, in time.

Events are only ever added; the newest one for (subject, provider, purpose) wins, which
`compute_to_data.consent.consenting_subjects` decides. Every change is also an audit event.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from compute_to_data.consent import ConsentEvent, consenting_subjects
from connector.persistence.tables import ConsentEventRow
from connector.services import audit
from connector.services.runtime import Runtime

ACTIONS = ("grant", "revoke")
SOURCES = ("operator", "subject")
MAX_ID = 512


class InvalidConsentError(ValueError):
    def __init__(self, pointer: str, problem: str) -> None:
        super().__init__(f"field {pointer} {problem}")
        self.pointer, self.problem = pointer, problem


def record(session: Session, rt: Runtime, *, subject: str, provider: str, purpose: str, action: str, source: str,
           actor: str, expires_at: datetime | None = None) -> ConsentEventRow:
    """Add a grant or revocation (validated here, whoever calls) and its audit event."""
    for pointer, value in (("/subject", subject), ("/provider", provider), ("/purpose", purpose)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidConsentError(pointer, "is required: a non-empty string")
        if len(value) > MAX_ID * (2 if pointer == "/purpose" else 1):
            raise InvalidConsentError(pointer, "is too long")
    if action not in ACTIONS:
        raise InvalidConsentError("/action", f"must be one of {', '.join(ACTIONS)}, not {action!r}")
    if source not in SOURCES:
        raise InvalidConsentError("/source", f"must be one of {', '.join(SOURCES)}")
    now = rt.clock()
    if expires_at is not None:
        if action != "grant":
            raise InvalidConsentError("/expiresAt", "only a grant may expire; leave it out of a revocation")
        if expires_at.tzinfo is None:
            raise InvalidConsentError("/expiresAt", "needs a time zone, e.g. 2027-01-01T00:00:00Z")
        if expires_at <= now:
            raise InvalidConsentError("/expiresAt", "lies in the past; give a future time or none")
    row = ConsentEventRow(subject_id=subject, provider_id=provider, purpose=purpose, action=action, at=now,
                          expires_at=expires_at, source=source)
    session.add(row)
    session.flush()
    audit.append(session, rt, "consent." + action, actor=actor, subject_id=subject,
                 detail={"provider": provider, "purpose": purpose, "source": source,
                         "expiresAt": expires_at.isoformat() if expires_at else None, "consentEventId": row.id})
    return row


def events(session: Session, *, subject: str | None = None, provider: str | None = None,
           purpose: str | None = None, limit: int = 1000, offset: int = 0) -> list[ConsentEventRow]:
    query = select(ConsentEventRow)
    if subject is not None:
        query = query.where(ConsentEventRow.subject_id == subject)
    if provider is not None:
        query = query.where(ConsentEventRow.provider_id == provider)
    if purpose is not None:
        query = query.where(ConsentEventRow.purpose == purpose)
    return list(session.scalars(query.order_by(ConsentEventRow.id).offset(offset).limit(limit)))


def to_domain(rows: Iterable[ConsentEventRow]) -> list[ConsentEvent]:
    return [ConsentEvent(subject=r.subject_id, provider=r.provider_id, purpose=r.purpose,
                         action=r.action, at=r.at, expires=r.expires_at) for r in rows]  # type: ignore[arg-type]


def consenting(session: Session, rt: Runtime, *, provider: str, purpose: str) -> frozenset[str]:
    """Subjects with a live grant, now, for this provider and (a purpose covering) `purpose`."""
    c = ConsentEventRow
    now = rt.clock()
    newest = session.scalar(select(func.max(c.id)).where(c.provider_id == provider))
    key = (str(session.get_bind().url), provider, purpose)
    cached = _CONSENTING.get(key)
    if cached is not None and cached[0] == newest and (cached[1] is None or now < cached[1]):
        return cached[2]
    rows = session.execute(select(c.subject_id, c.provider_id, c.purpose, c.action, c.at, c.expires_at)
                           .where(c.provider_id == provider).order_by(c.id))  # plain rows: a registry may be large
    events = [ConsentEvent(subject=r[0], provider=r[1], purpose=r[2], action=r[3], at=r[4], expires=r[5])
              for r in rows]
    subjects = consenting_subjects(events, provider, purpose, now)
    expiries = [e.expires for e in events if e.action == "grant" and e.expires is not None and e.expires > now]
    with _CONSENTING_LOCK:
        _CONSENTING[key] = (newest, min(expiries, default=None), subjects)
        while len(_CONSENTING) > 64:
            _CONSENTING.pop(next(iter(_CONSENTING)))
    return subjects


# The answer per (database, provider, purpose), valid while no event was added (events are append-only, so the
# newest id says) and until the earliest expiry among the grants it counted: each job asks twice, over the whole
# registry of a dataset that may hold every student of a school.
_CONSENTING: dict[tuple[Any, ...], tuple[int | None, datetime | None, frozenset[str]]] = {}
_CONSENTING_LOCK = threading.Lock()


def status(session: Session, rt: Runtime, *, subject: str | None = None, provider: str | None = None,
           purpose: str | None = None) -> list[dict[str, Any]]:
    """The current state per (subject, provider, purpose): the newest event, and whether it is a live grant."""
    newest: dict[tuple[str, str, str], ConsentEventRow] = {}
    for row in events(session, subject=subject, provider=provider, purpose=purpose, limit=100_000):
        newest[(row.subject_id, row.provider_id, row.purpose)] = row
    now = rt.clock()
    return [{"subject": s, "provider": p, "purpose": u, "granted": r.action == "grant"
             and (r.expires_at is None or r.expires_at > now), "since": r.at.isoformat(),
             "expiresAt": r.expires_at.isoformat() if r.expires_at else None, "source": r.source}
            for (s, p, u), r in newest.items()]


def event_json(row: ConsentEventRow) -> dict[str, Any]:
    return {"@type": "ConsentEvent", "@id": str(row.id), "subject": row.subject_id, "provider": row.provider_id,
            "purpose": row.purpose, "action": row.action, "at": row.at.isoformat(),
            "expiresAt": row.expires_at.isoformat() if row.expires_at else None, "source": row.source}
