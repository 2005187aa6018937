"""Compute-to-data between two real connectors: A (data provider) and B (AI provider, requester), over DSP.

The setup is the demo's student scenario (connector.demo), step by step through the management and subject APIs;
each test then asserts one outcome on both sides. Jobs run in bubblewrap, so these tests need `bwrap`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from compute_to_data.receipts import verify_receipt
from connector import demo
from connector import demo_student as S
from connector.dsp.messages import COMPUTE_JOB, JOB_STATE
from connector.localnet import ConnectorProcess, ManagementClient
from tests.e2e.conftest import Peer

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("bwrap") is None,
                                                  reason="bubblewrap is not installed (scripts/sandbox-setup.sh)")]

ALGORITHM_ASSET = "career-match"


@pytest.fixture
def scenario(spawn: Callable[..., ConnectorProcess], tmp_path: Path) -> dict[str, Any]:
    """A and B started; B's algorithm and A's dataset published; two students consented; a finalized agreement."""
    school, ai = spawn("school"), spawn("ai-provider")
    a, b = school.management(), ai.management()
    demo.publish_algorithm(ai, b, tmp_path, number=1)
    demo.publish_dataset(school, ai, a, number=2)
    tokens = demo.consent(school, ai, a, number=3)
    agreement_id = demo.negotiate(school, ai, b, number=4)
    yield {"school": school, "ai": ai, "a": a, "b": b, "tokens": tokens, "agreement": agreement_id}
    a.close()
    b.close()


def submit(b: ManagementClient, school: ConnectorProcess, agreement_id: str, **parameters: Any) -> str:
    created: Any = b.ok(b.post("/v3/computejobs", {
        "agreementId": agreement_id, "counterPartyAddress": school.dsp_url, "algorithm": ALGORITHM_ASSET,
        "parameters": {"dpEpsilon": 0.5, "minAggregationSize": 2, **parameters}}))
    assert created["state"] == "QUEUED"
    return str(created["@id"])


def test_a_job_runs_at_a_and_only_the_gated_aggregate_reaches_b(scenario: dict[str, Any]) -> None:
    school, ai, a, b = scenario["school"], scenario["ai"], scenario["a"], scenario["b"]
    job_id = submit(b, school, scenario["agreement"])
    job = demo.wait_job(b, job_id)
    assert job["state"] == "RELEASED", job
    assert job["role"] == "requester" and job["recordCount"] == 2
    outputs: Any = b.ok(b.get(f"/v3/computejobs/{job_id}/outputs"))
    assert set(outputs) == {f"mean_{c}" for c in S.CAREERS}
    assert all(s["subject"] not in str(outputs) for s in S.STUDENTS)

    receipt: Any = b.ok(b.get(f"/v3/computejobs/{job_id}/receipt"))
    did_document = httpx.get(school.url + "/.well-known/did.json", timeout=10).json()
    verified = verify_receipt(receipt, lambda did: did_document)
    assert verified.signer_did == school.did
    assert verified.statement["predicate"]["algorithm"]["signer"] == ai.did
    assert verified.statement["predicate"]["input"]["recordCount"] == 2

    provider_jobs: Any = a.ok(a.get("/v3/computejobs?role=provider"))
    assert [j["state"] for j in provider_jobs] == ["RELEASED"]
    assert provider_jobs[0]["outputs"] == outputs
    # B took delivery and completed its transfer; A's DSP view of it carries the job's state
    transfer = b.wait_state(f"/v3/transferprocesses/{job['transferProcessId']}", {"COMPLETED"})
    process = Peer(ai, school).get(f"/transfers/{transfer['correlationId']}")
    assert process.status_code == 200 and process.json()[JOB_STATE] == "RELEASED", process.text


def test_a_compute_only_agreement_refuses_a_raw_pull(scenario: dict[str, Any]) -> None:
    b, school = scenario["b"], scenario["school"]
    transfer: Any = b.ok(b.post("/v3/transferprocesses", {
        "counterPartyAddress": school.dsp_url, "contractId": scenario["agreement"], "transferType": "HttpData-PULL",
        "protocol": "dataspace-protocol-http:2025-1"}))
    final = b.wait_state(f"/v3/transferprocesses/{transfer['@id']}", {"TERMINATED", "STARTED"})
    assert final["state"] == "TERMINATED"
    assert "no longer permits a transfer" in str(final.get("errorDetail")), final
    assert b.ok(b.post("/v3/edrs/request", {})) == []


def test_a_compute_request_is_checked_on_the_wire(scenario: dict[str, Any]) -> None:
    """A answers a malformed Compute-PULL request with 400 and a reason naming the field; nothing is stored."""
    school, ai, a = scenario["school"], scenario["ai"], scenario["a"]
    peer = Peer(ai, school)
    base = {"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@type": "TransferRequestMessage",
            "consumerPid": "urn:uuid:raw-1", "agreementId": _provider_agreement(a), "format": "Compute-PULL",
            "callbackAddress": ai.dsp_url}
    missing = peer.post("/transfers/request", base)
    assert missing.status_code == 400 and "computeJob" in missing.text
    bad = peer.post("/transfers/request", {**base, COMPUTE_JOB: {"algorithm": "x", "algorithmProvider": "ftp://x"}})
    assert bad.status_code == 400 and "algorithmProvider" in bad.text
    greedy = peer.post("/transfers/request", {**base, COMPUTE_JOB: {
        "algorithm": ALGORITHM_ASSET, "algorithmProvider": ai.dsp_url, "parameters": {"dpEpsilon": 9}}})
    assert greedy.status_code == 400 and "does not permit this compute job" in greedy.text
    assert a.ok(a.get("/v3/computejobs")) == []


def test_a_rejected_job_reaches_b_with_a_reason(scenario: dict[str, Any]) -> None:
    """Too few consenting records for the asked aggregation size: A rejects, B's job says why."""
    school, a, b = scenario["school"], scenario["a"], scenario["b"]
    job_id = submit(b, school, scenario["agreement"], minAggregationSize=3)
    job = demo.wait_job(b, job_id)
    assert job["state"] == "REJECTED", job
    provider_job = next(j for j in a.ok(a.get("/v3/computejobs?role=provider")))  # type: ignore[union-attr]
    assert provider_job["state"] == "REJECTED" and provider_job["reason"]
    assert job["reason"] == provider_job["reason"]
    assert job["outputs"] is None and job["receipt"] is None


