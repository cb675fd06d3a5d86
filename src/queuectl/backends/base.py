"""The backend contract: the domain verbs every store implements.

One contract test suite (tests/backend/) runs against every implementation.  Each
state change is one guarded statement; a guard that matches no row is a normal
outcome (the method returns False / None), not an error.  All times are epoch seconds
passed in by the caller.
"""

from __future__ import annotations

import json
from typing import (
    Any,
    ContextManager,
    Iterable,
    Iterator,
    Mapping,
    NamedTuple,
    Optional,
    Protocol,
    Sequence,
    TypeVar,
)

from queuectl.dependencies import Edge
from queuectl.errors import StoreError
from queuectl.models import (
    BucketGroup,
    CronFired,
    CronSchedule,
    FinishedRow,
    HookEvent,
    Job,
    LiveCount,
    NewJob,
    RunRecord,
    SampleRow,
    SpanGroup,
    WindowGroup,
    WorkerInfo,
)
from queuectl.states import (
    FINISH_TARGETS,
    SQL_LISTS,
    JobState,
    Transition,
    check_target,
    sql_literals,
)


class Backend(Protocol):
    """A job store.  Implementations: SQLite (embedded) and PostgreSQL (multi-host).

    The worker records results through `finish_and_claim(results, *, worker_id, workers,
    queues, now)`: several results, then up to one claim per slot label, in one
    transaction (SqlVerbs; one statement on PostgreSQL).
    """

    url: str
    #: True when wake-ups travel through the store itself (PostgreSQL LISTEN/NOTIFY).
    notifies_through_store: bool

    def close(self) -> None:
        """Release connections."""

    # -- wake-ups ---------------------------------------------------------------------
    def wakeup_fd(self) -> Optional[int]:
        """A descriptor that becomes readable when work may have arrived through the
        store (PostgreSQL LISTEN; it changes when the connection is re-made), or None
        when wake-ups travel outside the store (SQLite: see queuectl.wakeup)."""

    def drain_wakeups(self) -> int:
        """Consume the pending wake-ups of `wakeup_fd`; returns how many."""

    def change_marker(self) -> Any:
        """A cheap value that changes when the store may have: equal values mean
        nothing was committed in between (the dashboard's live pages)."""

    def schema_version(self) -> int:
        """The schema version the store is at."""

    # -- jobs -------------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob], now: float) -> list[Job]:
        """Store jobs in one transaction (all or none) and return them.

        A job whose id exists raises DuplicateJob and stores nothing.  A job whose
        `unique_key` matches a live job is not stored; the live job is returned."""

    def enqueue_stream(self, jobs: Iterable[NewJob], now: float) -> list[str]:
        """Store a large batch in one transaction (all or none), consuming `jobs` in
        slices of BATCH_ROWS; returns the ids in order (for a matching `unique_key`,
        the live job's).  An exception raised by the iterable (a bad line of a file)
        stores nothing, and so does a duplicate id (DuplicateJob)."""

    def claim(self, worker_id: str, worker: str, queues: Sequence[str] | None,
              now: float) -> Optional[Job]:
        """Atomically take the best due job (priority desc, run_at, FIFO) for a worker:
        state -> processing, attempts + 1.  None when nothing is due."""

    def finish(self, job: Job, state: JobState, run_at: Optional[float], *, now: float,
               exit_code: Optional[int], error: Optional[str], output: Optional[str],
               history_entry: Mapping[str, Any]) -> bool:
        """Record the end of a run: processing -> completed | failed | dead, only while
        the job is still held by `job.worker_id`.  False if it was taken away."""

    def finish_and_claim(self, results: Sequence[tuple[Job, JobState, Optional[float],
                                                        Mapping[str, Any]]], *,
                         worker_id: str, workers: Sequence[str],
                         queues: Sequence[str] | None,
                         now: float) -> tuple[list[bool], list[Job]]:
        """Record several results (job, state, run_at, `finish` keyword fields), then
        claim up to one job per label in `workers`, in one transaction (one statement
        on PostgreSQL).  Returns (finished or not, per result; the claimed jobs)."""

    def requeue(self, job: Job, *, now: float, count_attempt: bool,
                rescued: bool, history_entry: Mapping[str, Any],
                to_state: JobState = JobState.PENDING) -> bool:
        """Give a processing job back (stop --now, or its worker died): guarded on
        `job.worker_id`.  `count_attempt=False` undoes the attempt of the claim;
        `rescued=True` counts a rescue.  `to_state` may be DEAD when rescues ran out."""

    def live_job_with_key(self, unique_key: str) -> Optional[str]:
        """The id of the live job that holds `unique_key`, if any."""

    def transition_all(self, transition: Transition, now: float, *,
                       reset_attempts: bool = False) -> list[Job]:
        """Every job in a source state of `transition` to its target, in ONE statement
        (`dlq retry --all`); a job whose unique key a live job holds is left as it is.
        Returns the moved jobs, each once."""

    def transition(self, job_id: str, transition: Transition, now: float, *,
                   reset_attempts: bool = False, note: Optional[str] = None) -> Optional[Job]:
        """A user transition (cancel, retry, dlq retry) guarded on its source states.
        Returns the updated job, or None if the job was not in a source state."""

    def get(self, job_id: str) -> Optional[Job]:
        """The job with exactly this id."""

    def find_prefix(self, prefix: str, limit: int) -> list[str]:
        """Ids starting with `prefix` (at most `limit`)."""

    def list_jobs(self, states: Sequence[JobState] | None, queue: Optional[str],
                  limit: int, offset: int = 0) -> list[Job]:
        """Jobs newest first, optionally filtered by states and queue."""

    def list_page(self, states: Sequence[JobState], queue: Optional[str], before: int,
                  limit: int) -> list[tuple[int, Job]]:
        """Up to `limit` (seq, job) pairs with seq < `before`, newest first: one page of
        a listing that streams (the next page starts before the last seq)."""

    def queue_counts(self) -> dict[str, dict[JobState, int]]:
        """Number of jobs in every state of every queue that has jobs."""

    def search_page(self, state: Optional[JobState], queue: Optional[str], before_seq: int,
                  floor_seq: int, text: str, limit: int) -> list[tuple[int, Job]]:
        """A keyset page, newest first: (seq, job) of jobs with `floor_seq <= seq <
        before_seq` whose command contains `text` ("" matches all), optionally in one
        state and one queue.  An index walk from `before_seq` at any depth."""

    def counts(self) -> dict[JobState, int]:
        """Number of jobs in every state (cheap at any depth)."""

    def oldest_due(self, now: float) -> Optional[float]:
        """run_at of the oldest job that is due but not yet claimed."""

    def due_waiting(self, now: float, cap: int) -> int:
        """scheduled/failed jobs whose run_at has come (not yet relabelled pending by
        a supervisor), counted up to `cap`."""

    def finished_since(self, since: float) -> int:
        """Jobs that reached a finished state (or failed a run) at or after `since`."""

    def next_run_at(self, queues: Sequence[str] | None, after: float) -> Optional[float]:
        """Earliest run_at later than `after` among waiting jobs (to sleep until it)."""

    def promote_due(self, now: float) -> int:
        """scheduled/failed jobs whose run_at has come -> pending."""

    def processing_jobs(self, worker_ids: Iterable[str]) -> list[Job]:
        """Jobs held (processing) by the given worker registrations."""

    def orphaned_jobs(self) -> list[Job]:
        """Processing jobs whose worker is not registered at all."""

    def metrics_rows(self, since: float, queue: Optional[str]) -> list[FinishedRow]:
        """Jobs whose last run ended, or that were cancelled, at or after `since` (their
        rows, not their history), optionally of one queue (`metrics`)."""

    def metrics_window(self, start: float, queue: Optional[str]) -> list[WindowGroup]:
        """The jobs whose last run ended (or that were cancelled) at or after `start`,
        counted per (queue, state, retry, timed out) with the duration's count, sum
        and maximum, optionally of one queue (`metrics`)."""

    def metrics_buckets(self, start: float, width: float, queue: Optional[str]
                        ) -> list[BucketGroup]:
        """metrics_window's groups split per bucket of `width` seconds from `start`
        as well: the window, the spans and the series in one walk of the window."""

    def metrics_spans(self, now: float, queue: Optional[str]) -> list[SpanGroup]:
        """Runs (not cancellations) whose job's row ended in the last 15 minutes, per
        (queue, in the last minute, in the last 5 minutes)."""

    def metrics_sample(self, start: float, queue: Optional[str], cap: int
                       ) -> list[SampleRow]:
        """(queue, duration, wait) of the latest `cap` runs ended at or after `start`
        (rows, not history), newest first: the percentiles' sample."""

    def metrics_series(self, start: float, width: float, queue: Optional[str]
                       ) -> list[tuple[int, int, int]]:
        """(bucket, runs, completed runs) of the rows ended at or after `start`, in
        buckets of `width` seconds (cancellations not counted)."""

    def metrics_earlier_runs(self, since: float, queue: Optional[str]) -> list[RunRecord]:
        """Runs before a job's last one that ended at or after `since` (history entries
        of jobs run more than once, finished since then or running now)."""

    def metrics_live(self, now: float, queue: Optional[str], cap: int) -> list[LiveCount]:
        """Live jobs per queue and state with the run_at of the oldest one already due:
        the waiting jobs oldest first, up to `cap` of them, and every processing one."""

    def running_by_worker(self) -> dict[str, int]:
        """How many jobs each worker registration holds in `processing` right now (one
        grouped read through the partial index of processing jobs, not the heartbeat)."""

    def purge(self, states: Sequence[JobState], finished_before: Optional[float]) -> int:
        """Delete jobs in `states`, finished before the time if given, with their
        output chunks and dependency edges (in one transaction)."""

    def delete(self, job_id: str) -> bool:
        """Delete one job that is not processing, with its output chunks and
        dependency edges (one transaction); False when it runs or does not exist."""

    def clear(self) -> int:
        """Delete every job (with their output chunks and dependency edges)."""

    def transition_held(self, job_id: str, transition: Transition, now: float, *,
                        reset_attempts: bool = False) -> Optional[Job]:
        """A retry of a job with dependencies: back to pending and decided from them
        (waiting, blocked, cancelled, or pending), in one transaction."""

    def retry_edited(self, job_id: str, transition: Transition, changes: Mapping[str, Any],
                     now: float, *, reset_attempts: bool = False) -> Optional[Job]:
        """Change fields of a job (command, timeout, priority, queue, max_retries, env)
        and make `transition` (retry, dlq retry), in one transaction; None (nothing
        changed) when the job is not in a source state."""

    # -- queues -------------------------------------------------------------------------
    def queue_rows(self) -> list[tuple[str, bool, Optional[int]]]:
        """(name, paused, concurrency limit) of every queue that has settings."""

    def set_queue_paused(self, names: Sequence[str], paused: bool, now: float) -> None:
        """Pause or resume queues (one transaction); no claim takes a paused queue's
        jobs once this commits."""

    def set_queue_limit(self, name: str, limit: Optional[int], now: float) -> None:
        """At most `limit` jobs of the queue run at once across every host (None: no
        limit), enforced inside every claim statement from the commit on."""

    def queue_policies(self) -> dict[str, dict[str, Any]]:
        """{queue: its retry rules as stored} of the queues that have their own."""

    def set_queue_policy(self, name: str, policy: Optional[Mapping[str, Any]],
                         now: float) -> None:
        """Set (or, with None, clear) a queue's retry rules."""

    def edit(self, job_id: str, sources: Iterable[JobState], changes: Mapping[str, Any],
             now: float) -> Optional[Job]:
        """Change fields of a job (as retry_edited, without moving it), guarded on its
        state being in `sources`; the history gets an "edit" entry.  None (nothing
        changed) when it is in another state."""

    # -- priority aging ---------------------------------------------------------------
    def use_priority_aging(self, aging: float, *, create_index: bool = True) -> None:
        """Claim by effective priority (priority + waiting time / `aging` seconds), or
        by strict priority when `aging` is 0."""

    def set_aging_index(self, aging: float, previous: float = 0.0) -> None:
        """Make the claim index of this aging step; drop the others but `previous`'s."""

    # -- dependencies -----------------------------------------------------------------
    def dependencies_of(self, job_id: str) -> list[Edge]:
        """A job's dependencies: (id, condition, its state now; None once deleted)."""

    def dependants_of(self, job_id: str, limit: int) -> list[Edge]:
        """Up to `limit` jobs that depend on this one: (their id, condition, state)."""

    def live_dependants_tree(self, job_id: str) -> list[str]:
        """Ids of the live jobs that depend on this one directly or through others,
        deepest first."""

    # -- output chunks (what `logs -f` on another host reads) -------------------------
    def append_output(self, job_id: str, attempt: int, seq: int, data: bytes,
                      now: float) -> None:
        """Store a chunk of run `attempt`'s output; `seq` is its byte offset in that
        run's output.  The same (job, attempt, seq) twice is stored once."""

    def read_output(self, job_id: str, attempt: int, from_offset: int,
                    limit: int) -> list[OutputChunk]:
        """Up to `limit` chunks of one run that hold bytes at or after `from_offset`,
        in offset order (the first may start before it; a gap means dropped bytes)."""

    def drop_output(self, job_id: str, attempt: Optional[int] = None,
                    before: Optional[int] = None) -> int:
        """Delete a job's chunks: of one run, or of every run when `attempt` is None;
        with `before`, only the chunks that end at or before that offset.  Returns
        how many went."""

    def publish_output(self, chunks: Sequence[tuple[str, int, int, bytes]],
                       drops: Sequence[tuple[str, int, Optional[int]]],
                       now: float) -> None:
        """`append_output` for each (job id, attempt, offset, data) and `drop_output`
        for each (job id, attempt, before), in one transaction (a publisher's round)."""

    # -- workers ----------------------------------------------------------------------
    def register_worker(self, info: WorkerInfo) -> None:
        """Add a supervisor to the registry."""

    def heartbeat(self, worker_id: str, *, busy: int, jobs_done: int,
                  now: float) -> Optional[str]:
        """Refresh a registration; returns its stop request ('graceful'/'now'), if any.
        A registration that was removed (considered dead) returns 'gone'."""

    def unregister_worker(self, worker_id: str) -> None:
        """Remove a registration."""

    def list_workers(self) -> list[WorkerInfo]:
        """Every registration, live or stale."""

    def request_stop(self, mode: str, worker_ids: Sequence[str] | None = None) -> int:
        """Ask supervisors (all, or the given ones) to stop; returns how many."""

    # -- cron schedules -----------------------------------------------------------------
    def cron_add(self, schedule: CronSchedule, now: float) -> None:
        """Store a new schedule; InvalidInput (nothing written) when the name exists."""

    def cron_get(self, name: str) -> Optional[CronSchedule]:
        """One schedule, with the state of its last run."""

    def cron_list(self) -> list[CronSchedule]:
        """Every schedule by name, with the state of its last run."""

    def cron_remove(self, name: str) -> bool:
        """Delete a schedule (its runs stay); False when there is none."""

    def cron_set_paused(self, name: str, paused: bool, next_fire_at: Optional[float],
                        now: float) -> bool:
        """Pause or resume a schedule; a resume sets the next instant.  False when
        there is no such schedule."""

    def cron_due(self, now: float, limit: int) -> list[CronSchedule]:
        """Unpaused schedules whose next instant is at or before `now`, oldest first."""

    def cron_next_fire_at(self) -> Optional[float]:
        """The earliest next instant of the unpaused schedules (to sleep until it)."""

    def cron_fire(self, name: str, expected: float, next_fire_at: float,
                  runs: Sequence[tuple[float, NewJob]], *, no_overlap: bool,
                  now: float) -> Optional[CronFired]:
        """Fire a schedule's due instants, in ONE transaction: move its next instant
        from `expected` to `next_fire_at` with a compare-and-set, then enqueue `runs`
        (instant, job) and record the last as the schedule's last run.  None, having
        written nothing, when the schedule's next instant is no longer `expected`
        (another supervisor fired it) or it is paused or gone.  With `no_overlap`, a
        live last run means nothing is enqueued (the instants are skipped)."""

    def cron_run(self, name: str, job: NewJob, now: float) -> Optional[str]:
        """`cron run`: enqueue one run now and record it as the last run, in one
        transaction; the job's id, or None when there is no such schedule."""

    # -- hooks (on-dead, on-complete) --------------------------------------------------
    def hook_pending(self) -> bool:
        """Whether some hook event is waiting to be claimed (a read)."""

    def hook_claim(self, worker_id: str, limit: int, now: float) -> list[HookEvent]:
        """Take up to `limit` unclaimed hook events, oldest first; each event is taken
        by one caller only, whichever host it runs on."""

    def hook_finish(self, event: HookEvent, result: str, detail: str, now: float,
                    history_entry: Mapping[str, Any]) -> None:
        """Record a hook's outcome, on the event and in its job's history."""

    def hook_list(self, limit: int, job_id: Optional[str] = None) -> list[HookEvent]:
        """The newest hook events (of one job), newest first."""

    def hook_purge(self, before: float) -> int:
        """Delete hook events that ended before `before`; how many."""

    def queue_hooks(self) -> dict[str, tuple[Optional[str], Optional[str]]]:
        """{queue: (on_dead, on_complete)} of the queues that have a hook of their own
        (None: the global one applies; "": none for this queue)."""

    def set_queue_hooks(self, name: str, now: float, *, on_dead: Optional[str] = None,
                        on_complete: Optional[str] = None, keep_dead: bool = True,
                        keep_complete: bool = True) -> None:
        """Set (or, with None and keep_* False, clear) a queue's hooks."""

    # -- config -----------------------------------------------------------------------
    def config_items(self) -> dict[str, str]:
        """Stored config, raw text by canonical key."""

    def config_set(self, key: str, value: str, now: float) -> None:
        """Store one key."""

    def config_unset(self, key: str) -> bool:
        """Remove one key; False if it was not stored."""


