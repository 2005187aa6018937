"""Every way a provider job is refused before anything runs: the job ends REJECTED (or FAILED) with a reason that
names the cause, it carries a signed receipt, and the sandbox never saw it."""

from __future__ import annotations

import pytest

from compute_to_data import bundle, signing
from compute_to_data.receipts import verify_receipt
from connector.persistence.tables import PrivacyBudgetRow
from connector.services import subject_results
from connector.services.algorithm_source import FetchedAlgorithm
from tests.integration.compute.conftest import (
    B_DID,
    MALLORY_DID,
    RecordingSandbox,
    World,
    compute_policy,
    manifest,
)


def _refused(world: World, job_id: str, state: str, *fragments: str) -> None:
    job = world.run(job_id)
    assert job.state == state, (job.state, job.reason)
    for fragment in fragments:
        assert fragment in (job.reason or ""), job.reason
    assert job.receipt is not None
    verified = verify_receipt(job.receipt, world.connector.did_resolver.resolve)
    assert verified.signer_did == world.connector.settings.participant_id
    assert verified.statement["predicate"]["state"] == state
    with world.db.read_only() as session:
        assert subject_results.subjects_of(session, job_id) == {}


@pytest.fixture(autouse=True)
def _consents(world: World) -> None:
    world.consent("alice")
    world.consent("bob")


def test_tampered_artifact(world: World, recording: RecordingSandbox) -> None:
    world.publish("career-match", world.b, tamper=True)
    _refused(world, world.request(), "REJECTED", "verification failed (digest)")
    assert recording.runs == []


def test_wrong_signer(world: World, recording: RecordingSandbox) -> None:
    """Signed by Mallory's key but claiming to be B: the signature does not verify against B's DID document."""
    world.publish("career-match", world.b)
    fetched = world.source.bundles["career-match"]
    statement = signing.bundle_statement(fetched.archive.name, bundle.digest_file(fetched.archive), manifest(),
                                         B_DID, started="2026-11-22T00:00:00Z", finished="2026-11-22T00:00:00Z")
    forged = signing.sign_statement(statement, world.mallory.key, B_DID)
    forged["signatures"][0]["keyid"] = f"{B_DID}#{world.b.key.kid}"  # names B's key; Mallory's signature
    world.source.bundles["career-match"] = FetchedAlgorithm(archive=fetched.archive, envelope=forged)
    _refused(world, world.request(), "REJECTED", "verification failed (signature)")
    assert recording.runs == []


def test_unsigned(world: World, recording: RecordingSandbox) -> None:
    world.publish("career-match", None)
    _refused(world, world.request(), "REJECTED", "unsigned")
    assert recording.runs == []


def test_policy_denies_a_signer_it_does_not_allow(world: World, recording: RecordingSandbox) -> None:
    """Mallory signs validly with her own DID; the agreement allows only B's signatures."""
    world.publish("career-match", world.mallory)
    job_id = world.request()
    _refused(world, job_id, "REJECTED", "policy does not permit", "algorithmSigner")
    assert world.job(job_id).algorithm_signer == MALLORY_DID
    assert recording.runs == []


def test_policy_denies_an_epsilon_above_the_agreed(world: World, recording: RecordingSandbox) -> None:
    world.publish("career-match", world.b)
    _refused(world, world.request(dpEpsilon=3.0), "REJECTED", "policy does not permit", "dpEpsilon")
    assert recording.runs == []


def test_budget_overrun_names_both_numbers(world: World, recording: RecordingSandbox) -> None:
    world.set_policy(compute_policy([B_DID], budget=100))
    world.publish("career-match", world.b)
    with world.db.unit_of_work() as uow:
        uow.add(PrivacyBudgetRow(asset_id="students", budget=1.0, spent=0.8, updated_at=world.rt.clock()))
    _refused(world, world.request(dpEpsilon=0.5), "REJECTED", "epsilon 0.5", "0.2", "budget 1")
    assert recording.runs == []


def test_no_consenting_records(world: World, recording: RecordingSandbox) -> None:
    world.consent("alice", "revoke")
    world.consent("bob", "revoke")
    world.publish("career-match", world.b)
    _refused(world, world.request(), "REJECTED", "no consenting records")
    assert recording.runs == []


def test_consent_for_another_provider_does_not_count(world: World, recording: RecordingSandbox) -> None:
    world.consent("alice", "revoke")
    world.consent("bob", "revoke")
    world.consent("carol", provider=MALLORY_DID)
    world.publish("career-match", world.b)
    _refused(world, world.request(), "REJECTED", "no consenting records")


def test_no_sandbox_rejects_before_fetching(world: World) -> None:
    world.rt.sandbox = None
    world.rt.sandbox_problem = "the sandbox backend is 'none'"
    world.publish("career-match", world.b)
    _refused(world, world.request(), "REJECTED", "no sandbox", "'none'")
    assert world.source.fetched == []


def test_fetch_failure_is_failed(world: World, recording: RecordingSandbox) -> None:
    _refused(world, world.request("not-published"), "FAILED", "could not fetch the algorithm")
