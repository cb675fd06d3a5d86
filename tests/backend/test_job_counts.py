"""PostgreSQL's job_counts (migration 0009): a row per queue, state and writing
connection, kept by triggers.  Concurrent writers stay exact, the rows of connections
gone fold into one without changing a sum, and a store migrated with jobs in it is
counted from them.  (Both stores' counts under every operation: test_state_machine.)"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from queuectl.backends import open_backend
from queuectl.models import NewJob
from queuectl.states import JobState, Transition

NOW = 1_700_000_000.0
S = JobState


def _grouped(store: Any) -> dict[str, dict[JobState, int]]:
    found: dict[str, dict[JobState, int]] = {}
    for queue, state, n in store.execute_raw(
            "SELECT queue, state, COUNT(*) FROM jobs GROUP BY queue, state"):
        found.setdefault(queue, {s: 0 for s in JobState})[JobState(state)] = n
    return found


def _shards(store: Any) -> set[int]:
    return {row[0] for row in store.execute_raw("SELECT DISTINCT shard FROM job_counts")}


def test_concurrent_workers_keep_exact_counts(pg_url: str) -> None:
    setup = open_backend(pg_url)
    setup.enqueue([NewJob(command="true", id=f"c{i}", queue=f"q{i % 2}")
                   for i in range(60)], NOW)
    errors: list[BaseException] = []

    def work(name: str) -> None:
        store = open_backend(pg_url)
        try:
            done = 0
            while (job := store.claim(name, f"h:{name}", None, NOW + 1)) is not None:
                done += 1
                state = S.COMPLETED if done % 3 else S.DEAD
                store.finish(job, state, None, now=NOW + 2, exit_code=0, error=None,
                             output=None, history_entry={})
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert not errors, errors
        assert setup.queue_counts() == _grouped(setup)
        counts = setup.counts()
        assert counts[S.PENDING] == counts[S.PROCESSING] == 0
        assert counts[S.COMPLETED] + counts[S.DEAD] == 60
        assert len(_shards(setup)) >= 2  # the workers wrote rows of their own
    finally:
        setup.close()


def test_rows_of_connections_gone_fold_into_one(pg_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(3):  # three connections, each enqueueing then closing
        store = open_backend(pg_url)
        store.enqueue([NewJob(command="true", id=f"a{i}", queue="a"),
                       NewJob(command="true", id=f"b{i}", queue="b")], NOW + i)
        store.close()
    reader = open_backend(pg_url)
    try:
        before = reader.queue_counts()
        assert before == _grouped(reader) == {
            "a": {**{s: 0 for s in JobState}, S.PENDING: 3},
            "b": {**{s: 0 for s in JobState}, S.PENDING: 3}}
        assert len(_shards(reader)) == 3
        import queuectl.backends.postgres as pg

        monkeypatch.setattr(pg, "FOLD_COUNTS_AT", 2)  # a read past it folds
        assert reader.counts()[S.PENDING] == 6
        assert _shards(reader) == {0}
        assert reader.queue_counts() == before
        assert reader.counts()[S.PENDING] == 6
    finally:
        reader.close()


def test_a_store_migrated_with_jobs_is_counted_from_them(pg_url: str) -> None:
    store = open_backend(pg_url)
    jobs = store.enqueue([NewJob(command="true", id=f"m{i}", queue=f"q{i % 3}")
                          for i in range(7)], NOW)
    store.transition(jobs[0].id, Transition.CANCEL, NOW + 1)
    # back to version 6's schema: no counts table, its triggers gone
    for trigger in ("jobs_count_insert", "jobs_count_delete", "jobs_count_update"):
        store.execute_raw(f"DROP TRIGGER {trigger} ON jobs")
    store.execute_raw("DROP TABLE job_counts")
    store.execute_raw("DELETE FROM schema_version WHERE version = 9")
    store.close()
    store = open_backend(pg_url)  # migrates: counts from the rows
    try:
        assert store.queue_counts() == _grouped(store)
        assert store.counts()[S.CANCELLED] == 1 and store.counts()[S.PENDING] == 6
        assert _shards(store) == {0}
    finally:
        store.close()