# -- helpers shared by the implementations ------------------------------------------

class OutputChunk(NamedTuple):
    """A published piece of a run's output."""

    seq: int  # the byte offset of `data` in the run's output
    data: bytes


JOB_COLUMNS = (
    "id, command, state, queue, priority, run_at, attempts, max_retries, backoff_base, "
    "timeout, cwd, env, depends_on, unique_key, created_at, updated_at, started_at, "
    "finished_at, worker, worker_id, exit_code, error, output, history, rescues, "
    "retry_policy"
)


def _json_field(value: Any, default: Any) -> Any:
    if value is None:
        return default
    if value == "[]":  # most history and depends_on cells: no parse (row_to_job per claim)
        return []
    if isinstance(value, (list, dict)):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return default


def row_to_job(row: Sequence[Any]) -> Job:
    """A row selected with JOB_COLUMNS -> Job."""
    (id_, command, state, queue, priority, run_at, attempts, max_retries, backoff_base,
     timeout, cwd, env, depends_on, unique_key, created_at, updated_at, started_at,
     finished_at, worker, worker_id, exit_code, error, output, history, rescues,
     retry_policy) = row
    return Job(
        id=id_, command=command, state=JobState(state), queue=queue, priority=priority,
        run_at=run_at, attempts=attempts, max_retries=max_retries,
        backoff_base=backoff_base, timeout=timeout, cwd=cwd,
        env=_json_field(env, None), depends_on=_json_field(depends_on, []),
        unique_key=unique_key, created_at=created_at, updated_at=updated_at,
        started_at=started_at, finished_at=finished_at, worker=worker,
        worker_id=worker_id, exit_code=exit_code, error=error, output=output,
        history=_json_field(history, []), rescues=rescues,
        retry_policy=_json_field(retry_policy, None),
    )


