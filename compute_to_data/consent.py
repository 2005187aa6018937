"""Consent of data subjects: grants and revocations per subject, AI provider and purpose, in time.

INTERFACE (lead's skeleton, filled in by the c2d-core helper). Pure: the shell stores ConsentEvents and asks
`consenting_subjects` which records may reach a job. The newest event for (subject, provider, purpose) wins; a
grant may carry an expiry. A purpose consented covers its narrower purposes (DPV hierarchy, policies.vocab).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from policies.vocab import KNOWN_PREFIXES, purpose_ancestors


@dataclass(frozen=True)
class ConsentEvent:
    subject: str
    provider: str  # the AI provider's participant id (DID)
    purpose: str  # purpose IRI (e.g. a DPV purpose)
    action: Literal["grant", "revoke"]
    at: datetime
    expires: datetime | None = None


def consenting_subjects(events: Iterable[ConsentEvent], provider: str, purpose: str, at: datetime) -> frozenset[str]:
    """Subjects whose newest event for this provider and (a purpose covering) `purpose` is a live grant.

    Per (subject, purpose) only the newest event counts (a revocation at the same instant as a grant wins). Over
    the purposes that cover `purpose` (itself and its broader DPV purposes), a subject consents when she has a live
    grant (not expired at `at`) newer than every covering revocation: revoking a broad purpose revokes the narrow
    ones under it, and an expired re-grant of one purpose does not undo a live grant of another. Events after `at`
    are not yet known. Naive datetimes are read as UTC (SQLite hands them back that way).
    """
    now = _utc(at)
    covering = purpose_ancestors(expand_purpose(purpose))
    newest: dict[tuple[str, str], ConsentEvent] = {}
    for event in events:
        if event.provider != provider or _utc(event.at) > now:
            continue
        event_purpose = expand_purpose(event.purpose)
        if event_purpose not in covering:
            continue
        key = (event.subject, event_purpose)
        if key not in newest or _newer(event, newest[key]):
            newest[key] = event
    last_grant: dict[str, datetime] = {}
    last_revoke: dict[str, datetime] = {}
    for (subject, _), event in newest.items():
        when = _utc(event.at)
        if event.action == "revoke":
            last_revoke[subject] = max(when, last_revoke.get(subject, when))
        elif event.action == "grant" and (event.expires is None or _utc(event.expires) > now):
            last_grant[subject] = max(when, last_grant.get(subject, when))
    return frozenset(s for s, granted in last_grant.items() if s not in last_revoke or granted > last_revoke[s])


def expand_purpose(purpose: str) -> str:
    """A compact purpose (`dpv:CareerGuidance`) as its full IRI; full IRIs and unknown prefixes stay as they are."""
    prefix, sep, rest = purpose.partition(":")
    if sep and not rest.startswith("//") and prefix in KNOWN_PREFIXES:
        return KNOWN_PREFIXES[prefix] + rest
    return purpose


def _newer(event: ConsentEvent, than: ConsentEvent) -> bool:
    a, b = _utc(event.at), _utc(than.at)
    return a > b or (a == b and event.action == "revoke")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
