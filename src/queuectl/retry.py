"""Pure retry policy: what happens to a job after a run, as a function of
(job, outcome, settings, now, policy).  No clock and no I/O in here.  The retry rules
by exit code and signal (`policy`, queuectl.retryrules) are resolved by the caller."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional

from queuectl.config import Settings
from queuectl.models import Job, Outcome
from queuectl.retryrules import NO_POLICY, Policy, failure_of
from queuectl.states import JobState

JITTER_FRACTION = 0.25


@dataclass(frozen=True)
class Decision:
    state: JobState  # COMPLETED, FAILED (retry at run_at) or DEAD
    run_at: Optional[float]  # when the retry is due (FAILED only)
    error: Optional[str]
    #: the retry rule that decided (a failure not retried, or retried by a retry-on
    #: term): "no-retry-on 2 (job)"; None when no rule had a say
    rule: Optional[str] = None


def effective_max_retries(job: Job, settings: Settings) -> int:
    return settings.max_retries if job.max_retries is None else job.max_retries


def effective_backoff_base(job: Job, settings: Settings) -> float:
    return settings.backoff_base if job.backoff_base is None else job.backoff_base


def effective_timeout(job: Job, settings: Settings) -> float:
    """Seconds a run may take; 0 means no limit."""
    return settings.job_timeout if job.timeout is None else job.timeout


def backoff_delay(base: float, attempts: int, cap: float,
                  jitter: bool = False, rng: random.Random | None = None) -> float:
    """`base ** attempts` seconds, capped at `cap`; with jitter, up to 25% less."""
    try:
        delay = float(base) ** attempts
    except OverflowError:
        delay = cap
    delay = min(delay, cap)
    if jitter:
        delay -= delay * JITTER_FRACTION * (rng or random).random()
    return delay


def decide(job: Job, outcome: Outcome, settings: Settings, now: float,
           rng: random.Random | None = None, policy: Policy = NO_POLICY) -> Decision:
    """The state a job goes to after a run.

    `job.attempts` already counts the run that just ended.  A job runs at most
    1 + max_retries times; with base 2 the waits between runs are 2, 4, 8 ... s.
    A failure that `policy` (job, queue and config retry rules) says not to retry is
    dead at once, the rule named in its error; one it says to retry still counts
    against max_retries.
    """
    if outcome.ok:
        return Decision(JobState.COMPLETED, None, None)
    error = outcome.reason()
    if outcome.spawn_permanent:  # a retry would fail the same way: not retried
        return Decision(JobState.DEAD, None, f"{error} (not retried: a retry cannot "
                                              "succeed)")
    verdict = policy.verdict(failure_of(outcome)) if policy.layers else None
    rule = None if verdict is None else verdict.rule
    if verdict is not None and not verdict.retry:
        return Decision(JobState.DEAD, None, f"{error} (not retried: {rule})", rule)
    if job.attempts >= 1 + effective_max_retries(job, settings):
        return Decision(JobState.DEAD, None, error, rule)
    delay = backoff_delay(effective_backoff_base(job, settings), job.attempts,
                          settings.backoff_max, settings.backoff_jitter, rng)
    return Decision(JobState.FAILED, now + delay, error, rule)


def rescue_exhausted(job: Job, settings: Settings) -> bool:
    """A job taken back from dead workers more than max_retries times goes dead
    instead of looping forever (a command that kills its own worker, say)."""
    return job.rescues + 1 > effective_max_retries(job, settings)
