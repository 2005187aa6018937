"""Signed run receipts: an in-toto Statement by the data provider (A) about one job, in a DSSE envelope.

INTERFACE (lead's skeleton, filled in by the c2d-core helper). predicateType
"https://w3id.org/sovra/c2d/run-receipt/v1"; subjects = released outputs (name, sha256 digest); the predicate
binds: jobId, algorithm {name, version, digest, signer}, input {digest (sha256 of records.jsonl), recordCount},
agreementId, policyId, sandbox {backend, limits}, epsilonCharged, state, reasons, startedOn, finishedOn.
Signed with signing.sign_statement; verified with signing.verify_envelope(predicate_type=RECEIPT_TYPE).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RECEIPT_TYPE = "https://w3id.org/sovra/c2d/run-receipt/v1"


@dataclass(frozen=True)
class RunFacts:
    job_id: str
    state: str
    reasons: tuple[str, ...]
    algorithm: Mapping[str, Any]  # name, version, digest, signer
    input_digest: str
    record_count: int
    agreement_id: str
    policy_id: str | None
    sandbox: Mapping[str, Any]  # backend, limits
    outputs: Mapping[str, str]  # output name -> sha256:<hex> of its released JSON bytes
    epsilon_charged: float
    started: str
    finished: str


def receipt_statement(facts: RunFacts) -> dict[str, Any]:
    raise NotImplementedError
