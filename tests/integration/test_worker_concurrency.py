"""Many supervisors on one store: every job runs exactly once, even under SIGKILL."""

from __future__ import annotations

import collections
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from tests.conftest import run_cli, wait_for


def _enqueue_appenders(db: str, tmp_path: Path, count: int, out: Path,
                       command: str = "echo $QUEUECTL_JOB_ID >> {out}") -> list[str]:
    ids = [f"job-{i:05d}" for i in range(count)]
    batch = tmp_path / "jobs.jsonl"
    batch.write_text("".join(
        json.dumps({"id": job_id, "command": command.format(out=out)}) + "\n"
        for job_id in ids))
    result = run_cli("enqueue", "--file", str(batch), db=db)
    assert result.returncode == 0, result.stderr
    return ids


def _runs(out: Path) -> collections.Counter[str]:
    return collections.Counter(out.read_text().split()) if out.exists() else collections.Counter()


def test_four_supervisors_run_each_job_exactly_once(workers: Any, q: Any,
                                                    tmp_path: Path) -> None:
    out = tmp_path / "ran"
    ids = _enqueue_appenders(workers.db, tmp_path, 2000, out)
    procs = [workers.start("--count", "4", "--burst") for _ in range(4)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0
    runs = _runs(out)
    assert set(runs) == set(ids)
    assert max(runs.values()) == 1, [k for k, v in runs.items() if v > 1][:5]
    assert q("status")["counts"]["completed"] == 2000


def test_sigkilled_supervisors_lose_no_job(workers: Any, q: Any, tmp_path: Path) -> None:
    out = tmp_path / "ran"
    ids = _enqueue_appenders(workers.db, tmp_path, 1000, out,
                             command="sleep 0.01; echo $QUEUECTL_JOB_ID >> {out}")
    deadline = time.monotonic() + 240
    kills = 0
    while time.monotonic() < deadline:
        proc = workers.start("--count", "4")
        # let it get going, then kill it mid-work
        wait_for(lambda proc=proc: len(_runs(out)) > 0 or proc.poll() is not None, timeout=30,
                 message="progress")
        time.sleep(0.3)  # chaos: kill at an arbitrary point while jobs run
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        kills += 1
        counts = q("status")["counts"]
        if kills >= 5 or counts["completed"] == 1000:
            break
    assert kills >= 3
    final = workers.start("--count", "4", "--burst")
    assert final.wait(timeout=240) == 0
    counts = q("status")["counts"]
    assert counts["completed"] == 1000, counts
    runs = _runs(out)
    assert set(runs) == set(ids)
    twice = [job_id for job_id, n in runs.items() if n > 1]
    for job_id in twice:
        history = q("show", job_id)["history"]
        assert any(h.get("event") == "worker lost" for h in history), (job_id, history)
    lost = [j for j in q("list", "--limit", "2000")
            if any(h.get("event") == "worker lost" for h in j["history"])]
    assert lost, "SIGKILL mid-work should have left jobs to rescue"
    assert run_cli("worker", "status", db=workers.db).returncode == 0
