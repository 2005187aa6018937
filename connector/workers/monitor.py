"""The policy monitor: a thread that re-evaluates the agreements of started transfers every few seconds.

Each transfer is judged in its own transaction, so one that fails to load or evaluate never holds up the others,
and two processes on one database may both run the monitor: the row lock and the STARTED check make a second
termination of the same transfer a no-op.
"""

from __future__ import annotations

import logging
import threading

from connector.persistence.database import Database
from connector.services import policy_monitor
from connector.services.runtime import Runtime

log = logging.getLogger("sovra.monitor")


class PolicyMonitor:
    def __init__(self, db: Database, rt: Runtime, *, interval: float) -> None:
        self._db, self._rt, self._interval = db, rt, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._interval <= 0:
            log.info("policy monitor is off (--policy-monitor-interval 0)")
            return
        self._thread = threading.Thread(target=self._run, name="sovra-policy-monitor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.run_once()
            except Exception:  # keep monitoring: a database hiccup must not end enforcement
                log.exception("policy monitor pass failed; retrying in %s s", self._interval)

    def run_once(self) -> int:
        """One pass over the started transfers; returns how many were terminated."""
        with self._db.read_only() as session:
            ids = policy_monitor.started_transfers(session)
        terminated = 0
        for transfer_id in ids:
            if self._stop.is_set():
                break
            try:
                with self._db.unit_of_work() as uow:
                    reason = policy_monitor.recheck(uow, self._rt, transfer_id)
            except Exception:
                log.exception("policy monitor could not re-evaluate transfer %s", transfer_id)
                continue
            if reason is not None:
                terminated += 1
                log.warning("transfer %s terminated by the policy monitor: %s", transfer_id, reason)
        return terminated
