"""The requester's check of a release document: A's signature, this job, exactly the outputs the receipt signs."""

from __future__ import annotations

from typing import Any

import pytest

from compute_to_data.receipts import RunFacts, output_digest, sign_receipt
from connector.services.compute_release import ReleaseError, endpoint_of, verify_release
from identity.did_web import build_did_document
from identity.keys import generate_signing_key, public_jwk

A, OTHER = "did:web:a.example", "did:web:other.example"
KEYS = {A: generate_signing_key(), OTHER: generate_signing_key()}
DOCUMENTS = {did: build_did_document(did, public_jwk(key), service_endpoints={}) for did, key in KEYS.items()}
OUTPUTS = {"mean_dataScience": 0.41, "mean_uxDesign": 0.37}


def resolve(did: str) -> dict[str, Any]:
    return DOCUMENTS[did]


def document(*, signer: str = A, job_id: str = "job-1", outputs: dict[str, Any] | None = None,
             signed: dict[str, Any] | None = None) -> dict[str, Any]:
    facts = RunFacts(
        job_id="job-1", state="RELEASED", reasons=(),
        algorithm={"name": "career-match", "version": "1.0.0", "digest": "sha256:" + "a" * 64, "signer": "did:b"},
        input_digest="sha256:" + "b" * 64, record_count=2, agreement_id="agr-1", policy_id=None,
        sandbox={"backend": "bubblewrap", "limits": {}},
        outputs={name: output_digest(value) for name, value in (signed or OUTPUTS).items()},
        epsilon_charged=0.5, started="2026-11-22T10:00:00Z", finished="2026-11-22T10:00:03Z")
    return {"jobId": job_id, "outputs": outputs if outputs is not None else dict(OUTPUTS),
            "receipt": sign_receipt(facts, KEYS[signer], signer)}


def test_a_genuine_release_verifies_and_gives_the_receipt_facts() -> None:
    predicate = verify_release(document(), provider_did=A, resolve=resolve)
    assert predicate["input"]["recordCount"] == 2 and predicate["epsilonCharged"] == 0.5


@pytest.mark.parametrize(("doc", "problem"), [
    (document(signer=OTHER), "not by the provider"),
    (document(job_id="job-2"), "about job job-1"),
    (document(outputs={**OUTPUTS, "mean_uxDesign": 0.99}), "does not match"),
    (document(outputs={"mean_dataScience": 0.41}), "not the ones the receipt signs"),
    (document(outputs={**OUTPUTS, "raw": [1, 2]}), "not the ones the receipt signs"),
])
def test_a_release_that_differs_from_its_receipt_is_refused(doc: dict[str, Any], problem: str) -> None:
    with pytest.raises(ReleaseError, match=problem):
        verify_release(doc, provider_did=A, resolve=resolve)


def test_a_tampered_receipt_is_refused() -> None:
    doc = document()
    doc["receipt"]["payload"] = doc["receipt"]["payload"][:-8] + "AAAAAAA="
    with pytest.raises(ReleaseError, match="does not verify"):
        verify_release(doc, provider_did=A, resolve=resolve)


def test_the_endpoint_and_token_come_from_the_start_message_data_address() -> None:
    address = {"endpoint": "http://a/api/public", "endpointProperties": [
        {"name": "authType", "value": "bearer"}, {"name": "authorization", "value": "jwt"}]}
    assert endpoint_of(address) == ("http://a/api/public", "jwt")
    with pytest.raises(ReleaseError):
        endpoint_of({"endpoint": "http://a/api/public"})