CRON_COLUMNS = 13  # the columns of the `_cron_select` blocks


def row_to_hook(row: Sequence[Any]) -> HookEvent:
    """A row of `{_hook_columns}` -> HookEvent."""
    (id_, job_id, event, hook, queue, attempts, exit_code, error, command, created_at,
     claimed_by, claimed_at, finished_at, result, detail) = row
    return HookEvent(
        id=int(id_), job_id=job_id, event=event, hook=hook, queue=queue,
        attempts=int(attempts), exit_code=exit_code, error=error, command=command,
        created_at=float(created_at), claimed_by=claimed_by,
        claimed_at=None if claimed_at is None else float(claimed_at),
        finished_at=None if finished_at is None else float(finished_at),
        result=result, detail=detail)


def row_to_cron(row: Sequence[Any]) -> CronSchedule:
    """A row of a `_cron_select` block -> CronSchedule."""
    (name, schedule, tz, job, paused, catch_up, no_overlap, next_fire_at, last_fire_at,
     last_job_id, created_at, updated_at, last_state) = row
    return CronSchedule(
        name=name, schedule=schedule, tz=tz, job=_json_field(job, {}),
        next_fire_at=float(next_fire_at), paused=bool(paused), catch_up=catch_up,
        no_overlap=bool(no_overlap),
        last_fire_at=None if last_fire_at is None else float(last_fire_at),
        last_job_id=last_job_id, created_at=float(created_at),
        updated_at=float(updated_at), last_state=last_state)


WORKER_COLUMNS = ("id, host, pid, slots, queues, started_at, heartbeat_at, busy, jobs_done, "
                  "stop_requested")


