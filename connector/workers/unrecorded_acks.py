"""Acknowledgements the outbox has received but not yet recorded, kept until a transaction records them.

Recording an acknowledgement (the outbox row sent, the process moved from its -ING state, an event) took a
transaction of its own after every send: a fifth of a connector's CPU in a burst of negotiations, and on PostgreSQL
five statements each. Most of these transactions are not needed on their own: the peer's answer to our message
arrives moments later, and the transaction that applies it can record the acknowledgement too, holding the
process's row already. What the answer does not take in time is recorded in batches (the outbox worker decides
which acknowledgements may wait at all).

Nothing is lost by waiting: until it is recorded, the row stays pending under our lease, and after a crash the
message is sent again with the same id, which the peer answers as a redelivery.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """A peer's answer to one of our messages: `delivery` is the outbox worker's `Delivery` that was sent."""

    delivery: Any
    body: dict[str, Any] | None
    at: datetime  # when the peer answered
    due: float  # time.monotonic() by which it is recorded in a batch, if no transaction took it before

    @property
    def process_id(self) -> str:
        return str(self.delivery.process_id)


class UnrecordedAcks:
    """Thread-safe: senders add, transactions and the batch take; a transaction that rolls back puts back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_process: dict[str, list[Acknowledged]] = {}

    def add(self, ack: Acknowledged) -> bool:
        """Keep `ack`; True when nothing was kept before (whoever records batches may be asleep)."""
        with self._lock:
            first = not self._by_process
            self._by_process.setdefault(ack.process_id, []).append(ack)
            return first

    def take(self, process_id: str) -> list[Acknowledged]:
        """The acknowledgements of `process_id`, oldest first; the caller records them (or puts them back)."""
        if not self._by_process:  # the common case in a transaction with nothing to record: no lock taken
            return []
        with self._lock:
            return self._by_process.pop(process_id, [])

    def hurry(self, process_id: str, now: float) -> bool:
        """Make the acknowledgements of `process_id` due `now`; True when it had any."""
        with self._lock:
            kept = self._by_process.get(process_id)
            if kept:
                self._by_process[process_id] = [replace(ack, due=min(ack.due, now)) for ack in kept]
            return bool(kept)

    def take_due(self, now: float, *, along: float = 0.0) -> list[Acknowledged]:
        """Every process's acknowledgements once its oldest is due: recorded together, in order. When any is due,
        those due within `along` seconds more come along (they would only wait to be recorded alone)."""
        with self._lock:
            if not any(acks[0].due <= now for acks in self._by_process.values()):
                return []
            due = [pid for pid, acks in self._by_process.items() if acks[0].due <= now + along]
            return [ack for pid in sorted(due) for ack in self._by_process.pop(pid)]

    def take_all(self) -> list[Acknowledged]:
        with self._lock:
            taken = [ack for pid in sorted(self._by_process) for ack in self._by_process[pid]]
            self._by_process.clear()
            return taken

    def put_back(self, acks: Iterable[Acknowledged]) -> None:
        with self._lock:
            for ack in acks:
                kept = self._by_process.setdefault(ack.process_id, [])
                kept.append(ack)
                kept.sort(key=lambda a: a.delivery.seq)

    def next_due(self) -> float | None:
        """When the oldest kept acknowledgement is due (time.monotonic()), or None when none is kept."""
        with self._lock:
            return min((acks[0].due for acks in self._by_process.values()), default=None)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(acks) for acks in self._by_process.values())
