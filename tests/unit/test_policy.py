"""Pure policy: retry/backoff decisions and the state machine."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from queuectl.config import Settings
from queuectl.errors import InvalidInput
from queuectl.models import Job, Outcome
from queuectl.retry import backoff_delay, decide, rescue_exhausted
from queuectl.states import FINISHED, JobState, Transition, parse_state

NOW = 1_700_000_000.0
FAILED_RUN = Outcome(exit_code=3, output_tail="boom\n", started_at=NOW - 1, finished_at=NOW)
OK_RUN = Outcome(exit_code=0, started_at=NOW - 1, finished_at=NOW)


def settings(**stored: str) -> Settings:
    return Settings(stored=stored, env={})


def job(attempts: int, **fields: object) -> Job:
    return Job(id="j", command="x", state=JobState.PROCESSING, attempts=attempts,
               **fields)  # type: ignore[arg-type]


def test_success_completes() -> None:
    decision = decide(job(1), OK_RUN, settings(), NOW)
    assert decision.state is JobState.COMPLETED and decision.run_at is None


@pytest.mark.parametrize("attempts,wait", [(1, 2.0), (2, 4.0), (3, 8.0)])
def test_waits_are_base_to_the_attempts(attempts: int, wait: float) -> None:
    decision = decide(job(attempts), FAILED_RUN, settings(), NOW)
    assert decision.state is JobState.FAILED
    assert decision.run_at == NOW + wait
    assert decision.error == "exit code 3: boom"


def test_runs_at_most_one_plus_max_retries_times() -> None:
    # max-retries 3 (default): runs 1-3 fail and retry, run 4 is the last
    assert decide(job(3), FAILED_RUN, settings(), NOW).state is JobState.FAILED
    dead = decide(job(4), FAILED_RUN, settings(), NOW)
    assert dead.state is JobState.DEAD and dead.run_at is None
    assert dead.error == "exit code 3: boom"


def test_per_job_values_win_over_config() -> None:
    decision = decide(job(2, max_retries=5, backoff_base=3.0), FAILED_RUN,
                      settings(**{"max-retries": "1", "backoff-base": "10"}), NOW)
    assert decision.state is JobState.FAILED and decision.run_at == NOW + 9
    assert decide(job(1, max_retries=0), FAILED_RUN, settings(), NOW).state \
        is JobState.DEAD


def test_config_changes_reach_queued_jobs_without_own_values() -> None:
    assert decide(job(2), FAILED_RUN, settings(**{"max-retries": "1"}), NOW).state \
        is JobState.DEAD


def test_cap_and_overflow() -> None:
    assert backoff_delay(2, 20, 3600) == 3600
    assert backoff_delay(1000, 10_000, 60) == 60  # no OverflowError
    decision = decide(job(12, max_retries=50), FAILED_RUN,
                      settings(**{"backoff-max": "100"}), NOW)
    assert decision.run_at == NOW + 100


@given(st.floats(1, 10), st.integers(0, 30), st.floats(1, 10_000))
def test_jitter_only_shortens_by_at_most_a_quarter(base: float, attempts: int,
                                                  cap: float) -> None:
    exact = backoff_delay(base, attempts, cap)
    jittered = backoff_delay(base, attempts, cap, jitter=True, rng=random.Random(7))
    assert exact * 0.75 - 1e-9 <= jittered <= exact


def test_timeout_and_spawn_failure_reasons() -> None:
    timed_out = Outcome(exit_code=None, signal=15, timed_out=True)
    assert decide(job(1), timed_out, settings(), NOW).error == "timeout"
    spawn = Outcome(exit_code=None, spawn_error="working directory '/x' does not exist")
    assert "spawn failed" in (decide(job(1), spawn, settings(), NOW).error or "")
    killed = Outcome(exit_code=None, signal=9, output_tail="")
    assert decide(job(1), killed, settings(), NOW).error == "killed by signal 9"


def test_rescue_limit() -> None:
    assert not rescue_exhausted(job(1, rescues=2), settings())
    assert rescue_exhausted(job(1, rescues=3), settings())


def test_transition_table() -> None:
    assert Transition.DLQ_RETRY.sources == {JobState.DEAD}
    assert Transition.DLQ_RETRY.target is JobState.PENDING
    assert not Transition.CANCEL.allowed_from(JobState.COMPLETED)
    assert Transition.CANCEL.allowed_from(JobState.PROCESSING)
    assert all(not Transition.CLAIM.allowed_from(s) for s in FINISHED)
    assert Transition.RETRY.allowed_from(JobState.DEAD)
    # every state but the finished ones can move on
    movable = {s for t in Transition for s in t.sources}
    assert {JobState.SCHEDULED, JobState.PENDING, JobState.PROCESSING,
            JobState.FAILED} <= movable


def test_parse_state() -> None:
    assert parse_state("DLQ") is JobState.DEAD
    assert parse_state(" pending ") is JobState.PENDING
    with pytest.raises(InvalidInput, match="valid: scheduled, pending"):
        parse_state("done")
