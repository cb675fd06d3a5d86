"""A supervisor's PostgreSQL connection runs its statements with generic plans (planned
once, not at every call); those plans must walk indexes, at any table size and whether
or not the table has statistics yet (a burst often starts right after a big enqueue)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from queuectl.backends import open_backend
from queuectl.models import NewJob

TYPES = {"ids": "text[]", "worker_ids": "text[]", "states": "text[]", "run_ats": "float8[]",
         "exit_codes": "int[]", "errors": "text[]", "outputs": "text[]",
         "entries": "text[]", "now": "float8", "workers": "text[]", "worker_id": "text",
         "queues": "text[]", "worker": "text"}


def _generic_plan(backend: Any, name: str) -> str:
    """EXPLAIN of the statement's generic plan (parameters unknown when planned)."""
    names: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    sql = re.sub(r"%\((\w+)\)s", placeholder, backend.query_text(name))
    backend.execute_raw("DEALLOCATE ALL")
    backend.execute_raw(f"PREPARE probe ({', '.join(TYPES[n] for n in names)}) AS {sql}")
    args = ", ".join(f"NULL::{TYPES[n]}" for n in names)
    return "\n".join(row[0] for row in backend.execute_raw(f"EXPLAIN EXECUTE probe({args})"))


@pytest.mark.parametrize("analyzed", [False, True], ids=["fresh-table", "analyzed"])
def test_finish_and_claim_generic_plans_use_indexes(pg_url: str, analyzed: bool) -> None:
    backend = open_backend(pg_url, durable=False)  # a supervisor's connection
    try:
        assert backend.execute_raw("SHOW plan_cache_mode") == [("force_generic_plan",)]
        backend.enqueue([NewJob(command="true", id=f"j{i}", queue=f"q{i % 3}")
                         for i in range(3000)],
                        time.time())
        if analyzed:
            backend.execute_raw("ANALYZE jobs")
        for name in ("finish_and_claim", "finish_and_claim_in_queues"):
            plan = _generic_plan(backend, name)
            assert "Seq Scan on jobs" not in plan, plan
            if analyzed or name == "finish_and_claim":
                # the claim walks the claim-order index (a queue filter on a table
                # without statistics reads the due index instead, until autovacuum's
                # ANALYZE, which also makes every connection plan again)
                assert "jobs_ready" in plan, plan
    finally:
        backend.close()


@pytest.mark.parametrize("analyzed", [False, True], ids=["fresh-table", "analyzed"])
def test_the_claim_with_priority_aging_walks_the_aged_index(pg_url: str,
                                                           analyzed: bool) -> None:
    from queuectl.backends.base import aged_index_name

    backend = open_backend(pg_url, durable=False)
    try:
        backend.set_aging_index(30)
        backend.use_priority_aging(30)
        backend.enqueue([NewJob(command="true", id=f"j{i}", priority=1 + i % 10)
                         for i in range(3000)], time.time())
        if analyzed:
            backend.execute_raw("ANALYZE jobs")
        plan = _generic_plan(backend, "finish_and_claim")
        assert "Seq Scan on jobs" not in plan, plan
        if analyzed:  # without statistics the planner sorts the (few) due rows
            assert aged_index_name(30) in plan, plan
    finally:
        backend.set_aging_index(0)
        backend.close()


def test_only_a_supervisor_connection_forces_generic_plans(pg_url: str) -> None:
    backend = open_backend(pg_url)  # the CLI's: ad-hoc lists get custom plans
    try:
        assert backend.execute_raw("SHOW plan_cache_mode") == [("auto",)]
    finally:
        backend.close()


def test_keyset_pages_are_planned_with_their_values(pg_url: str) -> None:
    """A prepared page statement soon runs a generic plan, which for a rare state walks
    the primary key through every job; the dashboard calls them again and again, so
    they are never prepared (and the page of a rare state stays an index walk)."""
    from queuectl.states import JobState

    backend = open_backend(pg_url)
    try:
        backend.execute_raw(
            "INSERT INTO jobs (id, command, state, run_at, created_at, updated_at) "
            "SELECT 'f' || i, 'true', 'completed', 0, 0, 0 FROM generate_series(1, 20000) i")
        backend.execute_raw("ANALYZE jobs")
        for _ in range(12):  # past psycopg's prepare threshold and PostgreSQL's 5 custom
            assert backend.search_page(JobState.DEAD, None, 2 ** 62, 0, "", 50) == []
            assert backend.search_page(JobState.DEAD, "q", 2 ** 62, 0, "", 50) == []
            assert backend.search_page(None, "q", 2 ** 62, 0, "", 50) == []
        prepared = [row[0] for row in
                    backend.execute_raw("SELECT statement FROM pg_prepared_statements")]
    finally:
        backend.close()
    assert not [text for text in prepared if "ORDER BY seq DESC" in text], prepared


@pytest.mark.parametrize("analyzed", [False, True], ids=["fresh-table", "analyzed"])
def test_the_claim_walks_the_claim_index_with_limited_and_paused_queues(
        pg_url: str, analyzed: bool) -> None:
    """With limits and a pause set the claim still walks jobs_ready (full limited
    queues are one array computed once per claim: counted in each probe of the walk's
    anti-join, the planner priced the walk out and sorted every due job, seen at
    20,000 jobs after churn; DECISIONS 47)."""
    backend = open_backend(pg_url, durable=False)
    try:
        backend.enqueue([NewJob(command="true", id=f"j{i}", queue=f"q{i % 3}")
                         for i in range(3000)], time.time())
        backend.set_queue_limit("q0", 2, time.time())
        backend.set_queue_limit("q1", 1000, time.time())
        backend.set_queue_paused(["q2"], True, time.time())
        if analyzed:
            backend.execute_raw("ANALYZE jobs")
        for name in ("finish_and_claim", "claim"):
            plan = _generic_plan(backend, name)
            assert "Seq Scan on jobs" not in plan, plan
            assert "Index Scan using jobs_ready" in plan, plan
            assert "Sort Key: jobs" not in plan, plan  # no sort of the due jobs
    finally:
        backend.close()
