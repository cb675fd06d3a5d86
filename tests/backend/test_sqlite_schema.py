"""SQLite specifics: migrations, query plans that stay flat at depth, store errors."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from queuectl.backends import open_backend
from queuectl.backends.sqlfile import load_migrations, load_queries
from queuectl.errors import StoreError


def schema(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))


def test_migrating_from_empty_gives_the_current_schema(tmp_path: Path) -> None:
    store = open_backend(str(tmp_path / "a.db"))
    assert store.schema_version() == load_migrations("sqlite")[-1][0]
    store.close()
    first = schema(tmp_path / "a.db")
    again = open_backend(str(tmp_path / "a.db"))  # re-opening migrates nothing
    again.close()
    assert schema(tmp_path / "a.db") == first
    # a store built by replaying every migration by hand has the same tables
    manual = sqlite3.connect(tmp_path / "b.db")
    for _, _, sql in load_migrations("sqlite"):
        manual.executescript(sql)
    manual.close()
    names = {name for name, _ in schema(tmp_path / "b.db")}
    assert names <= {name for name, _ in first}
    assert {"jobs", "jobs_ready", "state_counts", "workers", "config"} <= names


def _plan(store, name: str, params: dict) -> str:  # type: ignore[no-untyped-def]
    rows = store.execute_raw("EXPLAIN QUERY PLAN " + store.query_text(name), params)
    return " | ".join(row[-1] for row in rows)


@pytest.mark.parametrize("name,params,index", [
    ("claim", {"now": 1.0, "worker": "w", "worker_id": "w"}, "jobs_ready"),
    ("claim_in_queues", {"now": 1.0, "worker": "w", "worker_id": "w",
                         "queues": json.dumps(["a"])}, "jobs_ready"),
    ("list_jobs_in_states", {"states": json.dumps(["pending"]), "limit": 50, "offset": 0,
                             "queue": None}, "jobs_state"),
    ("oldest_due", {"now": 1.0}, "jobs_due"),
    ("next_run_at", {"after": 1.0}, "jobs_due"),
])
def test_hot_queries_use_their_index(tmp_path: Path, name: str, params: dict,
                                     index: str) -> None:
    store = open_backend(str(tmp_path / "q.db"))
    try:
        plan = _plan(store, name, params)
    finally:
        store.close()
    assert index in plan, plan
    assert "SCAN jobs" not in plan.replace(f"SCAN jobs USING INDEX {index}", ""), plan


def test_counts_do_not_scan_jobs(tmp_path: Path) -> None:
    store = open_backend(str(tmp_path / "q.db"))
    try:
        plan = _plan(store, "counts", {})
    finally:
        store.close()
    assert "jobs" not in plan.replace("state_counts", ""), plan


@pytest.mark.parametrize("content", [os.urandom(8192), b"hello, I am a text file\n" * 50])
def test_corrupt_or_foreign_files_are_store_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.db"
    path.write_bytes(content)
    with pytest.raises(StoreError) as caught:
        open_backend(str(path))
    assert caught.value.exit_code == 3
    assert path.read_bytes() == content  # never "repaired" by overwriting


def test_named_blocks_are_complete() -> None:
    queries = load_queries("sqlite")
    for name in ("claim", "claim_in_queues", "finish", "requeue", "transition", "counts",
                 "insert_job", "count_inserted", "recount_states"):
        assert queries.get(name), name


def test_both_dialects_name_the_same_sql_blocks() -> None:
    """Same verbs under the same block names, but for what one store does its own way:
    SQLite keeps a counts table, unpacks big batches from JSON, has the quick
    enqueue lane (cli/quick.py) and probes its b-trees at open;
    PostgreSQL finishes and claims a batch in one statement, notifies, and locks
    migrations."""
    sqlite_only = {"insert_command", "insert_job_batch", "count_inserted", "recount_states",
                   "probe_edges"}
    postgres_only = {"finish_and_claim", "notify", "migrate_lock"}
    shared = set(load_queries("sqlite")) - sqlite_only
    assert shared == set(load_queries("postgres")) - postgres_only
