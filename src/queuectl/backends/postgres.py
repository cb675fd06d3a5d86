"""The PostgreSQL store (psycopg 3): many hosts share one queue.

Claims use `FOR UPDATE SKIP LOCKED` in one statement; every later change is a guarded
update.  Whatever makes work runnable sends `NOTIFY queuectl_jobs` in its own
transaction; supervisors LISTEN on a second connection whose socket sits in their
poll set, so pickup takes milliseconds on every host.

A lost connection (server restart, network) becomes a StoreError for that call and
the next call reconnects, so callers retry as they do for a locked SQLite file.
Writes are never retried blindly here: a commit whose answer was lost must not be
applied twice.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

from queuectl.backends import pg_where
from queuectl.backends.base import (
    AGED_INDEX_PREFIX,
    BATCH_ROWS,
    SqlVerbs,
    batched,
    insert_jobs,
    insert_params,
    row_to_hook,
    row_to_job,
    sql_values,
)
from queuectl.backends.sqlfile import load_migrations, render_queries
from queuectl.errors import DuplicateJob, StoreError
from queuectl.models import HookEvent, Job, NewJob
from queuectl.states import FINISH_TARGETS, REQUEUE_TARGETS, JobState, Transition, check_target

try:
    import psycopg
    from psycopg import errors as pg_errors
except ImportError:  # pragma: no cover - reported as a clear StoreError below
    psycopg = None  # type: ignore[assignment]

CONNECT_TIMEOUT_S = 5
#: claims of one `finish_and_claim` at most, when queue limits leave candidates
LIMIT_ROUNDS = 3
#: job_counts rows summed by a read beyond which the rows of connections gone are
#: folded (a row per queue, state and connection that wrote: a few hundred rows sum in
#: well under a millisecond)
FOLD_COUNTS_AT = 500
_QUERIES: dict[float, dict[str, str]] = {}


def _queries(aging: float = 0.0) -> dict[str, str]:
    """The statements, rendered once per process (and per priority-aging step)."""
    if aging not in _QUERIES:
        _QUERIES[aging] = render_queries("postgres", sql_values(aging, "postgres"),
                                         "AND queue = ANY(%(queues)s::text[])")
    return _QUERIES[aging]


# Never prepared, so planned with their values each time: a prepared statement soon
# runs a generic plan, and the generic plan of a state's page walks the primary key
# (half the rows match "a state", it guesses), which for a rare state reads every
# job: 283 ms at a million jobs instead of 0.1 ms.
CUSTOM_PLANS = frozenset({"page_jobs_in_state", "page_jobs_in_queue",
                          "page_jobs_in_state_and_queue"})


class PostgresBackend(SqlVerbs):
    """Backend over one PostgreSQL database.  One instance = one connection."""

    notifies_through_store = True
    _write = {"retry": False}
    _dialect = "postgres"

    def __init__(self, url: str, *, durable: bool = True) -> None:
        if psycopg is None:
            raise StoreError("PostgreSQL support needs psycopg: "
                             "pip install 'queuectl[postgres]'")
        self.url = url
        self._where = pg_where(url)
        self._durable = durable
        self._q = _queries()
        self._conn: Any = None
        self._listen: Any = None
        self._connect()
        self._migrate()

    # -- connections --------------------------------------------------------------------
    def _connect(self) -> Any:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(self.url, autocommit=True,
                                             connect_timeout=CONNECT_TIMEOUT_S)
            except psycopg.Error as exc:
                self._conn = None
                raise self._error(exc) from exc
            if not self._durable:  # a supervisor's connection (see the SQL comments)
                self._conn.execute(self._q["session_cheap_commits"])
                try:
                    self._conn.execute(self._q["session_generic_plans"])
                except psycopg.Error:  # before PostgreSQL 12: plans as the server likes
                    pass
        return self._conn

    def _error(self, exc: Exception) -> StoreError:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, psycopg.OperationalError):
            return StoreError(f"cannot reach PostgreSQL at {self._where}: {first}")
        return StoreError(f"PostgreSQL error at {self._where}: {first}")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except psycopg.Error as exc:
            if self._conn is not None and (self._conn.closed or self._conn.broken):
                self._conn = None  # reconnect on the next call
            raise self._error(exc) from exc

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        conn = self._connect()
        with conn.transaction():
            yield conn

    def _one(self, name: str, params: Mapping[str, Any] | None = None,
             *, retry: bool = False) -> Any:
        return self._call(name, params, lambda cur: cur.fetchone(), retry)

    def _all(self, name: str, params: Mapping[str, Any] | None = None,
             *, retry: bool = True) -> list[Any]:
        return self._call(name, params, lambda cur: cur.fetchall(), retry)

    def _run(self, name: str, params: Mapping[str, Any] | None = None) -> int:
        return self._call(name, params, lambda cur: cur.rowcount, False)

    def _call(self, name: str, params: Mapping[str, Any] | None, take: Any,
              retry: bool) -> Any:
        """One statement.  Reads (`retry=True`) get one more try on a fresh connection
        after a broken one; writes surface the error to the caller."""
        for attempt in (1, 2):
            try:
                with self._errors():
                    return take(self._connect().execute(self._q[name], params or {},
                                                        prepare=name not in CUSTOM_PLANS))
            except StoreError:
                if not retry or attempt == 2 or self._conn is not None:
                    raise
        raise AssertionError("unreachable")

    def _array(self, values: Sequence[str]) -> list[str]:
        return list(values)  # a text[] for = ANY(...)

    def _read_one(self, name: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._one(name, params, retry=True)

    def close(self) -> None:
        for conn in (self._conn, self._listen):
            if conn is not None:
                try:
                    conn.close()
                except psycopg.Error:
                    pass
        self._conn = self._listen = None

    def _migrate(self) -> None:
        migrations = load_migrations("postgres")
        latest = migrations[-1][0]
        with self._errors(), self._transaction() as conn:
            conn.execute(self._q["migrate_lock"])  # concurrent first users wait here
            conn.execute(self._q["schema_version_create"])
            applied = {row[0] for row in conn.execute(self._q["schema_versions"])}
            current = max(applied, default=0)
            if current > latest:
                raise StoreError(f"store {self._where} has schema version {current}, "
                                 f"newer than this queuectl understands ({latest})")
            # every migration not applied yet, a lower number merged later included
            for version, name, sql in migrations:
                if version not in applied:
                    conn.execute(sql)
                    conn.execute(self._q["schema_version_add"],
                                 {"version": version, "name": name, "now": time.time()})

    def schema_version(self) -> int:
        return self._one("schema_version_get", retry=True)[0]

    def change_marker(self) -> Any:
        return tuple(self._one("change_marker", retry=True))

    def counts(self) -> dict[JobState, int]:
        rows = self._all("counts")
        if sum(int(r[2]) for r in rows) > FOLD_COUNTS_AT:
            self.fold_counts()
        found = {JobState(state): int(n) for state, n, _ in rows}
        return {state: found.get(state, 0) for state in JobState}

    def fold_counts(self) -> int:
        """Fold the job_counts rows of connections that are gone into one row per
        queue and state (the sums stay); how many rows it added or changed."""
        with self._errors(), self._transaction():
            return self._run("fold_counts")

    def execute_raw(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """For tests and benchmarks only."""
        with self._errors():
            cur = self._connect().execute(sql, params)
            return cur.fetchall() if cur.description else []

    def query_text(self, name: str) -> str:
        return self._q[name]

    def _render(self, aging: float) -> dict[str, str]:
        return _queries(aging)

    def _ddl(self, sql: str) -> list[Any]:
        with self._transaction() as conn:
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []

    def _aged_indexes(self) -> list[str]:
        with self._transaction() as conn:
            return [row[0] for row in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'jobs' "
                "AND indexname LIKE %s", (AGED_INDEX_PREFIX + "%",))]

    # -- wake-ups -----------------------------------------------------------------------
    def wakeup_fd(self) -> Optional[int]:
        """A socket that becomes readable on NOTIFY (LISTEN on its own connection)."""
        try:
            if self._listen is None or self._listen.closed:
                self._listen = psycopg.connect(self.url, autocommit=True,
                                               connect_timeout=CONNECT_TIMEOUT_S)
                self._listen.execute(self._q["listen"])
            return self._listen.pgconn.socket
        except psycopg.Error:
            self._listen = None
            return None

    def drain_wakeups(self) -> int:
        """Consume pending notifications; how many there were."""
        if self._listen is None:
            return 0
        pgconn = self._listen.pgconn
        count = 0
        try:
            pgconn.consume_input()
            while pgconn.notifies() is not None:
                count += 1
        except psycopg.Error:
            count = 1  # the connection broke: treat it as a wake-up and listen anew
            try:
                self._listen.close()
            except psycopg.Error:
                pass
            self._listen = None
        return count

    # -- jobs ---------------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob], now: float) -> list[Job]:
        return self._enqueue_batches([jobs], now)

    def enqueue_stream(self, jobs: Iterable[NewJob], now: float) -> list[str]:
        return [str(job.id) for job in self._enqueue_batches(batched(jobs, BATCH_ROWS), now)]

    def _enqueue_batches(self, batches: Iterable[Sequence[NewJob]], now: float) -> list[Job]:
        """Insert every batch in one transaction (all or none), then notify."""
        stored: list[Job] = []
        seen: set[str] = set()
        try:
            with self._errors(), self._transaction() as conn:
                with conn.cursor() as cur:
                    for batch in batches:
                        rows = [insert_params(job, now) for job in batch]
                        for row in rows:
                            if row["id"] in seen:
                                raise DuplicateJob(f"job id {row['id']!r} appears twice "
                                                   "in the batch")
                            seen.add(row["id"])
                        stored += insert_jobs(cur, self._q, batch, rows, now)[0]
                    cur.execute(self._q["notify"])
        except StoreError as exc:
            if isinstance(exc.__cause__, pg_errors.UniqueViolation):
                raise self._duplicate(list(seen)) from None
            raise
        return stored

    def _duplicate(self, ids: list[str]) -> Exception:
        found = self._read_one("first_existing_id", {"ids": ids})
        if found:
            return DuplicateJob(f"job {found[0]!r} already exists")
        return StoreError("a job with the same unique key was enqueued at the same time")

    def _text(self, value: Optional[str]) -> Optional[str]:
        return _text(value)

    def _entry(self, entry: Mapping[str, Any]) -> str:
        return _entry_json(entry)

    def hook_claim(self, worker_id: str, limit: int, now: float) -> list[HookEvent]:
        """A write: not tried again on a fresh connection (a claim whose answer was
        lost would leave its events claimed and never run)."""
        with self._errors():
            rows = self._all("hook_claim", {"worker_id": worker_id, "limit": limit,
                                            "now": now}, retry=False)
        return sorted((row_to_hook(row) for row in rows), key=lambda e: e.id)

    def finish_and_claim(self, results: Sequence[tuple[Job, JobState, Optional[float],
                                                   Mapping[str, Any]]], *,
                     worker_id: str, workers: Sequence[str], queues: Sequence[str] | None,
                     now: float) -> tuple[list[bool], list[Job]]:
        """`SqlVerbs.finish_and_claim` in one statement: one round trip instead of one per
        result and per claim (a busy 4-slot supervisor spent 0.65 ms per job on them)."""
        for _, state, _, _ in results:
            check_target(FINISH_TARGETS, state, "finish_and_claim")
        rows_in = [_result_row(job, state, run_at, **fields)
                   for job, state, run_at, fields in results]
        finished: set[str] = set()
        claimed: list[Job] = []
        labels = list(workers)
        for _ in range(LIMIT_ROUNDS):
            columns = list(zip(*rows_in)) if rows_in else [()] * 8
            rows = self._all("finish_and_claim_in_queues" if queues else "finish_and_claim", {
                **dict(zip(("ids", "worker_ids", "states", "run_ats", "exit_codes",
                            "errors", "outputs", "entries"), (list(c) for c in columns))),
                "now": now, "workers": labels, "worker_id": worker_id,
                "queues": list(queues) if queues else None}, retry=False)
            finished.update(rows[0][0] or ())
            taken = [row_to_job(row[3:]) for row in rows if row[2] is not None]
            claimed += taken
            labels = labels[len(taken):]
            rows_in = []
            # candidates a limit left while labels stay free: claim again (the limited
            # queue is full now, so the next walk passes over it to other queues)
            if not rows[0][1] or not labels:
                break
        return [job.id in finished for job, _, _, _ in results], claimed

    def claim(self, worker_id: str, worker: str, queues: Sequence[str] | None,
              now: float) -> Optional[Job]:
        row = self._one("claim_in_queues" if queues else "claim", {
            "now": now, "worker": worker, "worker_id": worker_id, "ids": [],
            "queues": list(queues) if queues else None})
        return row_to_job(row) if row else None

    def requeue(self, job: Job, *, now: float, count_attempt: bool, rescued: bool,
                history_entry: Mapping[str, Any],
                to_state: JobState = JobState.PENDING) -> bool:
        check_target(REQUEUE_TARGETS, to_state, "requeue")
        params = {"id": job.id, "worker_id": job.worker_id, "state": to_state.value,
                  "now": now, "uncount": 0 if count_attempt else 1,
                  "rescued": 1 if rescued else 0,
                  "error": _text(history_entry.get("error")),
                  "entry": self._entry(history_entry)}
        with self._errors(), self._transaction() as conn:
            done = conn.execute(self._q["requeue"], params).rowcount == 1
            if done:
                conn.execute(self._q["notify"])
        return done

    def transition(self, job_id: str, transition: Transition, now: float, *,
                   reset_attempts: bool = False, note: Optional[str] = None) -> Optional[Job]:
        entry: dict[str, Any] = {"event": transition.event,
                                 "at": now}
        if note:
            entry["note"] = note
        params = {"id": job_id, "state": transition.target.value, "now": now,
                  "reset": reset_attempts, "note": note,
                  "sources": [s.value for s in transition.sources],
                  "entry": self._entry(entry)}
        with self._errors(), self._transaction() as conn:
            row = conn.execute(self._q["transition"], params).fetchone()
            if row:
                conn.execute(self._q["notify"])  # new work, or a running job to kill
        return row_to_job(row) if row else None

    def transition_all(self, transition: Transition, now: float, *,
                       reset_attempts: bool = False) -> list[Job]:
        moved = super().transition_all(transition, now, reset_attempts=reset_attempts)
        if moved:
            self._run("notify")
        return moved

    def promote_due(self, now: float) -> int:
        with self._errors(), self._transaction() as conn:
            promoted = conn.execute(self._q["promote_due"], {"now": now}).rowcount
            if promoted:
                conn.execute(self._q["notify"])
        return promoted

    def _cron_inserted(self, states: Sequence[str]) -> None:
        self._run("notify")  # sent when the firing transaction commits

    def _queue_opened(self) -> None:
        self._run("notify")  # sent when the transaction commits




def _text(value: Optional[str]) -> Optional[str]:
    """PostgreSQL text cannot hold NUL bytes; job output sometimes does."""
    return None if value is None else value.replace("\x00", "\ufffd")


def _entry_json(entry: Mapping[str, Any]) -> str:
    return json.dumps(_nul_free(entry))


def _nul_free(value: Any) -> Any:
    """A JSON value whose strings hold no NUL (jsonb rejects the \\u0000 escape); a
    job's error quotes its output, which sometimes has one."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, Mapping):
        return {key: _nul_free(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nul_free(item) for item in value]
    return value


def _result_row(job: Job, state: JobState, run_at: Optional[float], *, now: float,
                exit_code: Optional[int], error: Optional[str], output: Optional[str],
                history_entry: Mapping[str, Any]) -> tuple[Any, ...]:
    """One result of `finish_and_claim` as the columns its statement unnests (the keyword
    fields are `finish`'s: anything else is a TypeError, as on SQLite)."""
    return (job.id, job.worker_id, state.value, run_at, exit_code, _text(error),
            _text(output), _entry_json(history_entry))
