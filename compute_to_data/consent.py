"""Consent of data subjects: grants and revocations per subject, AI provider and purpose, in time.

INTERFACE (lead's skeleton, filled in by the c2d-core helper). Pure: the shell stores ConsentEvents and asks
`consenting_subjects` which records may reach a job. The newest event for (subject, provider, purpose) wins; a
grant may carry an expiry. A purpose consented covers its narrower purposes (DPV hierarchy, policies.vocab).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal


@dataclass(frozen=True)
class ConsentEvent:
    subject: str
    provider: str  # the AI provider's participant id (DID)
    purpose: str  # purpose IRI (e.g. a DPV purpose)
    action: Literal["grant", "revoke"]
    at: datetime
    expires: datetime | None = None


def consenting_subjects(events: Iterable[ConsentEvent], provider: str, purpose: str, at: datetime) -> frozenset[str]:
    """Subjects whose newest event for this provider and (a purpose covering) `purpose` is a live grant."""
    raise NotImplementedError
