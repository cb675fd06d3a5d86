"""`queuectl metrics` as a user runs it (both stores): the figures of a store built
with known times, the text and JSON outputs, and bad input or a bad store as one line
and its exit code."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from queuectl.models import NewJob
from queuectl.queue import Queue
from queuectl.states import JobState
from tests.conftest import run_cli

Cli = Callable[..., Any]


def _run(q: Queue, job_id: str, queue: str, start: float, end: float,
         state: JobState = JobState.COMPLETED) -> None:
    q.enqueue([NewJob(command="true", id=job_id, queue=queue, run_at=start - 1)])
    job = q.backend.claim("w1", "elsewhere:1/w1", [queue], start)
    assert job is not None and job.id == job_id
    entry = {"attempt": 1, "started_at": start, "finished_at": end, "timed_out": False,
             "result": state.value}
    assert q.backend.finish(job, state, None, now=end, exit_code=0, error=None,
                            output=None, history_entry=entry)


@pytest.fixture
def built(store_url: str) -> str:
    """Two runs in `default` (2 s and 4 s), a dead one in `mail` (1 s), 2-4 minutes ago,
    each started 1 s after it was due; one job in `mail` due a minute ago."""
    now = time.time()
    with Queue(store_url, clock=lambda: now - 300) as q:
        _run(q, "a", "default", now - 240, now - 238)
        _run(q, "b", "default", now - 230, now - 226)
        _run(q, "c", "mail", now - 200, now - 199, JobState.DEAD)
        q.enqueue([NewJob(command="true", id="w", queue="mail", run_at=now - 60)])
    return store_url


def test_json_figures(built: str) -> None:
    result = run_cli("metrics", "--json", db=built)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    overall = report["overall"]
    assert overall["runs"] == {"completed": 2, "failed": 0, "dead": 1, "cancelled": 0,
                               "timeout": 0}
    assert overall["success_rate"] == round(2 / 3, 4)
    assert overall["duration_s"] == {"p50": 2.0, "p95": 4.0, "p99": 4.0, "max": 4.0,
                                     "count": 3, "sum": 7.0}
    assert overall["wait_s"] == {"p50": 1.0, "p95": 1.0, "p99": 1.0, "count": 3}
    assert overall["throughput"]["1m"] == {"runs": 0, "per_min": 0.0}
    assert overall["throughput"]["5m"] == {"runs": 3, "per_min": 0.6}
    # enqueued for a minute ago, it is due, though no supervisor relabelled it pending
    assert overall["depth"]["scheduled"] == 1 and overall["depth"]["completed"] == 2
    assert 60 <= overall["oldest_waiting_age_s"] < 120
    assert sorted(report["queues"]) == ["default", "mail"]
    assert report["queues"]["mail"]["runs"]["dead"] == 1
    assert report["queues"]["default"]["duration_s"]["max"] == 4.0
    # --format json and the group's --json are the same contract
    again = json.loads(run_cli("--json", "metrics", "--queue", "mail", db=built).stdout)
    assert list(again["queues"]) == ["mail"] and again["overall"]["runs"]["dead"] == 1
    assert json.loads(run_cli("metrics", "--format", "json", "--since", "3m",
                              db=built).stdout)["overall"]["runs"]["completed"] == 0


def test_text_output(built: str) -> None:
    result = run_cli("metrics", "--since", "1h", db=built)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Runs: 2 completed, 0 failed (retried), 1 dead, 0 cancelled" in out
    assert "success rate 66.7%" in out
    assert "Run duration: p50 2.0s, p95 4.0s, p99 4.0s, max 4.0s" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines()[-2:]}
    assert lines["default"][1:4] == ["2", "0", "0"] and lines["mail"][3] == "1"


@pytest.mark.parametrize("args, message", [
    (["--since", "soon"], "invalid --since: 'soon'"),
    (["--since", "-5m"], "invalid --since"),
    (["--since", "0"], "the metrics window must be longer than 0 seconds"),
    (["--since", "99999999999999999999d"], "at most 3650 days"),
    (["--queue", "no spaces"], "invalid queue name 'no spaces'"),
    (["--format", "xml"], "Invalid value for '--format'"),
])
def test_bad_input_is_one_line_and_exit_2(built: str, args: list[str], message: str) -> None:
    result = run_cli("metrics", *args, db=built)
    assert result.returncode == 2
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_a_store_that_is_not_there_is_exit_3(tmp_path: Path) -> None:
    not_a_store = tmp_path / "notes.db"
    not_a_store.write_bytes(b"these are not the bytes of a database" * 100)
    before = not_a_store.read_bytes()
    for db in (str(not_a_store), "postgresql://postgres@127.0.0.1:1/none"):
        result = run_cli("metrics", db=db)
        assert result.returncode == 3, (db, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr
    assert not_a_store.read_bytes() == before


def test_prometheus_format_agrees_with_json(built: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    result = run_cli("metrics", "--format", "prometheus", db=built)
    assert result.returncode == 0, result.stderr
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for family in text_string_to_metric_families(result.stdout)
             for s in family.samples}
    report = json.loads(run_cli("metrics", "--json", db=built).stdout)
    for queue, figures in report["queues"].items():
        for outcome, n in figures["runs"].items():
            assert found[("queuectl_runs_total",
                          (("outcome", outcome), ("queue", queue)))] == n
        assert found[("queuectl_run_duration_seconds",
                      (("quantile", "0.95"), ("queue", queue)))] == \
            figures["duration_s"]["p95"]
    for state, n in report["overall"]["depth"].items():
        assert found[("queuectl_jobs", (("state", state),))] == n
    assert found[("queuectl_run_duration_seconds_sum", (("queue", "default"),))] == 6.0
    assert found[("queuectl_busy_slots", ())] == 0
