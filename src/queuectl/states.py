"""The job state machine, written once.

Every state change in queuectl is one of the :class:`Transition` members below.  The
backends perform each one as a single guarded update (``... WHERE state IN (from)``),
so a transition that lost a race simply matches no row.
"""

from __future__ import annotations

import enum


class JobState(str, enum.Enum):
    """Where a job is in its life."""

    SCHEDULED = "scheduled"  # waiting for its run_at, which is in the future
    PENDING = "pending"  # runnable now; the next free worker slot claims it
    PROCESSING = "processing"  # claimed by a worker slot, its command is running
    COMPLETED = "completed"  # the command exited 0
    FAILED = "failed"  # the last run failed; it runs again at run_at (backoff)
    DEAD = "dead"  # retries exhausted: the dead-letter queue (DLQ)
    CANCELLED = "cancelled"  # cancelled by a user before or while it ran

    def __str__(self) -> str:
        return self.value


S = JobState

#: States a worker may claim from (when run_at <= now).
CLAIMABLE = frozenset({S.PENDING, S.SCHEDULED, S.FAILED})
#: States in which the job will not change again on its own.
FINISHED = frozenset({S.COMPLETED, S.DEAD, S.CANCELLED})
#: States whose job is still going to run (used by unique keys and `wait`).
LIVE = frozenset({S.SCHEDULED, S.PENDING, S.PROCESSING, S.FAILED})
#: Display order for status tables.
ORDER = (S.SCHEDULED, S.PENDING, S.PROCESSING, S.COMPLETED, S.FAILED, S.DEAD, S.CANCELLED)


class Transition(enum.Enum):
    """Every allowed state change: (states it may start from, state it ends in)."""

    CLAIM = (frozenset(CLAIMABLE), S.PROCESSING)  # a worker slot takes a due job
    PROMOTE = (frozenset({S.SCHEDULED, S.FAILED}), S.PENDING)  # run_at has come
    COMPLETE = (frozenset({S.PROCESSING}), S.COMPLETED)  # exit code 0
    FAIL = (frozenset({S.PROCESSING}), S.FAILED)  # failed, a retry is due later
    BURY = (frozenset({S.PROCESSING}), S.DEAD)  # failed, retries exhausted
    REQUEUE = (frozenset({S.PROCESSING}), S.PENDING)  # worker stopped --now or died
    CANCEL = (frozenset({S.SCHEDULED, S.PENDING, S.FAILED, S.PROCESSING}), S.CANCELLED)
    RETRY = (frozenset({S.FAILED, S.DEAD, S.CANCELLED, S.COMPLETED}), S.PENDING)  # user
    DLQ_RETRY = (frozenset({S.DEAD}), S.PENDING)  # `dlq retry`: attempts reset

    @property
    def sources(self) -> frozenset[JobState]:
        return self.value[0]

    @property
    def target(self) -> JobState:
        return self.value[1]

    def allowed_from(self, state: JobState) -> bool:
        return state in self.sources


def parse_state(text: str) -> JobState:
    """Turn user text into a state; accepts `dlq` as an alias of `dead`."""
    from queuectl.errors import InvalidInput

    value = text.strip().lower()
    if value == "dlq":
        value = "dead"
    try:
        return JobState(value)
    except ValueError:
        valid = ", ".join(s.value for s in ORDER)
        raise InvalidInput(f"unknown state {text!r} (valid: {valid})") from None
