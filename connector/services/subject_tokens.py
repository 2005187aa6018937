"""Personal tokens of data subjects: what lets a student call /api/subject/v1 for her own consents and results.

A token is random, shown once when issued, and only its sha256 is stored, so a copy of the database does not
give anyone a subject's access. Revoking marks every live token of the subject; issuing and revoking are audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.persistence.tables import SubjectTokenRow
from connector.services import audit
from connector.services.runtime import Runtime

PREFIX = "sovra_st_"
MAX_SUBJECT = 512


class InvalidSubjectError(ValueError):
    def __init__(self, problem: str) -> None:
        super().__init__(f"subject {problem}")
        self.pointer, self.problem = "/subject", problem


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_subject(subject: str) -> None:
    if not subject or not subject.strip():
        raise InvalidSubjectError("is required: the data subject's id as the dataset's subject field holds it")
    if len(subject) > MAX_SUBJECT:
        raise InvalidSubjectError(f"is longer than {MAX_SUBJECT} characters")


def issue(session: Session, rt: Runtime, subject: str, *, actor: str) -> tuple[str, SubjectTokenRow]:
    """A new token for `subject` (returned once; never stored in the clear)."""
    _check_subject(subject)
    token = PREFIX + secrets.token_urlsafe(32)
    row = SubjectTokenRow(token_hash=token_hash(token), subject_id=subject, created_at=rt.clock(), revoked_at=None)
    session.add(row)
    audit.append(session, rt, "token.issue", actor=actor, subject_id=subject,
                 detail={"tokenHashPrefix": row.token_hash[:12]})
    return token, row


def revoke(session: Session, rt: Runtime, subject: str, *, actor: str) -> int:
    """Revoke every live token of `subject`; returns how many."""
    _check_subject(subject)
    rows = list(session.scalars(select(SubjectTokenRow).where(SubjectTokenRow.subject_id == subject,
                                                              SubjectTokenRow.revoked_at.is_(None))))
    now = rt.clock()
    for row in rows:
        row.revoked_at = now
    audit.append(session, rt, "token.revoke", actor=actor, subject_id=subject, detail={"revoked": len(rows)})
    return len(rows)


def authenticate(session: Session, token: str | None) -> str | None:
    """The subject a presented token belongs to, or None (unknown, revoked, or not a subject token)."""
    if not token or not token.startswith(PREFIX) or len(token) > 256:
        return None
    digest = token_hash(token)
    row = session.get(SubjectTokenRow, digest)
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return row.subject_id
