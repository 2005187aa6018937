"""The compute worker: runs provider compute jobs one persisted step at a time.

A job row's state names the step that comes next. A thread claims a due job by writing a lease on it (a
conditional UPDATE, after `FOR UPDATE SKIP LOCKED` on PostgreSQL, the same way the outbox claims rows), runs that
one step (`services.compute_jobs.run_step`), and the step commits the job's next state only if the lease is still
its own. A worker that dies leaves a lease that runs out; the next claim repeats the step it was in, from inputs
that the previous steps committed, so a restart continues where the job was.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from compute_to_data.sandbox.base import (
    Availability,
    Sandbox,
    SandboxResult,
    SandboxSpec,
    SandboxUnavailable,
    create_sandbox,
)
from connector.persistence.database import Database, is_postgres
from connector.persistence.tables import ComputeJobRow
from connector.services import compute_jobs, subject_results
from connector.services.runtime import Runtime
from connector.settings import Settings

log = logging.getLogger("sovra.compute")

# When a job ends, its release is still on its way: A's TransferStart, B's pull of the document, B's receipt check.
# Indexing the job's subjects and starting a standby sandbox both take a core for a while, so they wait until the
# worker has had nothing to do for this long (a job that comes in meanwhile goes first).
IDLE_GRACE_SECONDS = 0.25


def sandbox_options(settings: Settings) -> dict[str, Any]:
    """The backend's constructor options from the settings: bubblewrap keeps --c2d-standby pre-started sandboxes,
    started with the caps every job's limits stay under (compute_jobs.job_limits)."""
    if settings.sandbox_backend != "bubblewrap" or settings.c2d_standby < 1:
        return {}
    work = settings.c2d_work_dir or settings.data_dir / "c2d"
    return {"standby": settings.c2d_standby, "standby_dir": Path(work) / "standby",
            "standby_limits": compute_jobs.STANDBY_LIMITS}


def open_sandbox(backend: str, options: Mapping[str, Any] | None = None) -> tuple[Sandbox | None, str]:
    """The configured sandbox, or None and why not: the caller refuses jobs instead of running them bare."""
    if backend == "none":
        return None, "the sandbox backend is 'none' (--sandbox-backend); no compute job may run"
    try:
        sandbox = create_sandbox(backend, **(options or {}))
    except SandboxUnavailable as exc:
        return None, str(exc)
    except NotImplementedError:
        return None, f"the sandbox backend {backend!r} is not implemented in this build"
    availability = sandbox.available()
    if not availability.ok:
        return None, f"sandbox backend {backend!r} is unusable here: {availability.reason}"
    return sandbox, ""


class LazySandbox:
    """The configured backend, opened (and probed with a real test run) on first use instead of at start-up:
    a connector that never computes pays nothing, and one whose backend is unusable refuses every job with the
    backend's reason. `Connector.start` asks once in the background, so the warning still shows at start."""

    def __init__(self, backend: str, options: Mapping[str, Any] | None = None) -> None:
        self.name = backend
        self._options = dict(options or {})
        self._lock = threading.Lock()
        self._opened: tuple[Sandbox | None, str] | None = None

    def prepare(self) -> None:
        """Let the backend get ready for the next job (bubblewrap tops up its standbys); only once it is open."""
        self._on_opened("prepare")

    def close(self) -> None:
        """Stop what the backend keeps running between jobs (bubblewrap's standbys)."""
        self._on_opened("close")

    def _on_opened(self, method: str) -> None:
        """Call the opened backend's `method`, if it has one; nothing before the backend is open."""
        with self._lock:
            sandbox = self._opened[0] if self._opened else None
        call = getattr(sandbox, method, None)
        if call is not None:
            call()

    def _open(self) -> tuple[Sandbox | None, str]:
        with self._lock:
            if self._opened is None:
                self._opened = open_sandbox(self.name, self._options)
                if self._opened[0] is None:
                    log.warning("!!! no compute-to-data sandbox: %s. Every compute job will be REJECTED !!!",
                                self._opened[1])
            return self._opened

    def available(self) -> Availability:
        sandbox, problem = self._open()
        return Availability(True) if sandbox is not None else Availability(False, problem)

    def run(self, spec: SandboxSpec) -> SandboxResult:
        sandbox, problem = self._open()
        if sandbox is None:
            raise SandboxUnavailable(problem)
        return sandbox.run(spec)


