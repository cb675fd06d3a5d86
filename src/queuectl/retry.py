"""Pure retry policy: what happens to a job after a run, as a function of
(job, outcome, settings, now, policy).  No clock and no I/O in here.  The retry rules
by exit code and signal (`policy`, queuectl.retryrules) are resolved by the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from queuectl.config import Settings
from queuectl.models import Job, Outcome
from queuectl.retryrules import NO_POLICY, Policy, Verdict, failure_of
from queuectl.states import JobState

if TYPE_CHECKING:  # `random` (and hashlib under it) is imported when a jitter is drawn:
    import random  # it was 1-8 ms of every worker's start-up

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
        import random

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


#: at most this many future runs are listed by `retry --explain`
EXPLAIN_RUNS = 12


def _source(job_value: object, settings: Settings, key: str) -> str:
    if job_value is not None:
        return "job"
    return {"stored": "config", "env": "env", "flag": "flag"}.get(settings.source(key),
                                                                  "default")


def _last_failure(job: Job) -> Optional[tuple[dict[str, Any], Outcome]]:
    """The history entry of the last failed run, and the outcome it records."""
    for entry in reversed(job.history):
        if entry.get("result") not in (JobState.FAILED.value, JobState.DEAD.value):
            continue
        error = str(entry.get("error") or "")
        spawn = error.startswith("spawn failed")
        outcome = Outcome(exit_code=entry.get("exit_code"), signal=entry.get("signal"),
                          timed_out=bool(entry.get("timed_out")),
                          spawn_error=error if spawn else None,
                          spawn_permanent=spawn and "a retry cannot succeed" in error,
                          output_tail="")
        return entry, outcome
    return None


def explain(job: Job, settings: Settings, queue_rules: object, now: float) -> dict[str, Any]:
    """What `retry --explain` prints, without changing anything: the retry policy that
    applies to `job` and where each part comes from (job, queue, config, env or
    default), the decision the rules give for its last failure, and the next run times
    the backoff gives if every run fails at once (`at`: epoch seconds).  Pure:
    `queue_rules` is the queue's stored rules (or None), `now` the clock."""
    from queuectl.retryrules import Rules, resolve

    own = Rules.from_json(job.retry_policy)
    queue = Rules.from_json(queue_rules)
    config = settings.retry_rules
    policy = resolve(own, queue, config)
    max_retries = effective_max_retries(job, settings)
    base = effective_backoff_base(job, settings)
    cap = settings.backoff_max
    layers = []
    for source, rules, where in (("job", own, "enqueue --retry-on/--no-retry-on"),
                                 ("queue", queue, f"queue policy {job.queue}"),
                                 ("config", config, "config retry-on/no-retry-on")):
        layers.append({"source": source, "set_by": where,
                       "retry_on": list(rules.retry_on) if rules.retry_on else None,
                       "no_retry_on": list(rules.no_retry_on) if rules.no_retry_on
                       else None})
    out: dict[str, Any] = {
        "id": job.id, "state": job.state.value, "queue": job.queue,
        "attempts": job.attempts,
        "max_retries": {"value": max_retries,
                        "source": _source(job.max_retries, settings, "max-retries")},
        "backoff_base": {"value": base,
                         "source": _source(job.backoff_base, settings, "backoff-base")},
        "backoff_max": {"value": cap, "source": _source(None, settings, "backoff-max")},
        "backoff_jitter": {"value": settings.backoff_jitter,
                           "source": _source(None, settings, "backoff-jitter")},
        "rules": layers,
        "default": "every failure is retried while attempts last (no layer has a say)"
        if policy.empty else None,
    }
    last = _last_failure(job)
    if last is None:
        out["last_failure"] = None
    else:
        entry, outcome = last
        attempt = int(entry.get("attempt") or job.attempts or 1)
        as_then = Job(id=job.id, command=job.command, state=JobState.PROCESSING,
                      attempts=attempt, max_retries=job.max_retries,
                      backoff_base=job.backoff_base)
        decision = decide(as_then, outcome, settings, now, policy=policy)
        verdict = policy.verdict(failure_of(outcome)) if not outcome.spawn_permanent \
            else None
        out["last_failure"] = {
            "attempt": attempt, "failure": failure_of(outcome).text,
            "error": entry.get("error"),
            "recorded": entry.get("result"), "recorded_rule": entry.get("rule"),
            "decision": "retry" if decision.state is JobState.FAILED else "dead",
            "rule": decision.rule if verdict is not None else None,
            "why": _why(decision, verdict, attempt, max_retries, outcome),
        }
    out.update(_next_runs(job, settings, base, cap, max_retries, now))
    return out


def _why(decision: Decision, verdict: Optional[Verdict], attempt: int, max_retries: int,
         outcome: Outcome) -> str:
    if outcome.spawn_permanent:
        return "the command cannot be started (a retry cannot succeed)"
    if decision.state is JobState.DEAD and decision.rule and verdict is not None \
            and not verdict.retry:
        return f"not retried: {decision.rule}"
    if decision.state is JobState.DEAD:
        return f"retries exhausted: attempt {attempt} of {1 + max_retries}"
    said = f" ({decision.rule})" if decision.rule else ""
    return f"retried{said}: attempt {attempt} of {1 + max_retries}"


def _next_runs(job: Job, settings: Settings, base: float, cap: float, max_retries: int,
               now: float) -> dict[str, Any]:
    """The runs still to come if every run fails at once: (number, time, wait before)."""
    state, attempts = job.state, job.attempts
    if state is JobState.FAILED:
        first, at, basis = attempts + 1, job.run_at, "its next retry is due"
    elif state is JobState.PROCESSING:
        first, at = attempts + 1, now + backoff_delay(base, attempts, cap)
        basis = "if the running attempt fails now"
    elif state is JobState.DEAD:
        first, at, basis = 1, now, "after `dlq retry` now (attempts start again)"
    elif state in (JobState.COMPLETED, JobState.CANCELLED):
        first, at, basis = attempts + 1, now, "after `retry` now"
    else:
        first, at, basis = attempts + 1, max(job.run_at, now), "its first run is due"
    runs: list[dict[str, Any]] = []
    last = max(first, 1 + max_retries)
    number = first
    while number <= last and len(runs) < EXPLAIN_RUNS:
        if number == first:  # the wait that led to it, when it is a retry now due
            wait = backoff_delay(base, attempts, cap) if state in (
                JobState.FAILED, JobState.PROCESSING) and attempts else None
        else:
            wait = backoff_delay(base, number - 1, cap)
            at += wait
        runs.append({"run": number, "at": at, "wait_s": wait})
        number += 1
    return {"next_runs": runs, "next_runs_basis": basis + "; each later run follows a "
            "failure at once", "more_runs": max(0, last - number + 1),
            "jitter": ("each wait may be up to 25% shorter (backoff-jitter is on)"
                       if settings.backoff_jitter else
                       "exact: backoff-jitter is off")}
