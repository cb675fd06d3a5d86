"""The embedded store: one SQLite file in WAL mode.

Safe with many worker processes on one host: every state change is one statement
under SQLite's single write lock, the claim included.  Enqueues commit with
synchronous=FULL (an acknowledged job survives a power cut); worker connections use
NORMAL, since a transition lost to a power cut only means the job runs again.
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

from queuectl.backends.base import (
    AGED_INDEX_PREFIX,
    BATCH_ROWS,
    INSERT_FIELDS,
    SqlVerbs,
    batched,
    insert_jobs,
    insert_params,
    insert_values,
    row_to_job,
    sql_values,
)
from queuectl.backends.sqlfile import load_migrations, render_queries
from queuectl.backends.sqlite_open import (
    BUSY_TIMEOUT_MS,
    configure,
    connect,
    probe,
    store_error,
)
from queuectl.errors import DuplicateJob, StoreCorrupt, StoreError
from queuectl.models import Job, NewJob
from queuectl.states import REQUEUE_TARGETS, JobState, Transition, check_target

# Connections to the same file from threads of one process take turns through this
# lock instead of through SQLite's busy handler, which sleeps 1, 2, 5, 10... ms when
# it loses a race: with 4 slots in one supervisor that sleeping halved throughput.
_FILE_LOCKS: dict[str, threading.RLock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _file_lock(path: str) -> threading.RLock:
    key = os.path.realpath(path)
    with _FILE_LOCKS_GUARD:
        lock = _FILE_LOCKS.get(key)
        if lock is None:
            lock = _FILE_LOCKS[key] = threading.RLock()
        return lock


# Stores this process has seen damaged (by real path): every later statement on them,
# from any connection, is refused, so that nothing more is written to a corrupt file.
_CORRUPT: dict[str, StoreCorrupt] = {}


def _refuse_if_corrupt(key: str) -> None:
    seen = _CORRUPT.get(key)
    if seen is not None:
        raise StoreCorrupt(seen.message, hint=seen.hint)


_QUERIES: dict[float, dict[str, str]] = {}


def _queries(aging: float = 0.0) -> dict[str, str]:
    """The statements, rendered once per process (and per priority-aging step)."""
    if aging not in _QUERIES:
        _QUERIES[aging] = render_queries("sqlite", sql_values(aging),
                                         "AND queue IN (SELECT value FROM json_each(:queues))")
    return _QUERIES[aging]


_STATE = INSERT_FIELDS.index("state")


class _Conflict(Exception):
    """An id collision inside an enqueue transaction (reported after the rollback)."""


class _BatchWriter:
    """The inserting half of `enqueue_stream`: a thread that writes slice k while the
    caller's iterable validates slice k+1.  sqlite3 releases the GIL while a statement
    runs, so on two cores the halves overlap (100,000 jobs: 1.9 s serial, 1.3 s
    overlapped).  The queue is bounded, so memory stays flat.  The caller holds the
    transaction; the thread only runs statements inside it, and after an error it
    skips the rest so that the caller never blocks."""

    def __init__(self, backend: "SqliteBackend", now: float) -> None:
        self._backend = backend
        self._now = now
        self._slices: queue.Queue[Optional[list[NewJob]]] = queue.Queue(maxsize=4)
        self._ids: list[str] = []
        self._error: Optional[BaseException] = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="queuectl-enqueue",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self._slices.get()
            if batch is None:
                return
            if self._error is not None or self._stop:
                continue
            try:
                self._ids.extend(self._backend._insert_batch(batch, self._now))
            except BaseException as exc:  # handed to the caller's thread
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, batch: list[NewJob]) -> None:
        self._raise()
        self._slices.put(batch)

    def finish(self) -> list[str]:
        """Wait until every slice is written; the stored ids, in order."""
        self._end()
        self._raise()
        return self._ids

    def abandon(self) -> None:
        """Skip the slices not written yet, and wait for the thread."""
        self._stop = True
        self._end()

    def _end(self) -> None:
        if self._thread.is_alive():
            self._slices.put(None)
            self._thread.join()


class SqliteBackend(SqlVerbs):
    """Backend over one SQLite file.  One instance = one connection = one thread."""

    notifies_through_store = False

    def __init__(self, path: str, *, durable: bool = True) -> None:
        self.path = path
        self.url = "sqlite:///" + path
        self._q = _queries()
        self._lock = _file_lock(path)
        self._key = os.path.realpath(path)
        _refuse_if_corrupt(self._key)
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store's folder {parent}: "
                             f"{exc.strerror}") from exc
        try:
            self._db = connect(path)
        except sqlite3.Error as exc:
            raise self._mapped(exc) from exc
        try:
            self._setup_when_free(durable)
        except sqlite3.Error as exc:
            self._db.close()
            raise self._mapped(exc) from exc
        except StoreError:
            self._db.close()
            raise

    # -- connection ---------------------------------------------------------------------
    def _setup_when_free(self, durable: bool) -> None:
        """Set up, waiting out a concurrent first opening: switching a brand-new file
        to WAL can fail with "locked" at once, without SQLite's busy handler."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                return self._setup(durable)
            except sqlite3.OperationalError as exc:
                text = str(exc).lower()
                if ("locked" not in text and "busy" not in text) \
                        or time.monotonic() > deadline:
                    raise
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                time.sleep(0.01)

    def _setup(self, durable: bool) -> None:
        tables = self._refuse_foreign_file()  # before WAL mode changes the file's header
        if {"jobs", "state_counts", "workers", "config"} <= tables:
            probe(self._db, self._q)  # before anything is written
        configure(self._db, durable)
        self._migrate()

    def _refuse_foreign_file(self) -> set[str]:
        """The file's tables, unless they are another program's."""
        tables = {row[0] for row in self._db.execute(self._q["store_tables"])}
        others = sorted(tables - {"schema_version", "sqlite_sequence"})
        if "schema_version" not in tables and others:
            raise StoreError(f"{self.path} is an SQLite database of another program "
                             f"(it holds {', '.join(others[:3])}), not a queuectl store; "
                             "give a new file")
        return tables

    def _migrate(self) -> None:
        migrations = load_migrations("sqlite")
        latest = migrations[-1][0]
        try:
            applied = {row[0] for row in self._db.execute(self._q["schema_versions"])}
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            applied = set()
        current = max(applied, default=0)
        if current > latest:
            raise StoreError(f"store {self.path} has schema version {current}, newer than "
                             f"this queuectl understands ({latest}); upgrade queuectl")
        if {version for version, _, _ in migrations} <= applied:
            return
        with self._transaction():
            self._db.execute(self._q["schema_version_create"])
            applied = {row[0] for row in self._db.execute(self._q["schema_versions"])}
            # every migration not applied yet, a lower number merged later included
            for version, name, sql in migrations:
                if version not in applied:
                    for statement in _split_statements(sql):
                        self._db.execute(statement)
                    self._db.execute(self._q["schema_version_add"],
                                     {"version": version, "name": name, "now": time.time()})

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            # SQLite rolls back by itself after some errors (a corrupt page is one):
            # a second ROLLBACK would hide the error behind "no transaction is active"
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        if _CORRUPT:
            _refuse_if_corrupt(self._key)
        try:
            with self._lock:
                yield
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: sqlite3.Error) -> StoreError:
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        return self._mapped(exc)

    def _mapped(self, exc: sqlite3.Error) -> StoreError:
        """The StoreError for `exc`; a corrupt store is remembered (see _CORRUPT)."""
        error = store_error(exc, self.path)
        if isinstance(error, StoreCorrupt):
            _CORRUPT.setdefault(self._key, error)
        return error

    # The one-statement helpers skip the context manager: they run several times per
    # job in a worker's hot loop.
    def _one(self, name: str, params: Mapping[str, Any] | None = None) -> Any:
        if _CORRUPT:
            _refuse_if_corrupt(self._key)
        with self._lock:
            try:
                return self._db.execute(self._q[name], params or {}).fetchone()
            except sqlite3.Error as exc:
                raise self._failed(exc) from exc

    def _all(self, name: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        if _CORRUPT:
            _refuse_if_corrupt(self._key)
        with self._lock:
            try:
                return self._db.execute(self._q[name], params or {}).fetchall()
            except sqlite3.Error as exc:
                raise self._failed(exc) from exc

    def _run(self, name: str, params: Mapping[str, Any] | None = None) -> int:
        if _CORRUPT:
            _refuse_if_corrupt(self._key)
        with self._lock:
            try:
                return self._db.execute(self._q[name], params or {}).rowcount
            except sqlite3.Error as exc:
                raise self._failed(exc) from exc

    def _array(self, values: Sequence[str]) -> str:
        return json.dumps(list(values))  # read back with json_each()

    def close(self) -> None:
        try:
            self._db.close()
        except sqlite3.Error:
            pass

    def wakeup_fd(self) -> Optional[int]:
        return None  # wake-ups travel through the host's wake-up folder (wakeup.py)

    def drain_wakeups(self) -> int:
        return 0

    def schema_version(self) -> int:
        return self._one("schema_version_get")[0]

    def change_marker(self) -> Any:
        # data_version moves with the commits of other connections; total_changes
        # with this one's
        return (self._one("change_marker")[0], self._db.total_changes)

    def execute_raw(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """For tests and `EXPLAIN QUERY PLAN` checks only."""
        return self._db.execute(sql, params).fetchall()

    def query_text(self, name: str) -> str:
        return self._q[name]

    def _flag(self, value: bool) -> Any:
        return 1 if value else 0

    def _render(self, aging: float) -> dict[str, str]:
        return _queries(aging)

    def _ddl(self, sql: str) -> list[Any]:
        with self._transaction():
            return self._db.execute(sql).fetchall()

    def _aged_indexes(self) -> list[str]:
        return [row[0] for row in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE ?",
            (AGED_INDEX_PREFIX + "%",))]

    # -- jobs -----------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob], now: float) -> list[Job]:
        rows = [insert_params(job, now) for job in jobs]
        try:
            return self._enqueue_rows(jobs, rows, now)
        except _Conflict as conflict:
            raise self._duplicate([row["id"] for row in rows], conflict.__cause__) from None

    def _enqueue_rows(self, jobs: Sequence[NewJob], rows: list[dict[str, Any]],
                      now: float) -> list[Job]:
        with self._errors(), self._transaction() as db:
            try:
                stored, inserted = insert_jobs(db, self._q, jobs, rows, now)
            except sqlite3.IntegrityError as exc:
                raise _Conflict() from exc  # named after the rollback, below
            self._count_inserted([row["state"] for row in inserted])
        return stored

    def _count_inserted(self, states: Iterable[str]) -> None:
        added: dict[str, int] = {}
        for state in states:
            added[state] = added.get(state, 0) + 1
        self._db.executemany(self._q["count_inserted"],
                             [{"state": state, "n": n} for state, n in added.items()])

    def enqueue_stream(self, jobs: Iterable[NewJob], now: float) -> list[str]:
        with self._errors():  # a bigger page cache for the batch (cache_size_batch)
            cache = int(self._db.execute(self._q["cache_size_get"]).fetchone()[0])
            self._db.execute(self._q["cache_size_batch"])
        try:
            return self._enqueue_slices(jobs, now)
        finally:
            try:  # a PRAGMA takes no parameters; `cache` is the int SQLite gave
                self._db.execute(f"PRAGMA cache_size = {cache:d}")
            except sqlite3.Error:
                pass  # only a cache size; the outcome above is what counts

    def _enqueue_slices(self, jobs: Iterable[NewJob], now: float) -> list[str]:
        seen: list[str] = []
        try:
            with self._errors(), self._transaction():
                writer = _BatchWriter(self, now)
                try:
                    for batch in batched(jobs, BATCH_ROWS):
                        seen.extend(str(job.id) for job in batch)
                        writer.put(batch)
                    return writer.finish()
                except BaseException as exc:
                    writer.abandon()  # before the rollback: the thread uses the connection
                    if isinstance(exc, sqlite3.IntegrityError):
                        raise _Conflict() from exc
                    raise
        except _Conflict as conflict:
            raise self._duplicate(seen, conflict.__cause__) from None

    def _insert_batch(self, batch: list[NewJob], now: float) -> list[str]:
        """Insert one slice of a stream (inside its transaction); the stored ids."""
        if any(job.unique_key or job.depends_on for job in batch):
            rows = [insert_params(job, now) for job in batch]
            stored, inserted = insert_jobs(self._db, self._q, batch, rows, now)
            self._count_inserted([row["state"] for row in inserted])
            return [job.id for job in stored]
        values = [insert_values(job, now) for job in batch]
        self._db.execute(self._q["insert_job_batch"], {"rows": json.dumps(values), "now": now})
        self._count_inserted([row[_STATE] for row in values])
        return [str(job.id) for job in batch]

    def _duplicate(self, ids: list[str], exc: BaseException | None) -> Exception:
        seen: set[str] = set()
        for job_id in ids:
            if job_id in seen:
                return DuplicateJob(f"job id {job_id!r} appears twice in the batch")
            seen.add(job_id)
        for job_id in ids:
            if self._db.execute(self._q["get_job"], {"id": job_id}).fetchone():
                return DuplicateJob(f"job {job_id!r} already exists")
        if isinstance(exc, sqlite3.Error):
            return self._mapped(exc)
        return StoreError(f"store error ({exc}): {self.path}")

    def requeue(self, job: Job, *, now: float, count_attempt: bool, rescued: bool,
                history_entry: Mapping[str, Any],
                to_state: JobState = JobState.PENDING) -> bool:
        check_target(REQUEUE_TARGETS, to_state, "requeue")
        return self._run("requeue", {
            "id": job.id, "worker_id": job.worker_id, "state": to_state.value, "now": now,
            "uncount": 0 if count_attempt else 1, "rescued": 1 if rescued else 0,
            "error": history_entry.get("error"), "entry": json.dumps(history_entry)}) == 1

    def transition(self, job_id: str, transition: Transition, now: float, *,
                   reset_attempts: bool = False, note: Optional[str] = None) -> Optional[Job]:
        entry = {"event": transition.event, "at": now}
        if note:
            entry["note"] = note
        row = self._one("transition", {
            "id": job_id, "state": transition.target.value, "now": now,
            "reset": 1 if reset_attempts else 0, "note": note,
            "sources": json.dumps([s.value for s in transition.sources]),
            "entry": json.dumps(entry)})
        return row_to_job(row) if row else None

    def promote_due(self, now: float) -> int:
        return self._run("promote_due", {"now": now})

    def _cron_inserted(self, states: Sequence[str]) -> None:
        self._count_inserted(states)

    def finish_and_claim(self, results: Sequence[tuple[Job, JobState, Optional[float],
                                                   Mapping[str, Any]]], *,
                         worker_id: str, workers: Sequence[str],
                         queues: Sequence[str] | None,
                         now: float) -> tuple[list[bool], list[Job]]:
        """`SqlVerbs.finish_and_claim`; a finish that freed a slot of a queue at its
        limit wakes the idle workers of this host (the one place SQLite's workers run).
        Whether it was at its limit is read just before (a wake-up is only a hint:
        the workers' poll is the safety net)."""
        full = bool(results) and bool(self._one("limited_among", {
            "queues": json.dumps(sorted({result[0].queue for result in results}))}))
        done, claimed = super().finish_and_claim(results, worker_id=worker_id,
                                                 workers=workers, queues=queues, now=now)
        if full and any(done):
            from queuectl import wakeup

            wakeup.notify(self.path)  # the store's url as Queue has it
        return done, claimed




def _split_statements(sql: str) -> list[str]:
    """Split a migration into statements (triggers keep their BEGIN ... END; body)."""
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        if line.strip().startswith("--") and not buffer.strip():
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