def row_to_worker(row: Sequence[Any]) -> WorkerInfo:
    (id_, host, pid, slots, queues, started_at, heartbeat_at, busy, jobs_done, stop) = row
    return WorkerInfo(id=id_, host=host, pid=pid, slots=slots,
                      queues=_json_field(queues, []) or [], started_at=started_at,
                      heartbeat_at=heartbeat_at, busy=busy, jobs_done=jobs_done,
                      stop_requested=stop)


def sql_values(aging: float = 0.0, dialect: str = "sqlite") -> dict[str, str]:
    """What the `{NAME}` placeholders of the SQL files stand for (sqlfile.render_queries):
    the state lists of states.py (`{CLAIMABLE}`, `{PROCESSING}`...), column lists, and
    the claim order (`aging`: seconds of waiting worth one priority step, 0 = off)."""
    values = {name: sql_literals(states) for name, states in SQL_LISTS.items()}
    values.update(job_columns=JOB_COLUMNS, worker_columns=WORKER_COLUMNS)
    values.update(claim_order_values(aging, dialect))
    # a batch row is a JSON array in INSERT_FIELDS order (insert_values): the column
    # list and the position each column is read from are made from the same tuple
    values["batch_columns"] = ", ".join(INSERT_FIELDS)
    values["batch_values"] = ", ".join(f"value ->> {i}" for i in range(len(INSERT_FIELDS)))
    return values


AGED_INDEX_PREFIX = "jobs_ready_aged_"


def _aging_literal(aging: float, dialect: str) -> str:
    # PostgreSQL reads 30.0 as numeric (the key would be numeric arithmetic)
    return repr(float(aging)) + ("::float8" if dialect == "postgres" else "")


def aged_index_name(aging: float) -> str:
    """`jobs_ready_aged_60`: the claim index of one aging step (its literal is in the
    index expression, so each step has its own)."""
    text = f"{float(aging):.3f}".rstrip("0").rstrip(".")
    return AGED_INDEX_PREFIX + text.replace(".", "_")


def aging_key_sql(aging: float, dialect: str) -> str:
    """The claim key with priority aging: a job's effective priority is its priority plus
    its waiting time in steps, p + (now - run_at) / step; ordering by that, at any one
    `now`, is ordering by run_at - p * step ascending: a static key, hence an index."""
    return f"run_at - priority * {_aging_literal(aging, dialect)}"


def aged_index_sql(aging: float, dialect: str) -> str:
    """The index a claim with priority aging walks (both stores spell it the same)."""
    return (f"CREATE INDEX IF NOT EXISTS {aged_index_name(aging)} ON jobs "
            f"(({aging_key_sql(aging, dialect)}), seq) "
            f"WHERE state IN ({sql_literals(SQL_LISTS['CLAIMABLE'])})")


def claim_order_values(aging: float, dialect: str) -> dict[str, str]:
    """`{claim_order}` and `{claim_index}` of the claim statements."""
    if aging <= 0:
        return {"claim_order": "priority DESC, run_at, seq",
                "claim_index": "INDEXED BY jobs_ready"}
    # SQLite's planner would pick jobs_due or jobs_state and sort every due job; the
    # aged index serves ORDER BY ... LIMIT 1 as a walk (PostgreSQL has no such hint
    # and needs none: its plan is checked in tests/backend/test_postgres_plans.py).
    return {"claim_order": f"{aging_key_sql(aging, dialect)}, seq",
            "claim_index": f"INDEXED BY {aged_index_name(aging)}"}


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string that starts with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


#: Jobs per statement when a large batch streams in (`enqueue_stream`).
BATCH_ROWS = 2_000

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to `size` consecutive items."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


#: The values of a new row, in the order of `insert_values` (the `now` of the
#: `insert_job` block fills created_at and updated_at).
INSERT_FIELDS = ("id", "command", "state", "queue", "priority", "run_at", "max_retries",
                 "backoff_base", "timeout", "cwd", "env", "depends_on", "unique_key",
                 "retry_policy")
_PENDING, _SCHEDULED = JobState.PENDING.value, JobState.SCHEDULED.value
_WAITING = JobState.WAITING.value


def insert_values(job: NewJob, now: float) -> list[Any]:
    """A new job's column values in INSERT_FIELDS order (both stores).  A job with
    dependencies starts `waiting`; link_dependencies then decides it."""
    run_at = now if job.run_at is None else job.run_at
    state = _WAITING if job.depends_on else _SCHEDULED if run_at > now else _PENDING
    return [job.id, job.command, state, job.queue,
            job.priority, run_at, job.max_retries, job.backoff_base, job.timeout, job.cwd,
            json.dumps(job.env) if job.env else None,
            json.dumps(job.depends_on) if job.depends_on else None, job.unique_key,
            json.dumps(job.retry_policy) if job.retry_policy else None]


def insert_params(job: NewJob, now: float) -> dict[str, Any]:
    """Parameters of the `insert_job` block for a new job (both stores)."""
    params = dict(zip(INSERT_FIELDS, insert_values(job, now)))
    params["now"] = now
    return params


def new_job_model(job: NewJob, row: dict[str, Any], now: float) -> Job:
    """The stored job an enqueue just inserted, without reading it back."""
    return Job(id=row["id"], command=job.command, state=JobState(row["state"]),
               queue=job.queue, priority=job.priority, run_at=row["run_at"],
               max_retries=job.max_retries, backoff_base=job.backoff_base,
               timeout=job.timeout, cwd=job.cwd, env=job.env,
               depends_on=list(job.depends_on), unique_key=job.unique_key,
               created_at=now, updated_at=now, retry_policy=job.retry_policy)

def insert_jobs(cursor: Any, queries: Mapping[str, str], jobs: Sequence[NewJob],
                rows: list[dict[str, Any]], now: float
                ) -> tuple[list[Job], list[dict[str, Any]]]:
    """Insert a batch inside the caller's transaction: (the jobs as enqueued, the rows
    actually inserted).  A job whose unique key matches a live job is that job.  The
    rows keep the state they were inserted with (the counts of the SQLite store add
    them up; a later change of state is counted by its trigger)."""
    if any(job.depends_on for job in jobs):
        stored, inserted = _insert_rows(cursor, queries, jobs, rows, now)
        decided = link_dependencies(cursor, queries, jobs, now)
        for job in stored:
            if job.id in decided:
                job.state, job.error = decided[job.id]
        return stored, inserted
    return _insert_rows(cursor, queries, jobs, rows, now)


def _insert_rows(cursor: Any, queries: Mapping[str, str], jobs: Sequence[NewJob],
                 rows: list[dict[str, Any]], now: float
                 ) -> tuple[list[Job], list[dict[str, Any]]]:
    if not any(job.unique_key for job in jobs):
        cursor.executemany(queries["insert_job"], rows)
        return [new_job_model(job, row, now) for job, row in zip(jobs, rows)], rows
    stored: list[Job] = []
    inserted: list[dict[str, Any]] = []
    for job, row in zip(jobs, rows):
        if not job.unique_key:
            cursor.execute(queries["insert_job"], row)
        else:
            found = _live_or_insert(cursor, queries, job.unique_key, row)
            if found is not None:
                stored.append(found)
                continue
        inserted.append(row)
        stored.append(new_job_model(job, row, now))
    return stored, inserted


