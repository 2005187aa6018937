"""The compute job's life: one transition table, shared by the provider (A) and the requester (B).

INTERFACE (lead's skeleton, filled in by the c2d-core helper).
QUEUED -> FETCHING -> VERIFYING -> RUNNING -> GATING -> RELEASED; any non-final state -> REJECTED (a rule said
no: signature, policy, consent, budget, gate) or FAILED (something broke: fetch, sandbox error, timeout, crash).

The provider walks the table one step at a time (`next_state`). The requester only learns A's state from the
wire, possibly several steps later; `mirror_state` moves its copy forward along the same order and never back.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final


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

S = JobState
PIPELINE: Final = (S.QUEUED, S.FETCHING, S.VERIFYING, S.RUNNING, S.GATING, S.RELEASED)
_ENDINGS: Final = frozenset({S.REJECTED, S.FAILED})

TRANSITIONS: Final[Mapping[JobState, frozenset[JobState]]] = {
    S.QUEUED: frozenset({S.FETCHING}) | _ENDINGS,
    S.FETCHING: frozenset({S.VERIFYING}) | _ENDINGS,
    S.VERIFYING: frozenset({S.RUNNING}) | _ENDINGS,
    S.RUNNING: frozenset({S.GATING}) | _ENDINGS,
    S.GATING: frozenset({S.RELEASED}) | _ENDINGS,
    S.RELEASED: frozenset(),
    S.REJECTED: frozenset(),
    S.FAILED: frozenset(),
}


class InvalidJobTransition(ValueError):
    pass


def is_final(state: JobState | str) -> bool:
    return JobState(state) in FINAL


def next_state(current: JobState, target: JobState) -> JobState:
    """`target` if the table allows current -> target, else InvalidJobTransition naming both."""
    current, target = JobState(current), JobState(target)
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (final state)"
        raise InvalidJobTransition(f"a compute job cannot move from {current} to {target}; allowed: {allowed}")
    return target


def mirror_state(current: JobState, reported: JobState) -> JobState:
    """The requester's copy after the provider reported `reported`: forward only, a final state sticks.

    A stale report (an earlier state, e.g. a late answer to a refresh) leaves `current` unchanged; a report after a
    final state is ignored the same way, so B's job never leaves RELEASED/REJECTED/FAILED.
    """
    current, reported = JobState(current), JobState(reported)
    if current in FINAL:
        return current
    if reported in _ENDINGS:
        return reported
    return reported if PIPELINE.index(reported) > PIPELINE.index(current) else current