def test_a_job_the_agreement_does_not_permit_is_refused_on_the_wire_and_b_says_why(scenario: dict[str, Any]) -> None:
    school, a, b = scenario["school"], scenario["a"], scenario["b"]
    job = demo.wait_job(b, submit(b, school, scenario["agreement"], dpEpsilon=3))
    assert job["state"] == "REJECTED", job
    assert "the provider refused the job request" in job["reason"]
    assert "does not permit this compute job" in job["reason"]
    assert a.ok(a.get("/v3/computejobs")) == []  # nothing was stored at A


def test_the_algorithm_agreement_is_negotiated_once_and_reused(scenario: dict[str, Any]) -> None:
    """Job 1 negotiates for B's algorithm and pulls it; job 2 uses A's cached copy; with the cache gone, job 3
    pulls it again under the same agreement."""
    school, ai, a, b = scenario["school"], scenario["ai"], scenario["a"], scenario["b"]

    def run(**parameters: Any) -> None:
        job = demo.wait_job(b, submit(b, school, scenario["agreement"], **parameters))
        assert job["state"] == "RELEASED", job

    def served() -> list[str]:
        transfers: Any = b.ok(b.post("/v3/transferprocesses/request", {"filterExpression": [
            {"operandLeft": "type", "operator": "=", "operandRight": "PROVIDER"}]}))
        return [t["assetId"] for t in transfers]

    run()
    run(dpEpsilon=0.25)
    assert served() == [ALGORITHM_ASSET]  # the second job used A's cached copy
    cached = list((school.data_dir / "c2d" / "algorithms").glob("*.tar.gz"))
    assert len(cached) == 1
    cached[0].unlink()
    run(dpEpsilon=0.25)
    assert served() == [ALGORITHM_ASSET, ALGORITHM_ASSET]
    ours: Any = a.ok(a.post("/v3/contractnegotiations/request", {"filterExpression": [
        {"operandLeft": "counterPartyId", "operator": "=", "operandRight": ai.did}]}))
    consumer_side = [n for n in ours if n.get("type") == "CONSUMER"]
    assert len(consumer_side) == 1 and consumer_side[0]["state"] == "FINALIZED", ours


def test_the_demo_runs(tmp_path: Path) -> None:
    completed = subprocess.run([sys.executable, "-m", "connector", "demo", "--workdir", str(tmp_path / "demo")],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    assert "Demo complete" in completed.stdout


def _provider_agreement(a: ManagementClient) -> str:
    agreements: Any = a.ok(a.post("/v3/contractagreements/request", {}))
    return str(agreements[0]["@id"])