def link_dependencies(cursor: Any, queries: Mapping[str, str], jobs: Sequence[NewJob],
                      now: float) -> dict[str, tuple[JobState, Optional[str]]]:
    """Store the dependency edges of just-inserted jobs (inside the enqueue's
    transaction) and decide each job whose dependencies have already ended: {id:
    (state, reason)} of the jobs that are not left `waiting`.  An unknown dependency
    raises InvalidInput (the caller's transaction rolls back: nothing is stored)."""
    from queuectl.dependencies import COMPLETED, Edge, verdict
    from queuectl.errors import InvalidInput

    decided: dict[str, tuple[JobState, Optional[str]]] = {}
    for job in jobs:
        if not job.depends_on:
            continue
        # edges left pointing at this id belong to an earlier job of the same id
        # (deleted since): they go, so no cycle can form through the new job
        cursor.execute(queries["delete_stale_edges"], {"id": job.id})
        edges = []
        for dep in job.depends_on:
            found = cursor.execute(queries["dependency_state"], {"id": dep}).fetchone()
            if found is None:
                raise InvalidInput(f"dependency {dep!r} does not exist; nothing was "
                                   "enqueued")
            if not found[1]:
                cursor.execute(queries["delete_stale_edges"], {"id": dep})
                cursor.execute(queries["mark_dependency"], {"id": dep})
            condition = job.conditions.get(dep, COMPLETED)
            cursor.execute(queries["insert_dependency"], {
                "job_id": job.id, "depends_on": dep, "condition": condition,
                "dep_state": found[0]})
            edges.append(Edge(dep, condition, JobState(found[0])))
        state, reason = verdict(edges)
        if state is JobState.WAITING:
            continue
        if state is JobState.PENDING and job.run_at is not None and job.run_at > now:
            state = JobState.SCHEDULED
        cursor.execute(queries["set_verdict"], {"id": job.id, "state": state.value,
                                                "error": reason, "now": now})
        decided[str(job.id)] = (state, reason)
    return decided


def _live_or_insert(cursor: Any, queries: Mapping[str, str], key: str,
                    row: dict[str, Any]) -> Optional[Job]:
    """The live job holding `key`, or None after inserting `row`.  The insert does
    nothing on a conflict with a live job (one a concurrent enqueue just committed
    included), which is then read; it may end between the two, hence the loop."""
    for _ in range(5):
        holder = cursor.execute(queries["live_job_by_unique_key"],
                                {"unique_key": key}).fetchone()
        if holder is None:
            if cursor.execute(queries["insert_job_unique"], row).fetchone() is not None:
                return None
            holder = cursor.execute(queries["live_job_by_unique_key"],
                                    {"unique_key": key}).fetchone()
        if holder is not None:
            found = cursor.execute(queries["get_job"], {"id": holder[0]}).fetchone()
            if found is not None:
                return row_to_job(found)
    raise StoreError(f"unique key {key!r} keeps changing hands; try again")


