"""Migrating from empty gives exactly the schema below, on both stores: every column
(name, type, not null, default; SQLite: its place in the primary key) and every index
(columns in order, unique, partial predicate).  A migration that changes a column or an
index without this file saying so fails here.  And a store made at an older schema
version is migrated in place, its jobs intact."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from queuectl.backends import is_postgres, open_backend
from queuectl.backends.sqlfile import latest_version, load_migrations, load_queries
from queuectl.states import JobState
from tests.backend.schema_introspect import postgres_schema, sqlite_schema

#: the schema version the files below describe
LATEST = 9

# (column, type, not null, default, position in the primary key or 0)
SQLITE = {
    "tables": {
        "cron_schedules": [
            ('name', 'TEXT', False, None, 1),
            ('schedule', 'TEXT', True, None, 0),
            ('tz', 'TEXT', True, None, 0),
            ('job', 'TEXT', True, None, 0),
            ('paused', 'INTEGER', True, '0', 0),
            ('catch_up', 'TEXT', True, "'one'", 0),
            ('no_overlap', 'INTEGER', True, '0', 0),
            ('next_fire_at', 'REAL', True, None, 0),
            ('last_fire_at', 'REAL', False, None, 0),
            ('last_job_id', 'TEXT', False, None, 0),
            ('created_at', 'REAL', True, None, 0),
            ('updated_at', 'REAL', True, None, 0),
        ],
        "config": [
            ('key', 'TEXT', False, None, 1),
            ('value', 'TEXT', True, None, 0),
            ('updated_at', 'REAL', True, None, 0),
        ],
        "hook_events": [
            ('id', 'INTEGER', False, None, 1),
            ('job_id', 'TEXT', True, None, 0),
            ('event', 'TEXT', True, None, 0),
            ('hook', 'TEXT', True, None, 0),
            ('queue', 'TEXT', True, None, 0),
            ('attempts', 'INTEGER', True, None, 0),
            ('exit_code', 'INTEGER', False, None, 0),
            ('error', 'TEXT', False, None, 0),
            ('command', 'TEXT', True, None, 0),
            ('created_at', 'REAL', True, None, 0),
            ('claimed_by', 'TEXT', False, None, 0),
            ('claimed_at', 'REAL', False, None, 0),
            ('finished_at', 'REAL', False, None, 0),
            ('result', 'TEXT', False, None, 0),
            ('detail', 'TEXT', False, None, 0),
        ],
        "job_dependencies": [
            ('job_id', 'TEXT', True, None, 1),
            ('depends_on', 'TEXT', True, None, 2),
            ('condition', 'TEXT', True, "'completed'", 0),
            ('dep_state', 'TEXT', False, None, 0),
        ],
        "job_output": [
            ('job_id', 'TEXT', True, None, 1),
            ('attempt', 'INTEGER', True, None, 2),
            ('seq', 'INTEGER', True, None, 3),
            ('data', 'BLOB', True, None, 0),
            ('created_at', 'REAL', True, None, 0),
        ],
        "jobs": [
            ('seq', 'INTEGER', False, None, 1),
            ('id', 'TEXT', True, None, 0),
            ('command', 'TEXT', True, None, 0),
            ('state', 'TEXT', True, None, 0),
            ('queue', 'TEXT', True, "'default'", 0),
            ('priority', 'INTEGER', True, '5', 0),
            ('run_at', 'REAL', True, None, 0),
            ('attempts', 'INTEGER', True, '0', 0),
            ('max_retries', 'INTEGER', False, None, 0),
            ('backoff_base', 'REAL', False, None, 0),
            ('timeout', 'REAL', False, None, 0),
            ('cwd', 'TEXT', False, None, 0),
            ('env', 'TEXT', False, None, 0),
            ('depends_on', 'TEXT', False, None, 0),
            ('unique_key', 'TEXT', False, None, 0),
            ('created_at', 'REAL', True, None, 0),
            ('updated_at', 'REAL', True, None, 0),
            ('started_at', 'REAL', False, None, 0),
            ('finished_at', 'REAL', False, None, 0),
            ('worker', 'TEXT', False, None, 0),
            ('worker_id', 'TEXT', False, None, 0),
            ('exit_code', 'INTEGER', False, None, 0),
            ('error', 'TEXT', False, None, 0),
            ('output', 'TEXT', False, None, 0),
            ('history', 'TEXT', False, None, 0),
            ('rescues', 'INTEGER', True, '0', 0),
            ('retry_policy', 'TEXT', False, None, 0),
            ('has_dependants', 'INTEGER', True, '0', 0),
        ],
        "queues": [
            ('name', 'TEXT', False, None, 1),
            ('paused', 'INTEGER', True, '0', 0),
            ('concurrency_limit', 'INTEGER', False, None, 0),
            ('retry_policy', 'TEXT', False, None, 0),
            ('created_at', 'REAL', True, None, 0),
            ('updated_at', 'REAL', True, None, 0),
            ('on_dead', 'TEXT', False, None, 0),
            ('on_complete', 'TEXT', False, None, 0),
        ],
        "schema_version": [
            ('version', 'INTEGER', False, None, 1),
            ('name', 'TEXT', True, None, 0),
            ('applied_at', 'REAL', True, None, 0),
        ],
        "state_counts": [
            ('state', 'TEXT', True, None, 1),
            ('n', 'INTEGER', True, None, 0),
        ],
        "workers": [
            ('id', 'TEXT', False, None, 1),
            ('host', 'TEXT', True, None, 0),
            ('pid', 'INTEGER', True, None, 0),
            ('slots', 'INTEGER', True, None, 0),
            ('queues', 'TEXT', False, None, 0),
            ('started_at', 'REAL', True, None, 0),
            ('heartbeat_at', 'REAL', True, None, 0),
            ('busy', 'INTEGER', True, '0', 0),
            ('jobs_done', 'INTEGER', True, '0', 0),
            ('stop_requested', 'TEXT', False, None, 0),
        ],
    },
    "indexes": {
        "hook_events_unclaimed": ('hook_events', ['id'], False, 'claimed_at IS NULL'),
        "cron_schedules_due": ('cron_schedules', ['next_fire_at'], False, 'paused = 0'),
        "job_dependencies_depends_on": ('job_dependencies', ['depends_on'], False,
            None),
        "jobs_due": ('jobs', ['run_at', 'queue', 'state'], False,
            "state IN ('pending', 'scheduled', 'failed')"),
        "jobs_finished": ('jobs', ['finished_at', 'queue', 'state', 'attempts', 'started_at',
                                   'run_at', 'error'], False,
            'finished_at IS NOT NULL'),
        "jobs_queue": ('jobs', ['queue', 'seq'], False,
            None),
        "jobs_retried": ('jobs', ['finished_at'], False,
            "attempts > 1 OR (state = 'cancelled' AND attempts > 0)"),
        "jobs_ready": ('jobs', ['priority DESC', 'run_at', 'seq'], False,
            "state IN ('pending', 'scheduled', 'failed')"),
        "jobs_state": ('jobs', ['state', 'seq'], False,
            None),
        "jobs_unique_key": ('jobs', ['unique_key'], True,
            "unique_key IS NOT NULL AND state IN "
            "('scheduled', 'pending', 'processing', 'failed', 'waiting', 'blocked')"),
        "jobs_worker": ('jobs', ['worker_id'], False,
            "state = 'processing'"),
        "sqlite_autoindex_config_1": ('config', ['key'], True,
            None),
        "sqlite_autoindex_cron_schedules_1": ('cron_schedules', ['name'], True,
            None),
        "sqlite_autoindex_job_dependencies_1": ('job_dependencies',
                                                ['job_id', 'depends_on'], True,
            None),
        "sqlite_autoindex_job_output_1": ('job_output', ['job_id', 'attempt', 'seq'], True,
            None),
        "sqlite_autoindex_jobs_1": ('jobs', ['id'], True,
            None),
        "sqlite_autoindex_queues_1": ('queues', ['name'], True,
            None),
        "sqlite_autoindex_state_counts_1": ('state_counts', ['state'], True,
            None),
        "sqlite_autoindex_workers_1": ('workers', ['id'], True,
            None),
    },
    "triggers": {'jobs_count_delete': 'jobs', 'jobs_count_update': 'jobs',
                 'jobs_release_dependants': 'jobs', 'jobs_hook_event': 'jobs'},
}
POSTGRES = {
    "tables": {
        "cron_schedules": [
            ('name', 'text', True, None),
            ('schedule', 'text', True, None),
            ('tz', 'text', True, None),
            ('job', 'jsonb', True, None),
            ('paused', 'boolean', True, 'false'),
            ('catch_up', 'text', True, "'one'::text"),
            ('no_overlap', 'boolean', True, 'false'),
            ('next_fire_at', 'double precision', True, None),
            ('last_fire_at', 'double precision', False, None),
            ('last_job_id', 'text', False, None),
            ('created_at', 'double precision', True, None),
            ('updated_at', 'double precision', True, None),
        ],
        "config": [
            ('key', 'text', True, None),
            ('value', 'text', True, None),
            ('updated_at', 'double precision', True, None),
        ],
        "hook_events": [
            ('id', 'bigint', True, None),
            ('job_id', 'text', True, None),
            ('event', 'text', True, None),
            ('hook', 'text', True, None),
            ('queue', 'text', True, None),
            ('attempts', 'integer', True, None),
            ('exit_code', 'integer', False, None),
            ('error', 'text', False, None),
            ('command', 'text', True, None),
            ('created_at', 'double precision', True, None),
            ('claimed_by', 'text', False, None),
            ('claimed_at', 'double precision', False, None),
            ('finished_at', 'double precision', False, None),
            ('result', 'text', False, None),
            ('detail', 'text', False, None),
        ],
        "job_dependencies": [
            ('job_id', 'text', True, None),
            ('depends_on', 'text', True, None),
            ('condition', 'text', True, "'completed'::text"),
            ('dep_state', 'text', False, None),
        ],
        "job_output": [
            ('job_id', 'text', True, None),
            ('attempt', 'integer', True, None),
            ('seq', 'bigint', True, None),
            ('data', 'bytea', True, None),
            ('created_at', 'double precision', True, None),
        ],
        "jobs": [
            ('seq', 'bigint', True, None),
            ('id', 'text', True, None),
            ('command', 'text', True, None),
            ('state', 'text', True, None),
            ('queue', 'text', True, "'default'::text"),
            ('priority', 'integer', True, '5'),
            ('run_at', 'double precision', True, None),
            ('attempts', 'integer', True, '0'),
            ('max_retries', 'integer', False, None),
            ('backoff_base', 'double precision', False, None),
            ('timeout', 'double precision', False, None),
            ('cwd', 'text', False, None),
            ('env', 'jsonb', False, None),
            ('depends_on', 'jsonb', False, None),
            ('unique_key', 'text', False, None),
            ('created_at', 'double precision', True, None),
            ('updated_at', 'double precision', True, None),
            ('started_at', 'double precision', False, None),
            ('finished_at', 'double precision', False, None),
            ('worker', 'text', False, None),
            ('worker_id', 'text', False, None),
            ('exit_code', 'integer', False, None),
            ('error', 'text', False, None),
            ('output', 'text', False, None),
            ('history', 'jsonb', True, "'[]'::jsonb"),
            ('rescues', 'integer', True, '0'),
            ('retry_policy', 'jsonb', False, None),
            ('has_dependants', 'boolean', True, 'false'),
        ],
        "job_counts": [
            ('queue', 'text', True, None),
            ('state', 'text', True, None),
            ('shard', 'integer', True, None),
            ('n', 'bigint', True, None),
        ],
        "queues": [
            ('name', 'text', True, None),
            ('paused', 'boolean', True, 'false'),
            ('concurrency_limit', 'integer', False, None),
            ('retry_policy', 'jsonb', False, None),
            ('created_at', 'double precision', True, None),
            ('updated_at', 'double precision', True, None),
            ('on_dead', 'text', False, None),
            ('on_complete', 'text', False, None),
        ],
        "schema_version": [
            ('version', 'integer', True, None),
            ('name', 'text', True, None),
            ('applied_at', 'double precision', True, None),
        ],
        "workers": [
            ('id', 'text', True, None),
            ('host', 'text', True, None),
            ('pid', 'integer', True, None),
            ('slots', 'integer', True, None),
            ('queues', 'jsonb', False, None),
            ('started_at', 'double precision', True, None),
            ('heartbeat_at', 'double precision', True, None),
            ('busy', 'integer', True, '0'),
            ('jobs_done', 'integer', True, '0'),
            ('stop_requested', 'text', False, None),
        ],
    },
    "indexes": {
        "config_pkey": ('config', ['key'], True,
            None),
        "cron_schedules_due": ('cron_schedules', ['next_fire_at'], False,
            '(NOT paused)'),
        "cron_schedules_pkey": ('cron_schedules', ['name'], True,
            None),
        "hook_events_pkey": ('hook_events', ['id'], True,
            None),
        "hook_events_unclaimed": ('hook_events', ['id'], False,
            '(claimed_at IS NULL)'),
        "job_dependencies_depends_on": ('job_dependencies', ['depends_on'], False,
            None),
        "job_dependencies_pkey": ('job_dependencies', ['job_id', 'depends_on'], True,
            None),
        "job_output_pkey": ('job_output', ['job_id', 'attempt', 'seq'], True,
            None),
        "jobs_due": ('jobs', ['run_at', 'INCLUDE queue', 'INCLUDE state'], False,
            "(state = ANY (ARRAY['pending'::text, 'scheduled'::text, 'failed'::text]))"),
        "jobs_finished": ('jobs', ['finished_at', 'INCLUDE queue', 'INCLUDE state',
                                   'INCLUDE attempts', 'INCLUDE started_at', 'INCLUDE run_at',
                                   'INCLUDE error'], False,
            '(finished_at IS NOT NULL)'),
        "jobs_id_key": ('jobs', ['id'], True,
            None),
        "jobs_pkey": ('jobs', ['seq'], True,
            None),
        "jobs_queue": ('jobs', ['queue', 'seq'], False,
            None),
        "jobs_retried": ('jobs', ['finished_at'], False,
            "((attempts > 1) OR ((state = 'cancelled'::text) AND (attempts > 0)))"),
        "jobs_ready": ('jobs', ['priority DESC', 'run_at', 'seq'], False,
            "(state = ANY (ARRAY['pending'::text, 'scheduled'::text, 'failed'::text]))"),
        "jobs_state": ('jobs', ['state', 'seq'], False,
            None),
        "jobs_unique_key": ('jobs', ['unique_key'], True,
            "((unique_key IS NOT NULL) AND (state = ANY (ARRAY['scheduled'::text, "
            "'pending'::text, 'processing'::text, 'failed'::text, 'waiting'::text, "
            "'blocked'::text])))"),
        "jobs_worker": ('jobs', ['worker_id'], False,
            "(state = 'processing'::text)"),
        "job_counts_pkey": ('job_counts', ['queue', 'state', 'shard'], True,
            None),
        "queues_pkey": ('queues', ['name'], True,
            None),
        "schema_version_pkey": ('schema_version', ['version'], True,
            None),
        "workers_pkey": ('workers', ['id'], True,
            None),
    },
    "triggers": {'jobs_count_delete': 'jobs', 'jobs_count_insert': 'jobs',
                 'jobs_count_update': 'jobs', 'jobs_release_dependants': 'jobs',
                 'jobs_hook_event': 'jobs'},
}


def _schema(url: str) -> dict[str, Any]:
    return postgres_schema(url) if is_postgres(url) else sqlite_schema(url)


def _expected(url: str) -> dict[str, Any]:
    return POSTGRES if is_postgres(url) else SQLITE


def _compare(found: dict[str, Any], expected: dict[str, Any]) -> None:
    """Table by table and index by index, so that a failure names what differs."""
    assert sorted(found["tables"]) == sorted(expected["tables"])
    for table, columns in expected["tables"].items():
        assert found["tables"][table] == columns, table
    assert sorted(found["indexes"]) == sorted(expected["indexes"])
    for index, shape in expected["indexes"].items():
        assert found["indexes"][index] == shape, index
    assert found.get("triggers") == expected.get("triggers")


def test_migrating_from_empty_gives_the_expected_schema(store_url: str) -> None:
    store = open_backend(store_url)
    try:
        dialect = "postgres" if is_postgres(store_url) else "sqlite"
        assert store.schema_version() == latest_version(dialect) == LATEST
    finally:
        store.close()
    _compare(_schema(store_url), _expected(store_url))
    open_backend(store_url).close()  # opening again migrates nothing
    _compare(_schema(store_url), _expected(store_url))


def _make_version_1(url: str) -> None:
    """A store as queuectl with only migration 0001 made it, holding two jobs."""
    dialect = "postgres" if is_postgres(url) else "sqlite"
    queries = load_queries(dialect)
    version, name, sql = load_migrations(dialect)[0]
    assert version == 1
    insert = ("INSERT INTO jobs (id, command, state, run_at, created_at, updated_at, "
              "history, attempts) VALUES ('{id}', 'echo {id}', '{state}', 10, 10, 10, "
              "'[{{\"event\": \"x\"}}]', {attempts})")
    jobs = [insert.format(id="old-pending", state="pending", attempts=0),
            insert.format(id="old-done", state="completed", attempts=1)]
    if dialect == "sqlite":
        conn = sqlite3.connect(url)
        conn.execute(queries["schema_version_create"])
        conn.executescript(sql)
        conn.execute("INSERT INTO schema_version VALUES (1, ?, ?)", (name, time.time()))
        for statement in jobs:
            conn.execute(statement)
        conn.execute("UPDATE state_counts SET n = 1 WHERE state IN ('pending', 'completed')")
        conn.commit()
        conn.close()
        return
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(queries["schema_version_create"])
        conn.execute(sql)
        conn.execute("INSERT INTO schema_version VALUES (1, %s, %s)", (name, time.time()))
        for statement in jobs:
            conn.execute(statement)


def test_a_store_at_schema_1_is_migrated_in_place(store_url: str, tmp_path: Path) -> None:
    _make_version_1(store_url)
    store = open_backend(store_url)
    try:
        assert store.schema_version() == LATEST
        old = store.get("old-pending")
        assert (old.command, old.state, old.run_at, old.history) == \
            ("echo old-pending", JobState.PENDING, 10, [{"event": "x"}])
        assert store.get("old-done").state is JobState.COMPLETED
        counts = store.counts()
        assert counts[JobState.PENDING] == counts[JobState.COMPLETED] == 1
        job = store.claim("w1", "h:1/1", None, 20.0)  # the migrated store works
        assert job is not None and job.id == "old-pending" and job.attempts == 1
    finally:
        store.close()
    _compare(_schema(store_url), _expected(store_url))


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_every_dialect_has_the_same_migrations(dialect: str) -> None:
    names = [(version, name) for version, name, _ in load_migrations(dialect)]
    assert names == [(1, "initial"), (2, "queues_dependencies_output"), (3, "jobs_queue_index"),
                     (4, "dependencies"), (5, "cron"), (6, "metrics"), (7, "queue_limits"),
                     (8, "hooks"), (9, "job_counts")]


def test_a_migration_missing_below_the_newest_is_applied(store_url: str) -> None:
    """Migrations written in parallel may arrive out of order: a store that has the
    newest but lacks a lower one (here 0003, its index dropped) gets it on opening."""
    store = open_backend(store_url)
    try:
        raw: Any = store
        raw.execute_raw("DELETE FROM schema_version WHERE version = 3")
        raw.execute_raw("DROP INDEX jobs_queue")
    finally:
        store.close()
    store = open_backend(store_url)
    try:
        assert store.schema_version() == LATEST
        raw = store
        versions = raw.execute_raw("SELECT version FROM schema_version ORDER BY version")
        dialect = "postgres" if is_postgres(store_url) else "sqlite"
        assert [row[0] for row in versions] == [v for v, _, _ in load_migrations(dialect)]
    finally:
        store.close()
    _compare(_schema(store_url), _expected(store_url))
