"""A PostgreSQL crash (`pg_ctl -m immediate`, no shutdown checkpoint) never makes one
job run on two workers at once, and every re-run is in the job's history.  The test
starts its own throwaway server (initdb into a temp dir, a free port); never the
shared one."""

from __future__ import annotations

import collections
import json
from pathlib import Path

from tests.conftest import run_cli, wait_for
from tests.integration.conftest import Workers
from tests.integration.test_pg_restart import BIN, Server, server  # noqa: F401

JOBS = 80
ROUNDS = 5


def crash(srv: Server) -> None:
    """Kill the server as a power cut would leave it: nothing flushed at the end."""
    srv._as_postgres([f"{BIN[-1]}/pg_ctl", "-D", srv.data, "-w", "-m", "immediate",
                      "stop"])


def _runs(log: Path) -> dict[str, list[dict[str, float]]]:
    """Each job's runs from the lines its command appended: start and end stamps."""
    runs: dict[str, list[dict[str, float]]] = collections.defaultdict(list)
    by_pid: dict[str, dict[str, float]] = {}
    for line in log.read_text().splitlines():
        what, job_id, pid, stamp = line.split()
        if what == "start":
            run = {"start": float(stamp), "end": float("inf")}
            runs[job_id].append(run)
            by_pid[pid] = run
        else:
            by_pid[pid]["end"] = float(stamp)
    return runs


def _recorded_runs(history: list[dict]) -> int:
    """History entries that stand for a run: a result, or a run given back (requeued,
    rescued from a lost worker, a lost claim)."""
    return sum(1 for h in history if h.get("result") or h.get("event"))


def test_no_job_runs_twice_at_once_across_server_crashes(server: Server,  # noqa: F811
                                                         tmp_path: Path) -> None:
    db = server.url
    log = tmp_path / "runs"
    batch = tmp_path / "jobs.jsonl"
    stamp = 'date +%s.%N'
    batch.write_text("".join(json.dumps({
        "id": f"c{i:03d}",
        "command": f'echo "start $QUEUECTL_JOB_ID $$ $({stamp})" >> {log}; sleep 1; '
                   f'echo "end $QUEUECTL_JOB_ID $$ $({stamp})" >> {log}'}) + "\n"
        for i in range(JOBS)))
    assert run_cli("enqueue", "--file", str(batch), db=db).returncode == 0
    pool = Workers(db, str(tmp_path))
    try:
        for _ in range(4):
            pool.start("--count", "2")
        wait_for(lambda: log.exists() and log.read_text().count("start") >= 8, timeout=60,
                 message="jobs running before the first crash")
        for _ in range(ROUNDS):
            started = log.read_text().count("start")
            wait_for(lambda n=started: log.read_text().count("start") > n, timeout=30,
                     interval=0.02, message="a claim just before the crash")
            crash(server)
            server.start()
        wait_for(lambda: _completed(db) == JOBS, timeout=180, interval=0.5,
                 message="every job recorded completed")
        assert run_cli("worker", "stop", db=db).returncode == 0
    finally:
        pool.cleanup()
    runs = _runs(log)
    assert set(runs) == {f"c{i:03d}" for i in range(JOBS)}
    overlapping = []
    for job_id, job_runs in runs.items():
        ordered = sorted(job_runs, key=lambda r: r["start"])
        for first, second in zip(ordered, ordered[1:]):
            if second["start"] < first["end"]:
                overlapping.append(job_id)
    assert not overlapping, f"jobs with two runs alive at once: {overlapping}"
    unrecorded = []
    for job_id, job_runs in runs.items():
        shown = json.loads(run_cli("--json", "show", job_id, db=db).stdout)
        if _recorded_runs(shown["history"]) < len(job_runs):
            unrecorded.append((job_id, len(job_runs), shown["history"]))
    assert not unrecorded, f"runs missing from the history: {unrecorded}"


def _completed(db: str) -> int:
    result = run_cli("--json", "status", db=db)
    if result.returncode != 0:
        return -1
    return int(json.loads(result.stdout)["counts"]["completed"])
