"""SQLite specifics: query plans that stay flat at depth, store errors (the schema
itself: test_schema.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from queuectl.backends import open_backend
from queuectl.backends.sqlfile import load_queries
from queuectl.errors import StoreError


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
    ("due_waiting", {"now": 1.0, "cap": 10}, "jobs_state"),
    ("next_run_at", {"after": 1.0}, "jobs_due"),
    ("page_jobs_in_state", {"state": "dead", "before": 10, "floor": 0, "text": "",
                            "limit": 50}, "jobs_state"),
    ("page_jobs_in_queue", {"queue": "mail", "before": 10, "floor": 0, "text": "",
                            "limit": 50}, "jobs_queue"),
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


def test_a_page_of_all_jobs_walks_the_primary_key_backwards(tmp_path: Path) -> None:
    store = open_backend(str(tmp_path / "q.db"))
    try:
        plan = _plan(store, "page_jobs", {"before": 10, "floor": 0, "text": "", "limit": 50})
    finally:
        store.close()
    assert "INTEGER PRIMARY KEY" in plan and "TEMP B-TREE" not in plan, plan


def test_a_small_queues_page_walks_its_index_after_analyze(tmp_path: Path) -> None:
    """ANALYZE of a store whose jobs are all in one queue tells the planner that a queue
    matches every row; a page of another queue must still walk jobs_queue."""
    from queuectl.models import NewJob

    store = open_backend(str(tmp_path / "q.db"))
    try:
        store.enqueue([NewJob(command="true", id=f"j{i}") for i in range(2000)], 1.0)
        store.execute_raw("ANALYZE")
        plan = _plan(store, "page_jobs_in_queue", {"queue": "mail", "before": 10 ** 9,
                                                   "floor": 0, "text": "", "limit": 50})
    finally:
        store.close()
    assert "jobs_queue" in plan, plan


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


def test_named_blocks_are_complete(tmp_path: Path) -> None:
    store = open_backend(str(tmp_path / "q.db"))
    try:
        for name in ("claim", "claim_in_queues", "finish", "requeue", "transition",
                     "counts", "insert_job", "insert_job_batch", "count_inserted"):
            assert store.query_text(name), name
    finally:
        store.close()


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_the_claim_is_written_once(dialect: str) -> None:
    """One block (SQLite) or fragment (PostgreSQL) walks the claim index; the queue
    filtered variants are generated from it."""
    walks = [name for name, text in load_queries(dialect).items()
             if "state IN ({CLAIMABLE}) AND" in text and "<= " in text
             and "ORDER BY {claim_order}" in text]
    assert walks == (["claim"] if dialect == "sqlite" else ["_due"])


def test_both_dialects_name_the_same_sql_blocks() -> None:
    """Same verbs under the same block names, but for what one store does its own way:
    SQLite keeps a counts table, unpacks big batches from JSON, has the quick
    enqueue lane (cli/quick.py) and probes its b-trees at open;
    SQLite also looks at a file before taking it and sizes its page cache for a batch,
    and asks whether a finish freed a limited queue's slot (PostgreSQL notifies in SQL);
    PostgreSQL finishes and claims a batch in one statement (its claim is fragments
    both statements share, the room of limited queues one of them), notifies, listens,
    sets a supervisor's session up, locks migrations, and folds the counts rows of
    connections gone."""
    sqlite_only = {"insert_command", "insert_job_batch", "count_inserted", "store_tables",
                   "cache_size_get", "cache_size_batch", "probe_edges", "limited_among"}
    postgres_only = {"finish_and_claim", "notify", "migrate_lock", "_due", "_take",
                     "listen", "session_cheap_commits", "session_generic_plans",
                     "first_existing_id", "_room", "fold_counts"}
    shared = set(load_queries("sqlite")) - sqlite_only
    assert shared == set(load_queries("postgres")) - postgres_only