class ComputeWorker:
    def __init__(self, db: Database, rt: Runtime, *, threads: int = 1, poll_seconds: float = 0.5) -> None:
        self._db, self._rt = db, rt
        self._threads, self._poll = threads, poll_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        if self._threads < 1:
            log.info("compute worker is off (--c2d-workers 0)")
            return
        for n in range(self._threads):
            thread = threading.Thread(target=self._run, name=f"sovra-compute-{n}", daemon=True)
            thread.start()
            self._workers.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._workers:
            thread.join(timeout)

    def wake(self) -> None:
        """A job was queued: look now instead of at the next poll."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:  # keep running: one broken job or a database hiccup must not stop all jobs
                log.exception("compute worker pass failed")
                worked = False
            if worked:
                continue
            if self._wake.wait(IDLE_GRACE_SECONDS):  # a job came in: it goes before the housekeeping
                self._wake.clear()
                continue
            self._housekeep()
            self._wake.wait(self._poll)
            self._wake.clear()

    def _housekeep(self) -> None:
        """Idle: index subjects, delete ended jobs' folders left behind, get the sandbox ready for the next job."""
        self._index_subjects()
        try:
            compute_jobs.empty_trash(self._rt)
        except OSError:  # retried at the next idle pass
            log.exception("emptying the compute work folder's trash failed")
        self._prepare_sandbox()

    def _index_subjects(self) -> None:
        """Subject batches of ended jobs become indexed rows (subject_results.py); readers see them either way."""
        try:
            while subject_results.pending(self._db) and subject_results.index_batches(self._db):
                pass
        except Exception:  # noqa: BLE001 - retried at the next pass; never stops the worker
            log.exception("indexing the subjects of ended jobs failed")

    def _prepare_sandbox(self) -> None:
        """Idle: let the sandbox get ready for the next job (bubblewrap starts its standbys now, not mid-job)."""
        prepare = getattr(self._rt.sandbox, "prepare", None)
        if prepare is not None:
            try:
                prepare()
            except Exception:  # noqa: BLE001 - a job then starts cold; it never stops the worker
                log.exception("preparing the sandbox failed")

    def run_once(self) -> bool:
        """Claim one due job and run its steps while the lease holds; False when nothing was due. With a job
        claimed, the subjects of jobs that ended are indexed first (a queue of jobs never waits for an idle
        moment); with none, that waits for the idle pass."""
        job_id = self.claim()
        if job_id is None:
            return False
        self._index_subjects()
        compute_jobs.run_job(self._db, self._rt, job_id, self.owner)
        return True

    def claim(self) -> str | None:
        now = self._rt.clock()
        due = (select(ComputeJobRow.id)
               .where(ComputeJobRow.role == compute_jobs.PROVIDER,
                      ComputeJobRow.state.in_(compute_jobs.ACTIVE_STATES),
                      (ComputeJobRow.lease_until.is_(None)) | (ComputeJobRow.lease_until < now))
               .order_by(ComputeJobRow.updated_at).limit(8))
        with self._db.read_only() as session:
            candidates = list(session.scalars(due))
        if not candidates:
            return None
        with self._db.unit_of_work() as uow:
            if is_postgres(self._db.engine):
                candidates = list(uow.scalars(select(ComputeJobRow.id).where(ComputeJobRow.id.in_(candidates))
                                              .with_for_update(skip_locked=True)))
            for job_id in candidates:
                job = uow.get(ComputeJobRow, job_id)
                if job is None:
                    continue
                seconds = compute_jobs.lease_seconds(self._rt, job)
                claimed = uow.execute(
                    update(ComputeJobRow)
                    .where(ComputeJobRow.id == job_id, ComputeJobRow.state == job.state,
                           (ComputeJobRow.lease_until.is_(None)) | (ComputeJobRow.lease_until < now))
                    .values(lease_owner=self.owner, lease_until=now + timedelta(seconds=seconds),
                            attempts=ComputeJobRow.attempts + 1)
                    .execution_options(synchronize_session=False))
                if claimed.rowcount == 1:
                    return job_id
        return None
