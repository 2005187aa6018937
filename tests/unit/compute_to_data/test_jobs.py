"""The job table: the pipeline, endings from every live state, nothing out of a final state."""

from __future__ import annotations

import itertools

import pytest

from compute_to_data.jobs import FINAL, PIPELINE, InvalidJobTransition, JobState, is_final, mirror_state, next_state

S = JobState
LIVE = [s for s in S if s not in FINAL]


def test_the_pipeline() -> None:
    state = S.QUEUED
    for target in PIPELINE[1:]:
        state = next_state(state, target)
    assert state is S.RELEASED and is_final(state)


@pytest.mark.parametrize(("state", "ending"), list(itertools.product(LIVE, [S.REJECTED, S.FAILED])))
def test_every_live_state_may_end(state: JobState, ending: JobState) -> None:
    assert next_state(state, ending) is ending


ALLOWED = {(a, b) for a, b in itertools.pairwise(PIPELINE)} | {(s, e) for s in LIVE for e in (S.REJECTED, S.FAILED)}


@pytest.mark.parametrize(("current", "target"),
                         [p for p in itertools.product(S, S) if p not in ALLOWED])
def test_everything_else_is_refused(current: JobState, target: JobState) -> None:
    with pytest.raises(InvalidJobTransition) as caught:
        next_state(current, target)
    assert str(current) in str(caught.value) and str(target) in str(caught.value)


def test_strings_are_accepted() -> None:
    assert next_state("QUEUED", "FETCHING") is S.FETCHING  # type: ignore[arg-type]


def test_mirror_moves_forward_only_and_finals_stick() -> None:
    assert mirror_state(S.QUEUED, S.RUNNING) is S.RUNNING
    assert mirror_state(S.RUNNING, S.FETCHING) is S.RUNNING
    assert mirror_state(S.QUEUED, S.RELEASED) is S.RELEASED
    assert mirror_state(S.GATING, S.REJECTED) is S.REJECTED
    assert mirror_state(S.RELEASED, S.FAILED) is S.RELEASED
    assert mirror_state(S.FAILED, S.RUNNING) is S.FAILED