class SqlVerbs:
    """The verbs that are the same on every SQL store: each is one named statement
    through the store's `_one` / `_all` / `_run` (list parameters via `_array`)."""

    def _one(self, name: str, params: Mapping[str, Any] | None = None) -> Any:
        raise NotImplementedError

    def _all(self, name: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        raise NotImplementedError

    def _run(self, name: str, params: Mapping[str, Any] | None = None) -> int:
        raise NotImplementedError

    def _errors(self) -> ContextManager[None]:
        """Store errors raised inside become StoreError."""
        raise NotImplementedError

    def _transaction(self) -> ContextManager[Any]:
        """One transaction: committed at the end, rolled back on an exception."""
        raise NotImplementedError

    # -- reading jobs -------------------------------------------------------------------
    def _array(self, values: Sequence[str]) -> Any:
        """A list parameter as the store's statements take it."""
        raise NotImplementedError

    def _read_one(self, name: str, params: Mapping[str, Any] | None = None) -> Any:
        """A single-row read (a store may retry it on a fresh connection)."""
        return self._one(name, params)

    def _text(self, value: Optional[str]) -> Optional[str]:
        """A job's output or error text as the store can hold it."""
        return value

    def _entry(self, entry: Mapping[str, Any]) -> str:
        """A history entry as the JSON text the store can hold."""
        return json.dumps(entry)

    def claim(self, worker_id: str, worker: str, queues: Sequence[str] | None,
              now: float) -> Optional[Job]:
        params: dict[str, Any] = {"now": now, "worker": worker, "worker_id": worker_id}
        name = "claim"
        if queues:
            name, params["queues"] = "claim_in_queues", self._array(queues)
        row = self._one(name, params)
        return row_to_job(row) if row else None

    def finish(self, job: Job, state: JobState, run_at: Optional[float], *, now: float,
               exit_code: Optional[int], error: Optional[str], output: Optional[str],
               history_entry: Mapping[str, Any]) -> bool:
        check_target(FINISH_TARGETS, state, "finish")
        return self._run("finish", {
            "id": job.id, "worker_id": job.worker_id, "state": state.value,
            "run_at": run_at, "now": now, "exit_code": exit_code,
            "error": self._text(error), "output": self._text(output),
            "entry": self._entry(history_entry)}) == 1

    def finish_and_claim(self, results: Sequence[tuple[Job, JobState, Optional[float],
                                                   Mapping[str, Any]]], *,
                     worker_id: str, workers: Sequence[str], queues: Sequence[str] | None,
                     now: float) -> tuple[list[bool], list[Job]]:
        """Record several results (job, state, run_at, `finish` fields), then claim up
        to one job per label in `workers`, all in one transaction.  A busy supervisor
        often sees several of its jobs end at once: on SQLite one commit for four of
        them cost 0.23 ms per job instead of 0.43 for a commit each."""
        for _, state, _, _ in results:  # all of them before anything is written
            check_target(FINISH_TARGETS, state, "finish_and_claim")
        with self._errors(), self._transaction():
            done = [self.finish(job, state, run_at, **fields)
                    for job, state, run_at, fields in results]
            claimed: list[Job] = []
            for worker in workers:
                job = self.claim(worker_id, worker, queues, now)
                if job is None:
                    break
                claimed.append(job)
            return done, claimed

    def transition_all(self, transition: Transition, now: float, *,
                       reset_attempts: bool = False) -> list[Job]:
        if transition.target is not JobState.PENDING:
            raise ValueError(f"{transition.name} is not a bulk transition to pending")
        rows = self._all("transition_all", {
            "state": transition.target.value, "now": now, "reset": reset_attempts,
            "sources": self._array([s.value for s in transition.sources]),
            "entry": self._entry({"event": transition.event,
                                  "at": now})}, **self._write)
        return [row_to_job(r) for r in rows]

    #: keyword arguments of `_all` for a write (PostgreSQL must not retry it)
    _write: dict[str, Any] = {}

    def live_job_with_key(self, unique_key: str) -> Optional[str]:
        row = self._read_one("live_job_by_unique_key", {"unique_key": unique_key})
        return row[0] if row else None

    def get(self, job_id: str) -> Optional[Job]:
        row = self._read_one("get_job", {"id": job_id})
        return row_to_job(row) if row else None

    def find_prefix(self, prefix: str, limit: int) -> list[str]:
        rows = self._all("find_prefix", {"low": prefix, "high": prefix_upper_bound(prefix),
                                         "limit": limit})
        return [r[0] for r in rows]

    def list_jobs(self, states: Sequence[JobState] | None, queue: Optional[str],
                  limit: int, offset: int = 0) -> list[Job]:
        params: dict[str, Any] = {"limit": limit, "offset": offset, "queue": queue}
        name = "list_jobs"
        if states:
            params["states"] = self._array([s.value for s in states])
            name = "list_jobs_in_states_and_queue" if queue else "list_jobs_in_states"
        elif queue:
            name = "list_jobs_in_queue"
        return [row_to_job(r) for r in self._all(name, params)]

    def list_page(self, states: Sequence[JobState], queue: Optional[str], before: int,
                  limit: int) -> list[tuple[int, Job]]:
        params = {"states": self._array([s.value for s in states]), "queue": queue,
                  "before": before, "limit": limit}
        return [(r[0], row_to_job(r[1:])) for r in self._all("list_page", params)]

    def queue_counts(self) -> dict[str, dict[JobState, int]]:
        found: dict[str, dict[JobState, int]] = {}
        for queue, state, n in self._all("queue_counts"):
            found.setdefault(queue, {s: 0 for s in JobState})[JobState(state)] = n
        return dict(sorted(found.items()))

    def search_page(self, state: Optional[JobState], queue: Optional[str], before_seq: int,
                  floor_seq: int, text: str, limit: int) -> list[tuple[int, Job]]:
        params: dict[str, Any] = {"before": before_seq, "floor": floor_seq, "text": text,
                                  "limit": limit, "queue": queue,
                                  "state": state.value if state else None}
        name = "page_jobs" + ("_in_state" if state else "") + \
            ("_and_queue" if state and queue else "_in_queue" if queue else "")
        return [(int(r[0]), row_to_job(r[1:])) for r in self._all(name, params)]

    def counts(self) -> dict[JobState, int]:
        found = {JobState(state): n for state, n in self._all("counts")}
        return {state: found.get(state, 0) for state in JobState}

    def oldest_due(self, now: float) -> Optional[float]:
        return self._read_one("oldest_due", {"now": now})[0]

    def due_waiting(self, now: float, cap: int) -> int:
        return int(self._read_one("due_waiting", {"now": now, "cap": cap})[0])

    def finished_since(self, since: float) -> int:
        return self._read_one("finished_since", {"since": since})[0]

    def next_run_at(self, queues: Sequence[str] | None, after: float) -> Optional[float]:
        if queues:
            return self._read_one("next_run_at_in_queues",
                                  {"queues": self._array(list(queues)), "after": after})[0]
        return self._read_one("next_run_at", {"after": after})[0]

    def processing_jobs(self, worker_ids: Iterable[str]) -> list[Job]:
        ids = list(worker_ids)
        if not ids:
            return []
        return [row_to_job(r) for r in self._all("processing_jobs",
                                                 {"worker_ids": self._array(ids)})]

    def orphaned_jobs(self) -> list[Job]:
        return [row_to_job(r) for r in self._all("orphaned_jobs")]

    def metrics_rows(self, since: float, queue: Optional[str]) -> list[FinishedRow]:
        return self._all("metrics_rows", {"since": since, "queue": queue})

    def metrics_window(self, start: float, queue: Optional[str]) -> list[WindowGroup]:
        return [(q, state, bool(retry), bool(timed_out), int(n), int(timed), float(total),
                 None if longest is None else float(longest))
                for q, state, retry, timed_out, n, timed, total, longest
                in self._all("metrics_window", {"start": start, "queue": queue})]

    def metrics_buckets(self, start: float, width: float, queue: Optional[str]
                        ) -> list[BucketGroup]:
        return [(q, state, bool(retry), bool(timed_out), int(bucket), int(n), int(timed),
                 float(total), None if longest is None else float(longest))
                for q, state, retry, timed_out, bucket, n, timed, total, longest
                in self._all("metrics_buckets", {"start": start, "width": width,
                                                 "queue": queue})]

    def metrics_spans(self, now: float, queue: Optional[str]) -> list[SpanGroup]:
        return [(q, bool(in1), bool(in5), int(n)) for q, in1, in5, n in self._all(
            "metrics_spans", {"t1": now - 60, "t5": now - 300, "t15": now - 900,
                              "queue": queue})]

    def metrics_sample(self, start: float, queue: Optional[str], cap: int
                       ) -> list[SampleRow]:
        return self._all("metrics_sample", {"start": start, "queue": queue, "cap": cap})

    def metrics_series(self, start: float, width: float, queue: Optional[str]
                       ) -> list[tuple[int, int, int]]:
        return [(int(bucket), int(n), int(done)) for bucket, n, done in self._all(
            "metrics_series", {"start": start, "width": width, "queue": queue})]

    def metrics_earlier_runs(self, since: float, queue: Optional[str]) -> list[RunRecord]:
        rows = self._all("metrics_earlier_runs", {"since": since, "queue": queue})
        return [RunRecord(job_id, q, result, bool(timed_out),
                          None if attempt is None else int(attempt),
                          None if started is None else float(started), float(finished))
                for job_id, q, result, timed_out, attempt, started, finished in rows]

    def metrics_live(self, now: float, queue: Optional[str], cap: int) -> list[LiveCount]:
        rows = self._all("metrics_live", {"now": now, "queue": queue, "cap": cap})
        return [LiveCount(q, state, int(n), None if oldest is None else float(oldest))
                for q, state, n, oldest in rows]

    def running_by_worker(self) -> dict[str, int]:
        return {worker_id: int(n) for worker_id, n in self._all("running_by_worker")
                if worker_id is not None}

    def purge(self, states: Sequence[JobState], finished_before: Optional[float]) -> int:
        params = {"states": self._array([s.value for s in states]),
                  "before": finished_before}
        with self._errors(), self._transaction():
            self._run("purge_output", params)
            self._run("purge_edges", params)
            return self._run("purge", params)

    def delete(self, job_id: str) -> bool:
        with self._errors(), self._transaction():
            if not self._run("delete_job", {"id": job_id}):
                return False
            self._run("delete_job_output", {"id": job_id})
            self._run("delete_job_edges", {"id": job_id})
            return True

    def clear(self) -> int:
        with self._errors(), self._transaction():
            self._run("clear_output")
            self._run("clear_edges")
            return self._run("clear")

    def retry_edited(self, job_id: str, transition: Transition, changes: Mapping[str, Any],
                     now: float, *, reset_attempts: bool = False) -> Optional[Job]:
        params = self._edit_params(job_id, transition.sources, changes, now)
        with self._errors(), self._transaction():
            if not self._run("edit_job", params):
                return None
            return self._move_held(job_id, transition, now, reset_attempts)

    def transition_held(self, job_id: str, transition: Transition, now: float, *,
                        reset_attempts: bool = False) -> Optional[Job]:
        """A retry of a job that has dependencies, in one transaction: back to pending,
        then decided from its dependencies as at enqueue (waiting, blocked, cancelled,
        or left pending).  A job without dependencies just moves."""
        with self._errors(), self._transaction():
            return self._move_held(job_id, transition, now, reset_attempts)

    def _move_held(self, job_id: str, transition: Transition, now: float,
                   reset_attempts: bool) -> Optional[Job]:
        """transition_held inside the caller's transaction."""
        from queuectl.dependencies import verdict

        moved = self.transition(job_id, transition, now, reset_attempts=reset_attempts)
        if moved is None or transition.target is not JobState.PENDING:
            return moved
        edges = self.dependencies_of(job_id)
        if not edges:
            return moved
        state, reason = verdict(edges)
        if state is not JobState.PENDING:
            self._run("set_verdict", {"id": job_id, "state": state.value,
                                      "error": reason, "now": now})
            moved.state, moved.error = state, reason
        return moved

    # -- queues -------------------------------------------------------------------------
    def queue_rows(self) -> list[tuple[str, bool, Optional[int]]]:
        return [(name, bool(paused), limit) for name, paused, limit in
                self._all("queue_rows")]

    def set_queue_paused(self, names: Sequence[str], paused: bool, now: float) -> None:
        with self._errors(), self._transaction():
            for name in names:
                self._run("set_queue_paused", {"name": name, "paused": self._flag(paused),
                                               "now": now})
            if not paused:
                self._queue_opened()

    def set_queue_limit(self, name: str, limit: Optional[int], now: float) -> None:
        with self._errors(), self._transaction():
            self._run("set_queue_limit", {"name": name, "limit": limit, "now": now})
            self._queue_opened()

    def _queue_opened(self) -> None:
        """Inside the transaction that resumed a queue or changed its limit: wake idle
        workers through the store if it can (PostgreSQL's NOTIFY, sent at the commit);
        on SQLite the caller wakes the local ones (Queue.wake_workers)."""

    def _flag(self, value: bool) -> Any:
        """A boolean as the store's column holds it."""
        return value

    def queue_policies(self) -> dict[str, dict[str, Any]]:
        return {name: policy for name, raw in self._all("queue_policies")
                if isinstance(policy := _json_field(raw, None), dict)}

    def set_queue_policy(self, name: str, policy: Optional[Mapping[str, Any]],
                         now: float) -> None:
        self._run("set_queue_policy", {"name": name, "now": now,
                                       "policy": json.dumps(policy) if policy else None})

    def edit(self, job_id: str, sources: Iterable[JobState], changes: Mapping[str, Any],
             now: float) -> Optional[Job]:
        params = self._edit_params(job_id, sources, changes, now)
        with self._errors(), self._transaction():
            if not self._run("edit_job", params):
                return None
        return self.get(job_id)

    def _edit_params(self, job_id: str, sources: Iterable[JobState],
                     changes: Mapping[str, Any], now: float) -> dict[str, Any]:
        """The `edit_job` block's parameters: the new values (None: kept) and the
        history entry naming what changed (`changes["_diff"]`)."""
        entry = {"event": "edit", "at": now, "changed": dict(changes.get("_diff", {}))}
        params = {"id": job_id, "now": now, "entry": self._entry(entry),
                  "sources": self._array([s.value for s in sources])}
        for name in ("command", "timeout", "priority", "queue", "max_retries"):
            params[name] = changes.get(name)
        params["env"] = json.dumps(changes["env"]) if changes.get("env") else None
        return params

    def transition(self, job_id: str, transition: Transition, now: float, *,
                   reset_attempts: bool = False, note: Optional[str] = None) -> Optional[Job]:
        raise NotImplementedError  # each store's own statement

    # -- priority aging ---------------------------------------------------------------
    _aging = 0.0
    _dialect = "sqlite"

    def _render(self, aging: float) -> dict[str, str]:
        """The store's statements with the claim order of `aging`."""
        raise NotImplementedError

    def _ddl(self, sql: str) -> list[Any]:
        """Run one schema statement in its own transaction; rows, if it returns any."""
        raise NotImplementedError

    def use_priority_aging(self, aging: float, *, create_index: bool = True) -> None:
        """Claim by effective priority (priority + waiting time / `aging` seconds), or
        by strict priority when `aging` is 0.  The walk needs the index of that step:
        made here when missing (a supervisor started with QUEUECTL_PRIORITY_AGING)."""
        aging = float(aging)
        if aging == self._aging:
            return
        if aging > 0 and create_index:
            with self._errors():
                self._ddl(aged_index_sql(aging, self._dialect))
        self._q = self._render(aging)
        self._aging = aging

    def set_aging_index(self, aging: float, previous: float = 0.0) -> None:
        """`config set priority-aging`: make the index of the new step; drop the others
        but that of the `previous` step, which running workers use until their next
        heartbeat re-reads the config (0 for `previous` when none is kept)."""
        keep = {aged_index_name(step) for step in (aging, previous) if step > 0}
        with self._errors():
            if aging > 0:
                self._ddl(aged_index_sql(aging, self._dialect))
            for name in self._aged_indexes():
                if name not in keep:
                    self._ddl(f"DROP INDEX IF EXISTS {name}")

    def _aged_indexes(self) -> list[str]:
        raise NotImplementedError

    # -- dependencies -----------------------------------------------------------------
    def dependencies_of(self, job_id: str) -> list[Edge]:
        return [Edge(dep, condition, JobState(state) if state else None)
                for dep, condition, state in self._all("dependencies_of", {"id": job_id})]

    def dependants_of(self, job_id: str, limit: int) -> list[Edge]:
        return [Edge(dep, condition, JobState(state)) for dep, condition, state in
                self._all("dependants_of", {"id": job_id, "limit": limit})]

    def live_dependants_tree(self, job_id: str) -> list[str]:
        return [row[0] for row in self._all("live_dependants_tree", {"id": job_id})]

    # -- output chunks ----------------------------------------------------------------
    def append_output(self, job_id: str, attempt: int, seq: int, data: bytes,
                      now: float) -> None:
        self._run("append_output", {"job_id": job_id, "attempt": attempt, "seq": seq,
                                    "data": bytes(data), "now": now})

    def read_output(self, job_id: str, attempt: int, from_offset: int,
                    limit: int) -> list[OutputChunk]:
        rows = self._all("read_output", {"job_id": job_id, "attempt": attempt,
                                         "from_offset": from_offset, "limit": limit})
        return [OutputChunk(seq, bytes(data)) for seq, data in rows]

    def drop_output(self, job_id: str, attempt: Optional[int] = None,
                    before: Optional[int] = None) -> int:
        return self._run("drop_output", {"job_id": job_id, "attempt": attempt,
                                         "before": before})

    def publish_output(self, chunks: Sequence[tuple[str, int, int, bytes]],
                       drops: Sequence[tuple[str, int, Optional[int]]],
                       now: float) -> None:
        if not chunks and not drops:
            return
        with self._errors(), self._transaction():
            for job_id, attempt, seq, data in chunks:
                self.append_output(job_id, attempt, seq, data, now)
            for job_id, attempt, before in drops:
                self.drop_output(job_id, attempt, before)

    # -- workers --------------------------------------------------------------------
    def register_worker(self, info: WorkerInfo) -> None:
        self._run("register_worker", {
            "id": info.id, "host": info.host, "pid": info.pid, "slots": info.slots,
            "queues": json.dumps(info.queues), "started_at": info.started_at,
            "heartbeat_at": info.heartbeat_at})

    def heartbeat(self, worker_id: str, *, busy: int, jobs_done: int,
                  now: float) -> Optional[str]:
        row = self._one("heartbeat", {"id": worker_id, "busy": busy,
                                      "jobs_done": jobs_done, "now": now})
        if row is None:
            return "gone"
        return row[0] or None

    def unregister_worker(self, worker_id: str) -> None:
        self._run("unregister_worker", {"id": worker_id})

    def list_workers(self) -> list[WorkerInfo]:
        return [row_to_worker(r) for r in self._all("list_workers")]

    def request_stop(self, mode: str, worker_ids: Sequence[str] | None = None) -> int:
        if worker_ids is None:
            return self._run("request_stop_all", {"mode": mode})
        return sum(self._run("request_stop_one", {"mode": mode, "id": wid})
                   for wid in worker_ids)

    # -- hooks ------------------------------------------------------------------------
    def hook_pending(self) -> bool:
        return self._read_one("hook_pending") is not None

    def hook_claim(self, worker_id: str, limit: int, now: float) -> list[HookEvent]:
        with self._errors():
            rows = self._all("hook_claim", {"worker_id": worker_id, "limit": limit,
                                            "now": now})
        return sorted((row_to_hook(row) for row in rows), key=lambda e: e.id)

    def hook_finish(self, event: HookEvent, result: str, detail: str, now: float,
                    history_entry: Mapping[str, Any]) -> None:
        with self._errors(), self._transaction():
            self._run("hook_finish", {"id": event.id, "result": result,
                                      "detail": self._text(detail), "now": now})
            self._run("hook_note_job", {"id": event.job_id,
                                        "entry": self._entry(history_entry)})

    def hook_list(self, limit: int, job_id: Optional[str] = None) -> list[HookEvent]:
        if job_id is None:
            rows = self._all("hook_list", {"limit": limit})
        else:
            rows = self._all("hook_list_job", {"limit": limit, "job_id": job_id})
        return [row_to_hook(row) for row in rows]

    def hook_purge(self, before: float) -> int:
        return self._run("hook_purge", {"before": before})

    def queue_hooks(self) -> dict[str, tuple[Optional[str], Optional[str]]]:
        return {name: (on_dead, on_complete)
                for name, on_dead, on_complete in self._all("queue_hooks")}

    def set_queue_hooks(self, name: str, now: float, *, on_dead: Optional[str] = None,
                        on_complete: Optional[str] = None, keep_dead: bool = True,
                        keep_complete: bool = True) -> None:
        self._run("set_queue_hooks", {
            "name": name, "now": now, "on_dead": None if keep_dead else on_dead,
            "on_complete": None if keep_complete else on_complete,
            "keep_dead": self._flag(keep_dead), "keep_complete": self._flag(keep_complete)})

    # -- cron schedules -------------------------------------------------------------
    def _cron_inserted(self, states: Sequence[str]) -> None:
        """Inside a cron transaction, after runs were inserted: what the store does
        for new jobs (SQLite counts them per state; PostgreSQL notifies workers)."""

    def cron_add(self, schedule: CronSchedule, now: float) -> None:
        from queuectl.errors import InvalidInput

        added = self._run("cron_add", {
            "name": schedule.name, "schedule": schedule.schedule, "tz": schedule.tz,
            "job": json.dumps(schedule.job), "paused": schedule.paused,
            "catch_up": schedule.catch_up, "no_overlap": schedule.no_overlap,
            "next_fire_at": schedule.next_fire_at, "now": now})
        if not added:
            raise InvalidInput(f"a cron schedule named {schedule.name!r} already exists "
                               "(cron remove it first)")

    def cron_get(self, name: str) -> Optional[CronSchedule]:
        row = self._read_one("cron_get", {"name": name})
        return row_to_cron(row) if row else None

    def cron_list(self) -> list[CronSchedule]:
        return [row_to_cron(r) for r in self._all("cron_list")]

    def cron_remove(self, name: str) -> bool:
        return self._run("cron_remove", {"name": name}) > 0

    def cron_set_paused(self, name: str, paused: bool, next_fire_at: Optional[float],
                        now: float) -> bool:
        return self._run("cron_set_paused", {"name": name, "paused": paused,
                                             "next_fire_at": next_fire_at,
                                             "now": now}) > 0

    def cron_due(self, now: float, limit: int) -> list[CronSchedule]:
        return [row_to_cron(r) for r in self._all("cron_due", {"now": now, "limit": limit})]

    def cron_next_fire_at(self) -> Optional[float]:
        found = self._read_one("cron_next_fire_at")[0]
        return None if found is None else float(found)

    def cron_fire(self, name: str, expected: float, next_fire_at: float,
                  runs: Sequence[tuple[float, NewJob]], *, no_overlap: bool,
                  now: float) -> Optional[CronFired]:
        with self._errors(), self._transaction():
            # the compare-and-set first: it takes the schedule's row, so everything
            # below happens for one caller per instant
            won = self._one("cron_advance", {"name": name, "expected": expected,
                                             "next_fire_at": next_fire_at, "now": now})
            if won is None:
                return None
            last_job = won[0]
            if no_overlap and last_job and self._one("cron_live_job", {"id": last_job}):
                return CronFired([], True)
            ids = self._cron_enqueue(name, runs, now)
            return CronFired(ids, False)

    def cron_run(self, name: str, job: NewJob, now: float) -> Optional[str]:
        with self._errors(), self._transaction():
            if self._one("cron_lock", {"name": name, "now": now}) is None:
                return None
            return self._cron_enqueue(name, [(now, job)], now)[-1]

    def _cron_enqueue(self, name: str, runs: Sequence[tuple[float, NewJob]],
                      now: float) -> list[str]:
        """Insert the runs (inside the caller's transaction) and record the last one;
        a run whose id exists or whose unique key a live job holds is that job."""
        ids: list[str] = []
        states: list[str] = []
        for _, job in runs:
            params = insert_params(job, now)
            if self._one("cron_insert_job", params) is not None:
                ids.append(str(job.id))
                states.append(params["state"])
                continue
            holder = None
            if job.unique_key and self._one("get_job", {"id": job.id}) is None:
                holder = self._one("live_job_by_unique_key", {"unique_key": job.unique_key})
            ids.append(holder[0] if holder else str(job.id))
        if states:
            self._cron_inserted(states)
        if runs:
            self._run("cron_record_run", {"name": name, "fired_at": runs[-1][0],
                                          "job_id": ids[-1], "now": now})
        return ids

    # -- config ---------------------------------------------------------------------
    def config_items(self) -> dict[str, str]:
        return dict(self._all("config_items"))

    def config_set(self, key: str, value: str, now: float) -> None:
        self._run("config_set", {"key": key, "value": value, "now": now})

    def config_unset(self, key: str) -> bool:
        return self._run("config_unset", {"key": key}) > 0
