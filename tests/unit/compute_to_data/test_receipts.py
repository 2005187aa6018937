"""Run receipts: the statement binds the run's facts; signed by A, verifiable by B and the subject."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from compute_to_data.receipts import (
    RECEIPT_TYPE,
    RunFacts,
    output_digest,
    receipt_statement,
    sign_receipt,
    verify_receipt,
)
from compute_to_data.signing import SignatureCheckError, sign_statement
from identity.did_web import build_did_document
from identity.keys import generate_signing_key, public_jwk

A = "did:web:a.example"
KEY = generate_signing_key()
DOCUMENTS = {A: build_did_document(A, public_jwk(KEY), service_endpoints={})}


def resolve(did: str) -> dict[str, Any]:
    return DOCUMENTS[did]


def facts(**changes: Any) -> RunFacts:
    base = dict(
        job_id="job-1", state="RELEASED", reasons=(),
        algorithm={"name": "career-match", "version": "1.0.0", "digest": "sha256:" + "a" * 64,
                   "signer": "did:web:b.example", "extra": "dropped"},
        input_digest="sha256:" + "b" * 64, record_count=2, agreement_id="agr-1", policy_id="pol-1",
        sandbox={"backend": "bubblewrap", "limits": {"wall_seconds": 60, "memory_mb": 512}},
        outputs={"meanScore": output_digest(0.5), "histogram": output_digest([1.0, 2.0])},
        epsilon_charged=0.5, started="2026-11-22T10:00:00Z", finished="2026-11-22T10:00:03Z",
    )
    base.update(changes)
    return RunFacts(**base)


def test_statement_binds_the_facts() -> None:
    statement = receipt_statement(facts())
    assert statement["_type"] == "https://in-toto.io/Statement/v1" and statement["predicateType"] == RECEIPT_TYPE
    assert [s["name"] for s in statement["subject"]] == ["histogram", "meanScore"]
    assert statement["subject"][1]["digest"]["sha256"] == output_digest(0.5)[7:]
    p = statement["predicate"]
    assert p["jobId"] == "job-1" and p["state"] == "RELEASED" and p["reasons"] == []
    assert p["algorithm"] == {"name": "career-match", "version": "1.0.0", "digest": "sha256:" + "a" * 64,
                              "signer": "did:web:b.example"}
    assert p["input"] == {"digest": "sha256:" + "b" * 64, "recordCount": 2}
    assert p["agreementId"] == "agr-1" and p["policyId"] == "pol-1"
    assert p["sandbox"] == {"backend": "bubblewrap", "limits": {"wall_seconds": 60, "memory_mb": 512}}
    assert p["epsilonCharged"] == 0.5 and p["startedOn"] < p["finishedOn"]


def test_sign_and_verify() -> None:
    envelope = sign_receipt(facts(), KEY, A)
    verified = verify_receipt(json.loads(json.dumps(envelope)), resolve)
    assert verified.signer_did == A
    assert verified.statement["predicate"]["jobId"] == "job-1"


def test_a_refused_job_has_a_receipt_without_subjects() -> None:
    envelope = sign_receipt(facts(state="REJECTED", reasons=("gate: too few records",), outputs={},
                                  epsilon_charged=0.0), KEY, A)
    verified = verify_receipt(envelope, resolve)
    assert verified.statement["subject"] == [] and verified.statement["predicate"]["reasons"] == [
        "gate: too few records"]


def test_tampered_receipt_and_wrong_type() -> None:
    envelope = sign_receipt(facts(), KEY, A)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["epsilonCharged"] = 0.0
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(SignatureCheckError) as caught:
        verify_receipt(envelope, resolve)
    assert caught.value.check == "signature"
    del statement["predicate"]["startedOn"]
    with pytest.raises(SignatureCheckError) as caught:
        verify_receipt(sign_statement(statement, KEY, A), resolve)
    assert caught.value.check == "provenance" and "startedOn" in caught.value.reason
    statement["predicateType"] = "https://slsa.dev/provenance/v1"
    with pytest.raises(SignatureCheckError) as caught:
        verify_receipt(sign_statement(statement, KEY, A), resolve)
    assert caught.value.check == "provenance"


def test_limits_may_be_the_sandbox_dataclass() -> None:
    from compute_to_data.sandbox.base import Limits

    statement = receipt_statement(facts(sandbox={"backend": "docker", "limits": Limits(wall_seconds=5.0)}))
    assert statement["predicate"]["sandbox"]["limits"]["wall_seconds"] == 5.0
    json.dumps(statement)


def test_output_digest_is_over_canonical_json() -> None:
    assert output_digest({"b": 1, "a": [1.5]}) == output_digest({"a": [1.5], "b": 1})
    with pytest.raises(ValueError):
        receipt_statement(facts(outputs={"x": "md5:00"}))
