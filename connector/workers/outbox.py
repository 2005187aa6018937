"""The outbox worker: deliver every queued DSP message at least once, in order per process.

A row reaches a sender in one of two ways. Usually the transaction that queued it already leased it to this
process (nothing else of that process was pending) and hands it over after commit; likewise the acknowledgement of
one message leases the next message of the same process. Everything else (retries, rows left by a crash, rows queued
while the worker was not running) is claimed by the dispatcher, which polls for due rows. Either way the send runs
outside any transaction, and the outcome is recorded, with the acknowledgement applied, in a transaction after it.

The acknowledgement of a negotiation message may wait a moment to be recorded (`unrecorded_acks.py`): the next
transaction of its process (the peer's answer, or another message queued for it) records it on the way, and what
nothing takes within `ACK_WAIT_SECONDS` the dispatcher records in batches; after a last message, which no answer
follows, it waits only `LAST_ACK_WAIT_SECONDS`, for company in its batch.

Two processes on one PostgreSQL database share the work (`FOR UPDATE SKIP LOCKED` plus the lease); a crash mid-send,
or before an acknowledgement was recorded, leaves a lease that expires (or is freed at restart) and the row is sent
again with the same message id, which the peer deduplicates.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from connector.dsp import messages
from connector.dsp.client import DspClient, PeerRejectedError, PeerUnavailableError
from connector.persistence import appends, process_rows
from connector.persistence.database import Database, after_commit, after_rollback, before_commit, is_postgres
from connector.persistence.tables import AgreementRow, NegotiationRow, OutboxRow, TransferRow
from connector.services import negotiations, transfers
from connector.services.runtime import Runtime
from connector.workers.unrecorded_acks import Acknowledged, UnrecordedAcks
from contracts import Role
from contracts.negotiation import NegotiationMessage
from contracts.transfer import TransferMessage

log = logging.getLogger("sovra.outbox")

LEASE = timedelta(seconds=20)  # longer than one send (connect 5 s, read 15 s); a crashed holder frees it soon
BACKOFF_BASE, BACKOFF_CAP = 0.5, 300.0
# How long an acknowledgement may wait for the peer's answer to record it before a batch does. Long enough for the
# answer to arrive under load: a batch holds the row locks of its processes, and at 0.25 s the answers arriving
# waited for them (a row lock took 0.86 ms on average and up to 125 ms, against 0.035 and 2.3 ms at 1 s,
# PostgreSQL, bursts of 50). A batch is for the exceptions: an answer slower than this, or none at all.
ACK_WAIT_SECONDS = 1.0
# The acknowledgement of a last message (a FINALIZED event, a termination), which no answer will take, waits this
# long for others to be recorded with it: in a burst, one transaction for several instead of one each.
LAST_ACK_WAIT_SECONDS = 0.05

OFFERED = "sovra_offered_acks"  # {process id: [Acknowledged]} taken by `offer_to_lock`, for `settle`
MARKED = "sovra_marked_acks"  # {outbox seq: marked sent} by the statement that locked the process row


@dataclass(frozen=True, slots=True)
class Delivery:
    """Everything needed to send one row, read in a short transaction before the network call."""

    seq: int
    process_type: str
    process_id: str
    message: str
    url: str | None
    audience: str
    body: dict[str, Any] | None
    problem: str | None = None


class OutboxWorker:
    def __init__(self, db: Database, rt: Runtime, client: DspClient, *,
                 data_address_for: Callable[[TransferRow], dict[str, Any] | None],
                 push: Callable[[TransferRow], Any] | None = None,
                 release: Callable[[str], None] | None = None,
                 validate: Callable[[dict[str, Any]], None] = lambda _m: None,
                 threads: int = 8, batch: int = 32, poll_seconds: float = 0.5) -> None:
        self._db, self._rt, self._client = db, rt, client
        self._data_address_for = data_address_for
        self._push = push
        self._release = release
        self._validate = validate
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sovra-outbox")
        self._threads = threads
        self._in_flight = 0
        self._count_lock = threading.Lock()
        self._batch, self._poll = batch, poll_seconds
        self._id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._throttled = False
        self._claim_asked = False  # a sender freed up while due rows waited for one: claim without waiting a poll
        self._waiting: set[str] = set()  # processes with a row queued behind an unacknowledged message
        self._acks = UnrecordedAcks()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.release_orphaned_leases()
        self._thread = threading.Thread(target=self._run, name="sovra-outbox-dispatch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._record_batch(self._acks.take_all())  # no dispatcher any more: what the senders left, now

    def release_orphaned_leases(self) -> int:
        """Free rows leased by a process of this host that is gone (killed mid-send), instead of waiting out
        the lease. Leases of other hosts only expire by time: we cannot tell whether they are alive."""
        host = socket.gethostname()
        with self._db.unit_of_work() as uow:
            rows = list(uow.scalars(select(OutboxRow).where(OutboxRow.status == "pending",
                                                           OutboxRow.leased_by.is_not(None))))
            freed = 0
            for row in rows:
                holder_host, _, rest = (row.leased_by or "").partition(":")
                pid = rest.partition(":")[0]
                if holder_host == host and pid.isdigit() and not _process_alive(int(pid)):
                    row.leased_by, row.lease_until = None, None
                    freed += 1
        if freed:
            log.info("released %d outbox rows leased by a process that is gone", freed)
        return freed

    def lease_for(self, now: datetime) -> tuple[str, datetime] | None:
        """The lease a new row takes in its own transaction, so that it can be sent without a claim."""
        if self._thread is None or self._stop.is_set():
            return None
        return self._id, now + LEASE

    def leased(self, uow: Session, row: OutboxRow) -> None:
        """`row` was leased to us in `uow`: build its message from the transaction's final state just before
        commit (no second read), and send it once committed. Should building fail, the sender builds it afresh."""
        prepared: list[Delivery] = []

        def prepare() -> None:
            try:
                uow.flush()
                prepared.append(self._prepare_row(uow, row))
            except Exception:
                log.exception("preparing outbox row %s in its own transaction failed", row.seq)

        before_commit(uow, prepare)
        after_commit(uow, lambda: self._hand_off(row.seq, prepared[0] if prepared else None))

    def queued_behind(self, process_id: str) -> None:
        """A row waits for the acknowledgement of an earlier message of its process, which then leases it."""
        with self._count_lock:
            self._waiting.add(process_id)
            # Its predecessor's acknowledgement may have arrived just now, after this transaction looked for it:
            # it must not wait out ACK_WAIT_SECONDS, and this message with it.
            hurried = self._acks.hurry(process_id, time.monotonic())
        if hurried:
            self._wake.set()

    def _hand_off(self, seq: int, delivery: Delivery | None) -> None:
        if self._stop.is_set():
            return  # the lease expires, or the next start frees it
        with self._count_lock:
            self._in_flight += 1
        future = self._pool.submit(self._deliver_leased, seq, delivery)
        future.add_done_callback(self._finished)

    def _deliver_leased(self, seq: int, delivery: Delivery | None) -> None:
        if delivery is None:
            try:
                with self._db.read_only() as session:
                    delivery = self._prepare(session, seq)
            except Exception as exc:
                log.exception("preparing outbox row %s failed", seq)
                self._retry_later(seq, f"{type(exc).__name__}: {exc}")
                return
        self._deliver(delivery)

    def _run(self) -> None:
        """Keep every sender thread busy: claim as many rows as there are idle threads, never wait for a batch.

        Rows leased by the transaction that queued them never need a claim; a claim looks for the others (retries,
        delayed messages, rows of a process that is gone) once a poll, and whenever a sender frees up while due
        rows wait. Waking to record acknowledgements does not claim: in a burst that was a claim every few tens
        of milliseconds, finding nothing."""
        claim_at = 0.0
        while not self._stop.is_set():
            self._wake.clear()
            self._record_batch(self._acks.take_due(time.monotonic(), along=LAST_ACK_WAIT_SECONDS))
            claimed = 0
            free = self._threads - self._in_flight
            claim_due = time.monotonic() >= claim_at or self._claim_asked
            self._throttled = claim_due and free <= 0  # a claim is due but no sender is free for it
            if free > 0 and claim_due:
                self._claim_asked = False
                claim_at = time.monotonic() + self._poll
                try:
                    deliveries = self._claim(limit=free)
                except Exception:  # a broken step must not kill the worker; it is retried next tick
                    log.exception("outbox claim failed")
                    deliveries = []
                # Every sender busy now: more rows may be due, so a sender that frees up wakes us (set before
                # the sends start, so that even the quickest one finds it).
                self._throttled = len(deliveries) >= free
                for delivery in deliveries:
                    self._started(delivery)
                claimed = len(deliveries)
            if claimed == 0 or self._in_flight >= self._threads:
                # A claim that waits for a free sender is woken by `_finished`, not by the clock.
                self._wake.wait(self._idle_seconds(time.monotonic() + self._poll if self._throttled else claim_at))

    def _idle_seconds(self, claim_at: float) -> float:
        """Until the next claim, or until the oldest unrecorded acknowledgement is due, whichever comes first."""
        due = self._acks.next_due()
        return max(0.0, min(claim_at, due if due is not None else claim_at) - time.monotonic())

    def _started(self, delivery: Delivery) -> None:
        with self._count_lock:
            self._in_flight += 1
        future = self._pool.submit(self._deliver, delivery)
        future.add_done_callback(self._finished)

    def _finished(self, _future: object) -> None:
        with self._count_lock:
            self._in_flight -= 1
            sender_free = self._in_flight < self._threads
        # The dispatcher left due rows unclaimed for want of a free sender: wake it once one is free. In a burst
        # most sends finish with others still queued for a thread; waking it after each of those (a thread
        # wake-up per send, for nothing) took 2-3 % of a provider's CPU.
        if self._throttled and sender_free:
            self._claim_asked = True
            self._wake.set()

    def run_once(self) -> int:
        """Claim due rows and deliver them before returning (for tests and tools); returns how many."""
        deliveries = self._claim(limit=self._batch)
        if deliveries:
            list(self._pool.map(self._deliver, deliveries))
        return len(deliveries)

    # -- claim -----------------------------------------------------------------------------------------------------
    def _claim(self, *, limit: int) -> list[Delivery]:
        """Lease up to `limit` due rows, the oldest unsent message of each process only.

        Candidates come from a read-only snapshot of the pending rows (few: only messages in flight), so an idle or
        caught-up worker never takes the write lock. The conditional UPDATE that leases them re-checks that nobody
        else did; on PostgreSQL the rows are first locked with SKIP LOCKED so two processes never wait on each other.
        """
        now = self._rt.clock()
        with self._db.read_only() as session:
            candidates = list(session.scalars(_due(now, limit)))
        if not candidates:
            return []
        with self._db.unit_of_work() as uow:
            if is_postgres(self._db.engine):
                locked = (select(OutboxRow.seq).where(OutboxRow.seq.in_(candidates))
                          .with_for_update(skip_locked=True))
                candidates = list(uow.scalars(locked))
                if not candidates:
                    return []
            leased = uow.execute(
                update(OutboxRow)
                .where(OutboxRow.seq.in_(candidates), OutboxRow.status == "pending",
                       (OutboxRow.lease_until.is_(None)) | (OutboxRow.lease_until < now))
                .values(leased_by=self._id, lease_until=now + LEASE)
                .returning(OutboxRow.seq)
                .execution_options(synchronize_session=False)
            )
            # Build each message in the same transaction: one read of the process, no second snapshot.
            return [self._prepare(uow, seq) for seq in sorted(leased.scalars())]

    # -- deliver ---------------------------------------------------------------------------------------------------
    def _deliver(self, delivery: Delivery) -> None:
        try:
            if delivery.message == transfers.PUSH_JOB:
                self._run_push(delivery)
                return
            if delivery.message == transfers.RELEASE_JOB:
                self._run_release(delivery)
                return
            if delivery.problem is not None:
                self._finish(delivery, error=delivery.problem, fatal=True)
                return
            assert delivery.url is not None and delivery.body is not None  # noqa: S101 - built together above
            response = self._client.post(delivery.url, delivery.body, audience=delivery.audience)
            self._finish(delivery, ack=response.body)
        except PeerRejectedError as exc:
            self._finish(delivery, error=str(exc), fatal=True)
        except PeerUnavailableError as exc:
            self._finish(delivery, error=str(exc), fatal=False)
        except Exception as exc:  # our own bug: keep the row, retry later, and say why
            log.exception("delivering outbox row %s failed", delivery.seq)
            self._retry_later(delivery.seq, f"{type(exc).__name__}: {exc}")

    def _prepare(self, uow: Session, seq: int) -> Delivery:
        row = uow.get(OutboxRow, seq)
        if row is None:
            raise LookupError(f"outbox row {seq} vanished while leased")
        return self._prepare_row(uow, row)

    def _prepare_row(self, uow: Session, row: OutboxRow) -> Delivery:
        if row.process_type == negotiations.PROCESS:
            return self._prepare_negotiation(uow, row)
        return self._prepare_transfer(uow, row)

    def _prepare_negotiation(self, uow: Session, row: OutboxRow) -> Delivery:
        negotiation = process_rows.load(uow, NegotiationRow, row.process_id)
        if negotiation is None:
            return Delivery(row.seq, row.process_type, row.process_id, row.message, None, "", None,
                            problem=f"negotiation {row.process_id} no longer exists")
        kind = NegotiationMessage(row.message)
        peer_pid = negotiation.provider_pid if negotiation.role == Role.CONSUMER else negotiation.consumer_pid
        initial = kind in (NegotiationMessage.CONTRACT_REQUEST, NegotiationMessage.CONTRACT_OFFER)
        if peer_pid is None and not initial:
            return Delivery(row.seq, row.process_type, row.process_id, row.message, None, "", None,
                            problem="the peer never acknowledged this negotiation, so it cannot be addressed")
        agreement = (process_rows.load(uow, AgreementRow, negotiation.agreement_id)
                     if negotiation.agreement_id and kind is NegotiationMessage.AGREEMENT else None)
        body = messages.negotiation_message(kind, negotiation, message_id=row.message_id,
                                            callback_address=self._rt.settings.dsp_url, agreement=agreement,
                                            params=row.params)
        url = negotiation.counter_party_address + messages.negotiation_path(kind, negotiation)
        return self._checked(row, url, negotiation.counter_party_id, body)

    def _prepare_transfer(self, uow: Session, row: OutboxRow) -> Delivery:
        transfer = uow.get(TransferRow, row.process_id)
        if transfer is None:
            return Delivery(row.seq, row.process_type, row.process_id, row.message, None, "", None,
                            problem=f"transfer {row.process_id} no longer exists")
        if row.message in transfers.JOBS:
            return Delivery(row.seq, row.process_type, row.process_id, row.message, None,
                            transfer.counter_party_id, None)
        kind = TransferMessage(row.message)
        peer_pid = transfer.provider_pid if transfer.role == Role.CONSUMER else transfer.consumer_pid
        if peer_pid is None and kind is not TransferMessage.REQUEST:
            return Delivery(row.seq, row.process_type, row.process_id, row.message, None, "", None,
                            problem="the peer never acknowledged this transfer, so it cannot be addressed")
        address = None
        if kind is TransferMessage.START and transfer.role == Role.PROVIDER:
            address = self._data_address_for(transfer)
        body = messages.transfer_message(kind, transfer, message_id=row.message_id,
                                         callback_address=self._rt.settings.dsp_url, params=row.params,
                                         data_address=address)
        url = transfer.counter_party_address + messages.transfer_path(kind, transfer)
        return self._checked(row, url, transfer.counter_party_id, body)

    def _checked(self, row: OutboxRow, url: str, audience: str, body: dict[str, Any]) -> Delivery:
        try:
            self._validate(body)
        except Exception as exc:  # an outbound message that breaks the schema is our bug: never send it
            return Delivery(row.seq, row.process_type, row.process_id, row.message, url, audience, body,
                            problem=f"outbound {row.message} violates the DSP schema: {exc}")
        return Delivery(row.seq, row.process_type, row.process_id, row.message, url, audience, body)

    def _run_push(self, delivery: Delivery) -> None:
        error: str | None = None
        try:
            if self._push is None:
                raise RuntimeError("no data plane is configured for push transfers")
            with self._db.read_only() as uow:
                transfer = uow.get(TransferRow, delivery.process_id)
            if transfer is not None:
                result = self._push(transfer)
                if asyncio.iscoroutine(result):
                    asyncio.run(result)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("push for transfer %s failed: %s", delivery.process_id, error)
        with self._db.unit_of_work() as uow:
            row = uow.get(OutboxRow, delivery.seq)
            if row is not None:
                row.status, row.sent_at, row.last_error = "sent", self._rt.clock(), error
            transfers.on_pushed(uow, self._rt, delivery.process_id, error=error)

    def _run_release(self, delivery: Delivery) -> None:
        """Pull a compute job's release document (consumer of a Compute-PULL); retried like a message."""
        try:
            if self._release is None:
                raise RuntimeError("no release puller is configured for compute transfers")
            self._release(delivery.process_id)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("pulling the compute release of transfer %s failed: %s", delivery.process_id, error)
            with self._db.unit_of_work() as uow:
                row = uow.get(OutboxRow, delivery.seq)
                if row is None or row.status != "pending":
                    return
                row.attempts += 1
                row.last_error = error
                row.lease_until, row.leased_by = None, None
                if row.attempts < self._rt.settings.outbox_max_attempts:
                    row.next_attempt_at = self._rt.clock() + timedelta(seconds=backoff(row.attempts))
                    return
                row.status = "failed"
                transfers.on_release_failed(uow, self._rt, delivery.process_id,
                                            f"gave up after {row.attempts} attempts: {error}")
            return
        with self._db.unit_of_work() as uow:
            row = uow.get(OutboxRow, delivery.seq)
            if row is not None:
                row.status, row.sent_at, row.lease_until = "sent", self._rt.clock(), None
            self._lease_next(uow, delivery.process_id)  # the completion queued behind the pull

    # -- outcomes --------------------------------------------------------------------------------------------------
    def _finish(self, delivery: Delivery, *, ack: dict[str, Any] | None = None, error: str | None = None,
                fatal: bool = False) -> None:
        if error is None:
            acknowledged = Acknowledged(delivery, ack, self._rt.clock(), time.monotonic() + self._ack_wait(delivery))
            if not self._kept(acknowledged):
                with self._db.unit_of_work() as uow:
                    self._record(uow, acknowledged)
            return
        with self._db.unit_of_work() as uow:
            row = uow.get(OutboxRow, delivery.seq)
            if row is None or row.leased_by != self._id:
                return
            row.attempts += 1
            row.last_error = error
            if fatal or row.attempts >= self._rt.settings.outbox_max_attempts:
                row.status, row.lease_until = "failed", None
                self._service(delivery).on_failed(uow, self._rt, delivery.process_id, self._kind(delivery),
                                                  error if fatal else f"gave up after {row.attempts} attempts: {error}")
                return
            row.lease_until, row.leased_by = None, None
            row.next_attempt_at = self._rt.clock() + timedelta(seconds=backoff(row.attempts))
        log.info("will retry %s for %s: %s", delivery.message, delivery.process_id, error)

    @staticmethod
    def _ack_wait(delivery: Delivery) -> float:
        """How long a negotiation message's acknowledgement may wait: for the peer's answer, whose transaction
        records it, or, after a last message, for the acknowledgements of others to be recorded together."""
        if delivery.process_type == negotiations.PROCESS and not negotiations.answer_expected(
                NegotiationMessage(delivery.message)):
            return LAST_ACK_WAIT_SECONDS
        return ACK_WAIT_SECONDS

    def _kept(self, acknowledged: Acknowledged) -> bool:
        """Keep `acknowledged` to be recorded with other work, if it may wait: only for a negotiation message (a
        transfer's acknowledgement starts work, a push or a compute release); not when a message of its process
        waits for it (that message would wait too; checked under the lock `queued_behind` takes, so that one
        queued meanwhile hurries it); nor when no dispatcher runs."""
        delivery = acknowledged.delivery
        if delivery.process_type != negotiations.PROCESS or self._thread is None or self._stop.is_set():
            return False
        with self._count_lock:
            if delivery.process_id in self._waiting:
                return False
            first = self._acks.add(acknowledged)
        if first:
            self._wake.set()  # the dispatcher may sleep a whole poll: it must wake for this one's batch
        return True

    def settle(self, uow: Session, process_id: str) -> None:
        """Record in `uow` the acknowledgements of `process_id` that wait to be recorded: before its next
        message is queued (which must not wait behind them) or a peer's message is applied to it (so that its
        timeline shows our message before the answer). Given back if `uow` rolls back."""
        taken = uow.info.get(OFFERED, {}).pop(process_id, []) + self._take(uow, process_id)
        for acknowledged in sorted(taken, key=lambda ack: ack.delivery.seq):
            self._record(uow, acknowledged)

    def offer_to_lock(self, uow: Session, cls: type, process_id: str) -> None:
        """Take the acknowledgements of `process_id` that wait, for `settle` to record in `uow`, and offer their
        rows' marks to the statement that will lock the process's row (`process_rows.ride_lock`): on PostgreSQL it
        marks them, and `settle` only reads whether each mark held."""
        taken = self._take(uow, process_id)
        if not taken:
            return
        uow.info.setdefault(OFFERED, {}).setdefault(process_id, []).extend(taken)
        # Marked and recorded go together: should no handler settle them, the transaction does before it commits.
        before_commit(uow, lambda: self.settle(uow, process_id))
        self._offer_marks(uow, cls, process_id, taken)

    def _offer_marks(self, uow: Session, cls: type, process_id: str, acks: list[Acknowledged]) -> None:
        """Offer the marks of `acks`' rows to the statement that locks `process_id`'s row; what it marked is in
        MARKED (nothing when no such statement comes)."""
        marked: dict[int, bool] = uow.info.setdefault(MARKED, {})
        for acknowledged in acks:
            index = process_rows.riders_offered(uow, cls, process_id)  # keeps parameter names apart
            seq = acknowledged.delivery.seq
            process_rows.ride_lock(uow, cls, process_id, appends.mark_sent_clause(index),
                                   appends.mark_sent_params(index, seq, holder=self._id, at=acknowledged.at),
                                   lambda count, seq=seq: marked.__setitem__(seq, count == 1))

    def _take(self, uow: Session, process_id: str) -> list[Acknowledged]:
        taken = self._acks.take(process_id)
        if taken:
            after_rollback(uow, lambda: self._acks.put_back(taken))
        return taken

    def _record(self, uow: Session, acknowledged: Acknowledged) -> None:
        """The row sent, the process moved on from its -ING state, and the message that waited for it leased."""
        delivery = acknowledged.delivery
        marked = uow.info.get(MARKED, {}).pop(delivery.seq, None)  # by the statement that locked the process row
        if marked is None and delivery.process_type == negotiations.PROCESS:
            self._offer_marks(uow, NegotiationRow, delivery.process_id, [acknowledged])
            negotiations.get_local(uow, delivery.process_id, lock=True)  # its lock carries the mark if not held yet
            marked = uow.info.get(MARKED, {}).pop(delivery.seq, None)
        if marked is None:
            marked = appends.mark_sent(uow, delivery.seq, holder=self._id, at=acknowledged.at)
        # False: our lease ran out and another sender owns the row now, which records the outcome.
        if marked:
            self._service(delivery).on_delivered(uow, self._rt, delivery.process_id, self._kind(delivery),
                                                 acknowledged.body)
            self._lease_next(uow, delivery.process_id)

    def _record_batch(self, batch: list[Acknowledged]) -> None:
        """Record acknowledgements that no transaction of their process took, in one transaction; should that
        fail, one by one, so that one bad row cannot hold back the others (a row left unrecorded is sent again
        once its lease runs out, and the peer answers the repeat as a redelivery)."""
        if not batch:
            return
        try:
            with self._db.unit_of_work() as uow:
                for acknowledged in batch:
                    self._record(uow, acknowledged)
            return
        except Exception:
            log.exception("recording %d acknowledgements together failed; recording them one by one", len(batch))
        for acknowledged in batch:
            try:
                with self._db.unit_of_work() as uow:
                    self._record(uow, acknowledged)
            except Exception:
                log.exception("recording the acknowledgement of outbox row %s failed", acknowledged.delivery.seq)

    def _lease_next(self, uow: Session, process_id: str) -> None:
        """The message that waited for this acknowledgement is due now: lease it here and send it after commit."""
        with self._count_lock:
            if process_id not in self._waiting:
                return
            self._waiting.discard(process_id)
        now = self._rt.clock()
        lease = self.lease_for(now)
        if lease is None:
            return
        successor = uow.scalars(select(OutboxRow).where(OutboxRow.status == "pending",
                                                        OutboxRow.process_id == process_id)
                                .order_by(OutboxRow.seq).limit(1)).first()
        if successor is None or successor.next_attempt_at > now:
            return
        if successor.lease_until is not None and successor.lease_until >= now:
            return  # already on its way (queued after this acknowledgement's row was marked sent)
        successor.leased_by, successor.lease_until = lease
        self.leased(uow, successor)

    def _retry_later(self, seq: int, error: str) -> None:
        with self._db.unit_of_work() as uow:
            row = uow.get(OutboxRow, seq)
            if row is not None and row.status == "pending":
                row.attempts += 1
                row.last_error = error
                row.lease_until, row.leased_by = None, None
                row.next_attempt_at = self._rt.clock() + timedelta(seconds=backoff(row.attempts))

    @staticmethod
    def _service(delivery: Delivery) -> Any:
        return negotiations if delivery.process_type == negotiations.PROCESS else transfers

    @staticmethod
    def _kind(delivery: Delivery) -> NegotiationMessage | TransferMessage:
        if delivery.process_type == negotiations.PROCESS:
            return NegotiationMessage(delivery.message)
        return TransferMessage(delivery.message)


def _due(now: datetime, limit: int) -> Select[tuple[int]]:
    """The rows to send now: per process only its oldest pending message (message n+1 waits for n's ack),
    and only if it is due and not leased. The grouping runs in the database over the pending rows only."""
    first = (select(func.min(OutboxRow.seq).label("seq")).where(OutboxRow.status == "pending")
             .group_by(OutboxRow.process_id).subquery())
    return (select(OutboxRow.seq).join(first, OutboxRow.seq == first.c.seq)
            .where(OutboxRow.next_attempt_at <= now,
                   (OutboxRow.lease_until.is_(None)) | (OutboxRow.lease_until < now))
            .order_by(OutboxRow.seq).limit(limit))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def backoff(attempts: int) -> float:
    """Capped exponential delay with full jitter, so retries from many processes do not synchronise."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempts)
    return random.uniform(ceiling / 2, ceiling)


__all__ = ["OutboxWorker", "backoff"]
