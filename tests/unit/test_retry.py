"""Pure retry policy: decide() and backoff_delay() (SPEC 1 and 2)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from queuectl.config import Settings
from queuectl.models import Job, Outcome
from queuectl.retry import (
    Decision,
    backoff_delay,
    decide,
    effective_backoff_base,
    effective_max_retries,
    effective_timeout,
    rescue_exhausted,
)
from queuectl.states import JobState

NOW = 1_700_000_000.0
FAILED_RUN = Outcome(exit_code=3, output_tail="boom\n", started_at=NOW - 1, finished_at=NOW)
OK_RUN = Outcome(exit_code=0, started_at=NOW - 1, finished_at=NOW)


def settings(**stored: str) -> Settings:
    return Settings(stored=stored, env={})


def job(attempts: int, **fields: object) -> Job:
    return Job(id="j", command="x", state=JobState.PROCESSING, attempts=attempts,
               **fields)  # type: ignore[arg-type]


# -- backoff_delay ------------------------------------------------------------------

@pytest.mark.parametrize("base,attempts,expected", [
    (2, 0, 1.0), (2, 1, 2.0), (2, 2, 4.0), (2, 3, 8.0), (2, 10, 1024.0),
    (3, 2, 9.0), (1, 50, 1.0), (1.5, 2, 2.25), (10, 3, 1000.0),
])
def test_backoff_is_base_to_the_attempts_exactly(base: float, attempts: int,
                                                 expected: float) -> None:
    assert backoff_delay(base, attempts, 3600) == expected


def test_backoff_is_capped() -> None:
    assert backoff_delay(2, 11, 3600) == 2048
    assert backoff_delay(2, 12, 3600) == 3600  # 4096 capped
    assert backoff_delay(2, 20, 3600) == 3600
    assert backoff_delay(2, 3, 5) == 5
    assert backoff_delay(2, 3, 8) == 8  # exactly at the cap


def test_huge_exponent_does_not_overflow() -> None:
    assert backoff_delay(1000, 10_000, 60) == 60
    assert backoff_delay(2.5, 100_000, 3600) == 3600


def test_no_jitter_is_deterministic_and_ignores_rng() -> None:
    assert backoff_delay(2, 5, 3600, jitter=False, rng=random.Random(1)) == 32.0


def test_jitter_changes_the_delay_and_is_reproducible_with_a_seed() -> None:
    first = backoff_delay(2, 5, 3600, jitter=True, rng=random.Random(42))
    second = backoff_delay(2, 5, 3600, jitter=True, rng=random.Random(42))
    assert first == second
    assert 24.0 <= first < 32.0
    values = {backoff_delay(2, 5, 3600, jitter=True, rng=random.Random(seed))
              for seed in range(20)}
    assert len(values) > 1


@given(st.floats(1, 10), st.integers(0, 30), st.floats(1, 10_000), st.integers(0, 2**32))
def test_jitter_only_shortens_by_at_most_a_quarter(base: float, attempts: int,
                                                  cap: float, seed: int) -> None:
    exact = backoff_delay(base, attempts, cap)
    jittered = backoff_delay(base, attempts, cap, jitter=True, rng=random.Random(seed))
    assert exact <= cap
    assert exact * 0.75 - 1e-9 <= jittered <= exact


# -- decide ---------------------------------------------------------------------------

def test_success_completes() -> None:
    decision = decide(job(1), OK_RUN, settings(), NOW)
    assert decision == Decision(JobState.COMPLETED, None, None)


def test_success_on_the_last_allowed_attempt_still_completes() -> None:
    assert decide(job(4), OK_RUN, settings(), NOW).state is JobState.COMPLETED


@pytest.mark.parametrize("attempts,wait", [(1, 2.0), (2, 4.0), (3, 8.0)])
def test_waits_are_base_to_the_attempts(attempts: int, wait: float) -> None:
    decision = decide(job(attempts), FAILED_RUN, settings(), NOW)
    assert decision.state is JobState.FAILED
    assert decision.run_at == NOW + wait
    assert decision.error == "exit code 3: boom"


def test_full_life_of_a_failing_job_with_defaults() -> None:
    """max-retries 3: a job runs 4 times (waits 2, 4, 8 s between), then is dead."""
    states, waits = [], []
    attempts = 0
    while True:
        attempts += 1
        decision = decide(job(attempts), FAILED_RUN, settings(), NOW)
        states.append(decision.state)
        if decision.state is not JobState.FAILED:
            break
        waits.append(decision.run_at - NOW)  # type: ignore[operator]
        assert attempts < 100, "never went dead"
    assert attempts == 4
    assert states == [JobState.FAILED] * 3 + [JobState.DEAD]
    assert waits == [2.0, 4.0, 8.0]


@pytest.mark.parametrize("max_retries", [0, 1, 2, 5])
def test_runs_at_most_one_plus_max_retries_times(max_retries: int) -> None:
    for attempts in range(1, max_retries + 1):
        assert decide(job(attempts, max_retries=max_retries), FAILED_RUN, settings(),
                      NOW).state is JobState.FAILED
    dead = decide(job(max_retries + 1, max_retries=max_retries), FAILED_RUN, settings(),
                  NOW)
    assert dead.state is JobState.DEAD and dead.run_at is None
    assert dead.error == "exit code 3: boom"


def test_attempts_beyond_the_limit_stay_dead() -> None:
    # e.g. a job whose max_retries was lowered while it was retrying
    assert decide(job(9, max_retries=2), FAILED_RUN, settings(), NOW).state \
        is JobState.DEAD


def test_per_job_values_win_over_config() -> None:
    decision = decide(job(2, max_retries=5, backoff_base=3.0), FAILED_RUN,
                      settings(**{"max-retries": "1", "backoff-base": "10"}), NOW)
    assert decision.state is JobState.FAILED and decision.run_at == NOW + 9
    assert decide(job(1, max_retries=0), FAILED_RUN, settings(), NOW).state \
        is JobState.DEAD


def test_config_values_reach_jobs_without_their_own() -> None:
    s = settings(**{"max-retries": "1", "backoff-base": "5"})
    first = decide(job(1), FAILED_RUN, s, NOW)
    assert first.state is JobState.FAILED and first.run_at == NOW + 5
    assert decide(job(2), FAILED_RUN, s, NOW).state is JobState.DEAD


def test_config_backoff_max_caps_the_retry_time() -> None:
    decision = decide(job(12, max_retries=50), FAILED_RUN,
                      settings(**{"backoff-max": "100"}), NOW)
    assert decision.state is JobState.FAILED and decision.run_at == NOW + 100
    # the default cap is 3600 s
    assert decide(job(20, max_retries=50), FAILED_RUN, settings(), NOW).run_at \
        == NOW + 3600


def test_jitter_from_config_uses_the_given_rng() -> None:
    s = settings(**{"backoff-jitter": "true"})
    a = decide(job(3), FAILED_RUN, s, NOW, rng=random.Random(3))
    b = decide(job(3), FAILED_RUN, s, NOW, rng=random.Random(3))
    assert a == b and a.state is JobState.FAILED
    assert NOW + 6 <= a.run_at < NOW + 8  # type: ignore[operator]


def test_retry_time_is_relative_to_now() -> None:
    assert decide(job(1), FAILED_RUN, settings(), 10.0).run_at == 12.0
    assert decide(job(1), FAILED_RUN, settings(), 500.5).run_at == 502.5


def test_a_spawn_that_cannot_succeed_is_not_retried() -> None:
    permanent = Outcome(exit_code=None, spawn_permanent=True,
                        spawn_error="working directory '/x' does not exist")
    decision = decide(job(1), permanent, settings(), NOW)
    assert decision.state is JobState.DEAD and decision.run_at is None
    assert decision.error == ("spawn failed: working directory '/x' does not exist "
                              "(not retried: a retry cannot succeed)")
    transient = Outcome(exit_code=None, spawn_error="Resource temporarily unavailable")
    assert decide(job(1), transient, settings(), NOW).state is JobState.FAILED


def test_failure_reasons() -> None:
    timed_out = Outcome(exit_code=None, signal=15, timed_out=True)
    assert decide(job(1), timed_out, settings(), NOW).error == "timeout"
    spawn = Outcome(exit_code=None, spawn_error="working directory '/x' does not exist")
    assert decide(job(1), spawn, settings(), NOW).error == \
        "spawn failed: working directory '/x' does not exist"
    killed = Outcome(exit_code=None, signal=9, output_tail="")
    assert decide(job(1), killed, settings(), NOW).error == "killed by signal 9"
    silent = Outcome(exit_code=1)
    assert decide(job(1), silent, settings(), NOW).error == "exit code 1"
    last_line = Outcome(exit_code=2, output_tail="first\nsecond\n\n  \n")
    assert decide(job(1), last_line, settings(), NOW).error == "exit code 2: second"


def test_exit_zero_that_timed_out_is_not_a_success() -> None:
    outcome = Outcome(exit_code=0, timed_out=True)
    decision = decide(job(1), outcome, settings(), NOW)
    assert decision.state is JobState.FAILED and decision.error == "timeout"


# -- effective values and rescues ---------------------------------------------------

def test_effective_values() -> None:
    s = settings(**{"max-retries": "7", "backoff-base": "3", "job-timeout": "30"})
    assert effective_max_retries(job(0), s) == 7
    assert effective_max_retries(job(0, max_retries=0), s) == 0  # 0 is not "unset"
    assert effective_backoff_base(job(0), s) == 3
    assert effective_backoff_base(job(0, backoff_base=1.5), s) == 1.5
    assert effective_timeout(job(0), s) == 30
    assert effective_timeout(job(0, timeout=0), s) == 0  # per job "no limit" wins


def test_rescue_limit() -> None:
    assert not rescue_exhausted(job(1, rescues=0), settings())
    assert not rescue_exhausted(job(1, rescues=2), settings())
    assert rescue_exhausted(job(1, rescues=3), settings())
    assert rescue_exhausted(job(1, rescues=0, max_retries=0), settings())
