"""Signed run receipts: an in-toto Statement by the data provider (A) about one job, in a DSSE envelope.

INTERFACE (lead's skeleton, filled in by the c2d-core helper). predicateType
"https://w3id.org/sovra/c2d/run-receipt/v1"; subjects = released outputs (name, sha256 digest); the predicate
binds: jobId, algorithm {name, version, digest, signer}, input {digest (sha256 of records.jsonl), recordCount},
agreementId, policyId, sandbox {backend, limits}, epsilonCharged, state, reasons, startedOn, finishedOn.
Signed with signing.sign_statement; verified with signing.verify_envelope(predicate_type=RECEIPT_TYPE).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from compute_to_data.signing import (
    STATEMENT_TYPE,
    DidDocumentResolver,
    SignatureCheckError,
    VerifiedStatement,
    canonical_json,
    sign_statement,
    verify_envelope,
)
from identity.keys import SigningKey

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
    """The in-toto Statement of one job's run; subjects are the released outputs (none for a refused job)."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": _hex(digest)}}
                    for name, digest in sorted(facts.outputs.items())],
        "predicateType": RECEIPT_TYPE,
        "predicate": {
            "jobId": facts.job_id,
            "state": facts.state,
            "reasons": list(facts.reasons),
            "algorithm": {k: facts.algorithm.get(k) for k in ("name", "version", "digest", "signer")},
            "input": {"digest": facts.input_digest, "recordCount": facts.record_count},
            "agreementId": facts.agreement_id,
            "policyId": facts.policy_id,
            "sandbox": {"backend": facts.sandbox.get("backend"), "limits": _plain(facts.sandbox.get("limits"))},
            "outputs": dict(sorted(facts.outputs.items())),
            "epsilonCharged": facts.epsilon_charged,
            "startedOn": facts.started,
            "finishedOn": facts.finished,
        },
    }


def sign_receipt(facts: RunFacts, key: SigningKey, signer_did: str) -> dict[str, Any]:
    """The DSSE envelope of the job's receipt, signed by the data provider."""
    return sign_statement(receipt_statement(facts), key, signer_did)


def verify_receipt(envelope: Any, resolve: DidDocumentResolver) -> VerifiedStatement:
    """Check a receipt envelope (shape, signer, signature, predicate); raises SignatureCheckError naming the check."""
    verified = verify_envelope(envelope, resolve, predicate_type=RECEIPT_TYPE)
    predicate = verified.statement["predicate"]
    missing = [k for k in _REQUIRED if k not in predicate]
    if missing:
        raise SignatureCheckError("provenance", f"the receipt lacks {', '.join(missing)}")
    return verified


def output_digest(value: Any) -> str:
    """`sha256:<hex>` of an output's released JSON bytes (canonical JSON), as receipts name them."""
    return "sha256:" + hashlib.sha256(canonical_json(value)).hexdigest()


_REQUIRED = ("jobId", "state", "algorithm", "input", "agreementId", "sandbox", "epsilonCharged", "startedOn",
             "finishedOn")


def _plain(limits: Any) -> dict[str, Any]:
    """Limits as JSON: a mapping, or a dataclass such as compute_to_data.sandbox.base.Limits."""
    if limits is None:
        return {}
    if dataclasses.is_dataclass(limits) and not isinstance(limits, type):
        return dataclasses.asdict(limits)
    return dict(limits)


def _hex(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or len(value) != 64:
        raise ValueError(f"output digest {digest!r} is not sha256:<64 hex>")
    return value.lower()
