"""The job state machine: the transition table and parse_state (SPEC 2)."""

from __future__ import annotations

import pytest

from queuectl.errors import InvalidInput
from queuectl.states import (
    CLAIMABLE,
    FINISHED,
    LIVE,
    ORDER,
    JobState,
    Transition,
    parse_state,
)

S = JobState
ALL = set(JobState)

EXPECTED = {
    Transition.CLAIM: ({S.PENDING, S.SCHEDULED, S.FAILED}, S.PROCESSING),
    Transition.PROMOTE: ({S.SCHEDULED, S.FAILED}, S.PENDING),
    Transition.COMPLETE: ({S.PROCESSING}, S.COMPLETED),
    Transition.FAIL: ({S.PROCESSING}, S.FAILED),
    Transition.BURY: ({S.PROCESSING}, S.DEAD),
    Transition.REQUEUE: ({S.PROCESSING}, S.PENDING),
    Transition.CANCEL: ({S.SCHEDULED, S.PENDING, S.FAILED, S.PROCESSING, S.WAITING,
                         S.BLOCKED}, S.CANCELLED),
    Transition.RETRY: ({S.FAILED, S.DEAD, S.CANCELLED, S.COMPLETED}, S.PENDING),
    Transition.DLQ_RETRY: ({S.DEAD}, S.PENDING),
    Transition.RELEASE: ({S.WAITING, S.BLOCKED}, S.PENDING),
    Transition.BLOCK: ({S.WAITING}, S.BLOCKED),
    Transition.UNBLOCK: ({S.BLOCKED}, S.WAITING),
    Transition.DEPENDENCY_CANCEL: ({S.WAITING, S.BLOCKED}, S.CANCELLED),
}


def test_the_table_is_exactly_the_documented_one() -> None:
    assert set(Transition) == set(EXPECTED)
    for transition, (sources, target) in EXPECTED.items():
        assert transition.sources == frozenset(sources), transition
        assert transition.target is target, transition


@pytest.mark.parametrize("transition", list(Transition))
def test_allowed_from_matches_sources(transition: Transition) -> None:
    for state in JobState:
        assert transition.allowed_from(state) == (state in EXPECTED[transition][0])


def test_no_transition_is_a_self_loop() -> None:
    for transition in Transition:
        assert not transition.allowed_from(transition.target), transition


def test_state_values_and_str() -> None:
    assert [s.value for s in ORDER] == ["scheduled", "pending", "processing", "completed",
                                        "failed", "dead", "cancelled", "waiting", "blocked"]
    assert set(ORDER) == ALL and len(ORDER) == len(ALL)
    assert str(S.DEAD) == "dead" and f"{S.PENDING}" == "pending"
    assert S("failed") is S.FAILED and S.FAILED == "failed"


def test_state_groups() -> None:
    assert CLAIMABLE == {S.PENDING, S.SCHEDULED, S.FAILED}
    assert FINISHED == {S.COMPLETED, S.DEAD, S.CANCELLED}
    assert LIVE == {S.SCHEDULED, S.PENDING, S.PROCESSING, S.FAILED, S.WAITING, S.BLOCKED}
    assert LIVE | FINISHED == ALL and not LIVE & FINISHED


def test_finished_jobs_only_leave_by_user_action() -> None:
    automatic = [Transition.CLAIM, Transition.PROMOTE, Transition.COMPLETE,
                 Transition.FAIL, Transition.BURY, Transition.REQUEUE]
    for transition in automatic:
        assert not transition.sources & FINISHED, transition
    assert Transition.DLQ_RETRY.allowed_from(S.DEAD)
    assert Transition.RETRY.allowed_from(S.DEAD)
    assert not Transition.CANCEL.allowed_from(S.COMPLETED)
    assert not Transition.CANCEL.allowed_from(S.CANCELLED)


def test_every_live_state_can_reach_a_finished_state() -> None:
    edges = {s: {t.target for t in Transition if t.allowed_from(s)} for s in JobState}
    for start in LIVE:
        seen, todo = set(), [start]
        while todo:
            state = todo.pop()
            if state in seen:
                continue
            seen.add(state)
            todo.extend(edges[state])
        assert seen & FINISHED == FINISHED, start


def test_only_processing_jobs_complete_fail_or_die() -> None:
    for transition in (Transition.COMPLETE, Transition.FAIL, Transition.BURY):
        assert transition.sources == {S.PROCESSING}


@pytest.mark.parametrize("text,state", [
    ("pending", S.PENDING), ("PENDING", S.PENDING), (" pending ", S.PENDING),
    ("scheduled", S.SCHEDULED), ("processing", S.PROCESSING),
    ("completed", S.COMPLETED), ("failed", S.FAILED), ("dead", S.DEAD),
    ("cancelled", S.CANCELLED), ("dlq", S.DEAD), ("DLQ", S.DEAD), (" Dlq\n", S.DEAD),
])
def test_parse_state(text: str, state: JobState) -> None:
    assert parse_state(text) is state


@pytest.mark.parametrize("text", ["done", "", "running", "cancel", "pending,failed", "d"])
def test_parse_state_rejects_unknown_text(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_state(text)
    message = str(caught.value)
    assert f"unknown state {text!r}" in message
    assert "valid: scheduled, pending, processing, completed, failed, dead, cancelled" \
        in message
    assert caught.value.exit_code == 2
