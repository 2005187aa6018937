"""The compute job's life: one transition table, shared by the provider (A) and the requester (B).

INTERFACE (lead's skeleton, filled in by the c2d-core helper).
QUEUED -> FETCHING -> VERIFYING -> RUNNING -> GATING -> RELEASED; any non-final state -> REJECTED (a rule said
no: signature, policy, consent, budget, gate) or FAILED (something broke: fetch, sandbox error, timeout, crash).
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "QUEUED"
    FETCHING = "FETCHING"
    VERIFYING = "VERIFYING"
    RUNNING = "RUNNING"
    GATING = "GATING"
    RELEASED = "RELEASED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"


FINAL = frozenset({JobState.RELEASED, JobState.REJECTED, JobState.FAILED})


class InvalidJobTransition(ValueError):
    pass


def next_state(current: JobState, target: JobState) -> JobState:
    """`target` if the table allows current -> target, else InvalidJobTransition naming both."""
    raise NotImplementedError
