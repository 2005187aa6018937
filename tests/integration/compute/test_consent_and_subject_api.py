"""The operator's consent and audit endpoints, subject tokens, and the data subject's own API over HTTP."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select, text

from compute_to_data.receipts import verify_receipt
from connector.persistence.tables import AuditEventRow, SubjectTokenRow
from connector.services import audit, subject_results
from tests.integration.compute.conftest import B_DID, MALLORY_DID, PURPOSE, World

SUBJECT = "/api/subject/v1"


def _token(world: World, subject: str) -> str:
    answer = world.client.post(f"/api/management/v3/subjects/{subject}/tokens")
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_operator_grants_revokes_and_lists(world: World) -> None:
    body = {"subject": "alice", "provider": B_DID, "purpose": PURPOSE}
    granted = world.client.post("/api/management/v3/consents/grant", json=body)
    assert granted.status_code == 200, granted.text
    assert granted.json()["action"] == "grant" and granted.json()["source"] == "operator"
    assert world.client.post("/api/management/v3/consents/grant", json={**body, "subject": "bob"}).status_code == 200
    assert world.client.post("/api/management/v3/consents/revoke", json=body).status_code == 200
    status = world.client.get("/api/management/v3/consents", params={"provider": B_DID}).json()
    assert {(s["subject"], s["granted"]) for s in status} == {("alice", False), ("bob", True)}
    events = world.client.get("/api/management/v3/consents", params={"subject": "alice", "view": "events"}).json()
    assert [e["action"] for e in events] == ["grant", "revoke"]


@pytest.mark.parametrize(("body", "pointer"), [
    ({"provider": B_DID, "purpose": PURPOSE}, "/subject"),
    ({"subject": "alice", "purpose": PURPOSE}, "/provider"),
    ({"subject": "alice", "provider": B_DID, "purpose": PURPOSE, "expiresAt": "tomorrow"}, "/expiresAt"),
    ({"subject": "alice", "provider": B_DID, "purpose": PURPOSE, "expiresAt": "2020-01-01T00:00:00Z"},
     "/expiresAt"),
])
def test_bad_consent_bodies_name_the_field(world: World, body: dict[str, str], pointer: str) -> None:
    answer = world.client.post("/api/management/v3/consents/grant", json=body)
    assert answer.status_code == 400
    assert answer.json()[0]["path"] == pointer, answer.json()


def test_a_bulk_import_records_every_event_or_none(world: World) -> None:
    events = [{"subject": f"s{i}", "provider": B_DID, "purpose": PURPOSE, "action": "grant"} for i in range(50)]
    events.append({"subject": "s0", "provider": B_DID, "purpose": PURPOSE, "action": "revoke"})
    answer = world.client.post("/api/management/v3/consents/import", json={"events": events})
    assert answer.status_code == 200, answer.text
    assert answer.json()["imported"] == 51
    status = world.client.get("/api/management/v3/consents", params={"provider": B_DID, "limit": 1000}).json()
    assert sum(s["granted"] for s in status) == 49
    bad = [{"subject": "x1", "provider": B_DID, "purpose": PURPOSE, "action": "grant"},
           {"subject": "x2", "provider": B_DID, "purpose": PURPOSE, "action": "maybe"}]
    refused = world.client.post("/api/management/v3/consents/import", json={"events": bad})
    assert refused.status_code == 400 and refused.json()[0]["path"] == "/events/1/action", refused.text
    assert world.client.get("/api/management/v3/consents", params={"subject": "x1"}).json() == []


def test_consent_endpoints_need_the_api_key(world: World) -> None:
    answer = world.client.get("/api/management/v3/consents", headers={"X-Api-Key": "wrong"})
    assert answer.status_code == 401


def test_token_is_shown_once_and_only_its_hash_is_stored(world: World) -> None:
    token = _token(world, "alice")
    with world.db.read_only() as session:
        rows = list(session.scalars(select(SubjectTokenRow)))
    assert [r.token_hash for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert world.client.get(f"{SUBJECT}/consents", headers=_as(token)).status_code == 200
    revoked = world.client.delete("/api/management/v3/subjects/alice/tokens")
    assert revoked.json()["revoked"] == 1
    assert world.client.get(f"{SUBJECT}/consents", headers=_as(token)).status_code == 401
    assert world.client.get(f"{SUBJECT}/consents").status_code == 401
    assert world.client.get(f"{SUBJECT}/consents", headers=_as("sovra_st_guess")).status_code == 401


def test_a_subject_manages_only_her_own_consents(world: World) -> None:
    alice = _token(world, "alice")
    answer = world.client.post(f"{SUBJECT}/consents", headers=_as(alice),
                               json={"provider": B_DID, "purpose": PURPOSE, "action": "grant",
                                     "subject": "bob"})  # a subject field is ignored: she is who her token says
    assert answer.status_code == 201, answer.text
    assert answer.json()["subject"] == "alice" and answer.json()["source"] == "subject"
    world.consent("bob")
    mine = world.client.get(f"{SUBJECT}/consents", headers=_as(alice)).json()
    assert mine["subject"] == "alice"
    assert [(c["subject"], c["granted"]) for c in mine["consents"]] == [("alice", True)]
    revoked = world.client.post(f"{SUBJECT}/consents", headers=_as(alice),
                                json={"provider": B_DID, "purpose": PURPOSE, "action": "revoke"})
    assert revoked.status_code == 201
    bad = world.client.post(f"{SUBJECT}/consents", headers=_as(alice), json={"provider": B_DID, "action": "maybe"})
    assert bad.status_code == 400 and bad.json()["path"] == "/action"


def test_a_subject_sees_only_her_jobs_and_results(sandboxed: World) -> None:
    world = sandboxed
    for subject in ("alice", "bob"):
        world.consent(subject)
    world.publish("career-match", world.b)
    job = world.run(world.request())
    assert job.state == "RELEASED", job.reason
    alice, dave = _token(world, "alice"), _token(world, "dave")
    assert subject_results.pending(world.db)  # the job's subjects are still one batch: readers must see it
    _her_view(world, job.id, alice, dave)
    assert subject_results.index_batches(world.db) == 1 and not subject_results.pending(world.db)
    _her_view(world, job.id, alice, dave)  # the same once indexed
    assert subject_results.index_batches(world.db) == 0


def _her_view(world: World, job_id: str, alice: str, dave: str) -> None:
    jobs = world.client.get(f"{SUBJECT}/jobs", headers=_as(alice)).json()
    assert [j["@id"] for j in jobs] == [job_id] and jobs[0]["hasResult"] is True
    assert "logs" not in jobs[0] and "outputs" not in jobs[0] and "parameters" not in jobs[0]
    result = world.client.get(f"{SUBJECT}/jobs/{job_id}/result", headers=_as(alice)).json()
    assert result == {"jobId": job_id, "subject": "alice", "state": "RELEASED", "result": {"score": 0.7}}
    receipt = world.client.get(f"{SUBJECT}/jobs/{job_id}/receipt", headers=_as(alice))
    assert receipt.status_code == 200
    assert verify_receipt(receipt.json(), world.connector.did_resolver.resolve).statement["predicate"]["jobId"] \
        == job_id

    # dave did not consent: nothing ran on his record, and another's job is a 404 to him
    assert world.client.get(f"{SUBJECT}/jobs", headers=_as(dave)).json() == []
    assert world.client.get(f"{SUBJECT}/jobs/{job_id}/result", headers=_as(dave)).status_code == 404
    assert world.client.get(f"{SUBJECT}/jobs/{job_id}/receipt", headers=_as(dave)).status_code == 404
    assert world.client.get(f"{SUBJECT}/jobs/no-such-job/result", headers=_as(alice)).status_code == 404


def test_the_audit_log_is_a_chain_and_tampering_is_detected(world: World) -> None:
    world.consent("alice")
    world.consent("alice", "revoke", provider=MALLORY_DID)
    _token(world, "alice")
    log = world.client.get("/api/management/v3/audit").json()
    assert log["chain"]["ok"] is True and log["chain"]["length"] == 3
    assert [e["kind"] for e in log["events"]] == ["consent.grant", "consent.revoke", "token.issue"]
    assert log["events"][1]["prevHash"] == log["events"][0]["hash"]
    only_alice = world.client.get("/api/management/v3/audit", params={"kind": "token.issue"}).json()
    assert [e["kind"] for e in only_alice["events"]] == ["token.issue"]

    with world.db.unit_of_work() as uow:  # someone with database access edits history
        uow.execute(text("UPDATE audit_events SET detail = :d WHERE id = :i"),
                    {"d": '{"provider": "did:web:innocent.example"}', "i": log["events"][1]["@id"]})
    with world.db.read_only() as session:
        status = audit.verify_chain(session)
    assert not status.ok and status.broken_at == int(log["events"][1]["@id"]) and "changed" in status.problem
    assert world.client.get("/api/management/v3/audit").json()["chain"]["ok"] is False


def test_deleting_an_audit_row_breaks_the_chain(world: World) -> None:
    for subject in ("alice", "bob", "carol"):
        world.consent(subject)
    with world.db.unit_of_work() as uow:
        second = uow.scalars(select(AuditEventRow.id).order_by(AuditEventRow.id).offset(1).limit(1)).one()
        uow.execute(text("DELETE FROM audit_events WHERE id = :i"), {"i": second})
    with world.db.read_only() as session:
        status = audit.verify_chain(session)
    assert not status.ok and "removed" in status.problem
