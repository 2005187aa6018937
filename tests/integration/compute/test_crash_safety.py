"""Persisted intent: a job whose worker died keeps its lease until it runs out, then another worker resumes it
from the step it was in; a live lease is never taken over."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from connector.persistence.tables import ComputeJobRow
from connector.services import audit, compute_jobs
from connector.workers.compute import ComputeWorker
from tests.integration.compute.conftest import RecordingSandbox, World


def _lease(world: World, job_id: str, *, owner: str, seconds: float, state: str | None = None) -> None:
    values: dict[str, object] = {"lease_owner": owner, "lease_until": world.rt.clock() + timedelta(seconds=seconds)}
    if state is not None:
        values["state"] = state
    with world.db.unit_of_work() as uow:
        uow.execute(update(ComputeJobRow).where(ComputeJobRow.id == job_id).values(**values))


def test_a_job_held_by_a_dead_worker_resumes_after_its_lease(sandboxed: World) -> None:
    world = sandboxed
    world.consent("alice")
    world.consent("bob")
    world.publish("career-match", world.b)
    job_id = world.request()
    worker = ComputeWorker(world.db, world.rt)
    assert worker.claim() == job_id
    while world.job(job_id).state != "RUNNING":  # QUEUED -> FETCHING -> VERIFYING -> RUNNING, one step each
        assert compute_jobs.run_step(world.db, world.rt, job_id, worker.owner)
    # a worker got to RUNNING and died (its process is gone; the lease is still in the row)
    _lease(world, job_id, owner="elsewhere:4242:dead", seconds=60)
    assert worker.claim() is None, "a live lease must not be taken over"
    _lease(world, job_id, owner="elsewhere:4242:dead", seconds=-1)  # ... until it runs out
    job = world.run(job_id)
    assert job.state == "RELEASED", job.reason
    assert job.record_count == 2
    with world.db.read_only() as session:
        assert audit.verify_chain(session).ok


def test_a_step_result_of_a_worker_that_lost_its_lease_is_dropped(world: World, recording: RecordingSandbox) -> None:
    """Worker 1 claims, its lease runs out, worker 2 takes the job: worker 1's late commit changes nothing."""
    world.consent("alice")
    world.publish("career-match", world.b)
    job_id = world.request()
    first, second = ComputeWorker(world.db, world.rt), ComputeWorker(world.db, world.rt)
    assert first.claim() == job_id
    _lease(world, job_id, owner=first.owner, seconds=-1)
    assert second.claim() == job_id
    compute_jobs.run_step(world.db, world.rt, job_id, first.owner)  # too late: not its lease any more
    assert world.job(job_id).state == "QUEUED"
    compute_jobs.run_step(world.db, world.rt, job_id, second.owner)
    assert world.job(job_id).state == "FETCHING"


def test_a_step_that_keeps_breaking_gives_up(world: World, recording: RecordingSandbox) -> None:
    world.consent("alice")
    world.publish("career-match", world.b)
    job_id = world.request()

    class Broken:
        def fetch(self, job: object) -> object:
            raise OSError("disk on fire")

    world.rt.algorithm_source = Broken()  # type: ignore[assignment]
    worker = ComputeWorker(world.db, world.rt)
    assert worker.run_once()  # QUEUED -> FETCHING, which breaks
    for _ in range(7):
        if world.job(job_id).state == "FAILED":
            break
        _lease(world, job_id, owner=worker.owner, seconds=-1)  # the broken step's lease runs out
        assert worker.run_once()
    job = world.job(job_id)
    assert job.state == "FAILED" and "gave up after 5 attempts at FETCHING" in job.reason, job.reason
    assert any("broke (OSError)" in e["message"] for e in job.events)
    assert "disk on fire" not in repr(job.events)


def test_worker_threads_run_a_queued_job_on_their_own(sandboxed: World) -> None:
    """The worker as the container starts it: threads that claim, woken by the commit that queued the job."""
    import time

    world = sandboxed
    world.consent("alice")
    world.consent("bob")
    world.publish("career-match", world.b)
    worker = ComputeWorker(world.db, world.rt, threads=2, poll_seconds=5.0)
    world.rt.compute_wake = worker.wake
    worker.start()
    try:
        job_id = world.request()
        deadline = time.monotonic() + 60
        while world.job(job_id).state not in ("RELEASED", "REJECTED", "FAILED") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    job = world.job(job_id)
    assert job.state == "RELEASED", job.reason
    assert [e["state"] for e in job.events] == ["QUEUED", "FETCHING", "VERIFYING", "RUNNING", "GATING", "RELEASED"]
