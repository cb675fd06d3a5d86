"""The job state machine, written once.

Every state change in queuectl is one of the :class:`Transition` members below.  The
backends perform each one as a single guarded update (``... WHERE state IN (from)``),
so a transition that lost a race simply matches no row.  The state lists in the SQL
files come from here: `{CLAIMABLE}`, `{PENDING}`... are filled in by
backends/sqlfile.py, and the literals a migration must spell out (partial indexes)
are checked against these sets by tests/backend/test_sql_states.py.
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
    WAITING = "waiting"  # its dependencies have not ended as it asks (--after ...)
    BLOCKED = "blocked"  # an --after dependency died or was cancelled; retry it to unblock

    def __str__(self) -> str:
        return self.value


S = JobState

# Each named list keeps the order in which the migrations spell it: SQLite uses a
# partial index only when the query repeats the index's `IN (...)` term for term.
#: States a worker may claim from (when run_at <= now).
CLAIMABLE_ORDER = (S.PENDING, S.SCHEDULED, S.FAILED)
#: States whose job is still going to run (unique keys, `wait`).
LIVE_ORDER = (S.SCHEDULED, S.PENDING, S.PROCESSING, S.FAILED, S.WAITING, S.BLOCKED)
#: Stored states that wait for their run_at; once it has come the job is due, shown as
#: pending, and a running supervisor relabels it (Transition.PROMOTE).
DELAYED_ORDER = (S.SCHEDULED, S.FAILED)
#: States held back by dependencies: not claimable, not in the claim index.  The store
#: moves them (Transition.RELEASE, BLOCK, UNBLOCK, DEPENDENCY_CANCEL) in the same
#: transaction as the dependency's own change (migration 0004's trigger).
HELD_ORDER = (S.WAITING, S.BLOCKED)
#: States in which the job will not change again on its own.
FINISHED_ORDER = (S.COMPLETED, S.DEAD, S.CANCELLED)

CLAIMABLE = frozenset(CLAIMABLE_ORDER)
LIVE = frozenset(LIVE_ORDER)
DELAYED = frozenset(DELAYED_ORDER)
HELD = frozenset(HELD_ORDER)
FINISHED = frozenset(FINISHED_ORDER)
#: Where `wait` stops: a finished job, or a blocked one (it needs a person to retry
#: its dependency).
SETTLED = FINISHED | {S.BLOCKED}
#: Display order for status tables.
ORDER = (S.SCHEDULED, S.PENDING, S.PROCESSING, S.COMPLETED, S.FAILED, S.DEAD,
         S.CANCELLED, S.WAITING, S.BLOCKED)


class Transition(enum.Enum):
    """Every allowed state change: (states it may start from, state it ends in)."""

    CLAIM = (CLAIMABLE, S.PROCESSING)  # a worker slot takes a due job
    PROMOTE = (DELAYED, S.PENDING)  # run_at has come
    COMPLETE = (frozenset({S.PROCESSING}), S.COMPLETED)  # exit code 0
    FAIL = (frozenset({S.PROCESSING}), S.FAILED)  # failed, a retry is due later
    BURY = (frozenset({S.PROCESSING}), S.DEAD)  # failed, retries exhausted
    REQUEUE = (frozenset({S.PROCESSING}), S.PENDING)  # worker stopped --now or died
    CANCEL = (frozenset({S.SCHEDULED, S.PENDING, S.FAILED, S.PROCESSING, S.WAITING,
                         S.BLOCKED}), S.CANCELLED)
    RETRY = (frozenset({S.FAILED, S.DEAD, S.CANCELLED, S.COMPLETED}), S.PENDING)  # user
    DLQ_RETRY = (frozenset({S.DEAD}), S.PENDING)  # `dlq retry`: attempts reset
    # Made by the store when a dependency changes (never asked for by a caller):
    RELEASE = (HELD, S.PENDING)  # every dependency ended as asked (or SCHEDULED)
    BLOCK = (frozenset({S.WAITING}), S.BLOCKED)  # an --after dependency died
    UNBLOCK = (frozenset({S.BLOCKED}), S.WAITING)  # that dependency was retried
    DEPENDENCY_CANCEL = (HELD, S.CANCELLED)  # an --after-failure dependency completed

    @property
    def sources(self) -> frozenset[JobState]:
        return self.value[0]

    @property
    def target(self) -> JobState:
        return self.value[1]

    def allowed_from(self, state: JobState) -> bool:
        return state in self.sources

    @property
    def event(self) -> str:
        """The name of the transition in a job's history ("dlq retry")."""
        return self.name.lower().replace("_", " ")


#: States in which `edit` may change a job (not while it runs, not once it is done:
#: the change is one guarded statement, so a claim that wins the race is refused).
EDITABLE = frozenset({S.PENDING, S.SCHEDULED, S.FAILED, S.DEAD, S.WAITING, S.BLOCKED})

#: Where a worker may take a job it holds when its run ends (`finish`).
FINISH_TARGETS = frozenset(t.target for t in (Transition.COMPLETE, Transition.FAIL,
                                              Transition.BURY))
#: Where a held job may be given back to (`requeue`: stop --now, a dead worker; DEAD
#: when it was rescued too often).
REQUEUE_TARGETS = frozenset(t.target for t in (Transition.REQUEUE, Transition.BURY))


def check_target(allowed: frozenset[JobState], state: JobState, verb: str) -> None:
    """Refuse a worker-side transition the table does not have (a programming error)."""
    if state not in allowed:
        names = ", ".join(sorted(s.value for s in allowed))
        raise ValueError(f"{verb} cannot move a processing job to {state}; "
                         f"the transition table allows {names}")


#: The `{NAME}` placeholders of the SQL files: each state, and each named list.
SQL_LISTS: dict[str, tuple[JobState, ...]] = {
    "CLAIMABLE": CLAIMABLE_ORDER, "LIVE": LIVE_ORDER, "DELAYED": DELAYED_ORDER,
    "HELD": HELD_ORDER, "FINISHED": FINISHED_ORDER,
    **{state.name: (state,) for state in JobState},
}


def sql_literals(states: tuple[JobState, ...]) -> str:
    """`'pending', 'scheduled'`: the text a placeholder stands for."""
    return ", ".join(f"'{state.value}'" for state in states)


def parse_state(text: str) -> JobState:
    """Turn user text into a state; accepts `dlq` as an alias of `dead`."""
    from queuectl.errors import InvalidInput

    value = text.strip().lower()
    if value == "dlq":
        value = "dead"
    try:
        return JobState(value)
    except ValueError:
        from queuectl.config import did_you_mean

        valid = ", ".join(s.value for s in ORDER)
        hint = did_you_mean(value, [s.value for s in ORDER] + ["dlq"])
        raise InvalidInput(f"unknown state {text!r}{hint} (valid: {valid})") from None
