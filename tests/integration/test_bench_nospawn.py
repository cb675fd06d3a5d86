"""benchmarks/nospawn.py, B9's instrument: the real supervisor records and claims every
job through its store path while no job process is started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from queuectl.models import NewJob
from queuectl.queue import Queue
from queuectl.states import JobState

ROOT = str(Path(__file__).resolve().parents[2])


def test_nospawn_worker_completes_jobs_without_running_them(db: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with Queue(db) as queue:
        queue.enqueue([NewJob(command=f"touch {marker}.{index}") for index in range(12)])
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.nospawn", "--db", db, "worker", "start",
         "--count", "4", "--burst"], capture_output=True, text=True, timeout=60, env=env,
        cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    with Queue(db) as queue:
        jobs = queue.backend.list_jobs(None, None, 50)
    assert len(jobs) == 12
    assert {job.state for job in jobs} == {JobState.COMPLETED}
    assert all(job.attempts == 1 and job.exit_code == 0 for job in jobs)
    assert not list(tmp_path.glob("ran.*"))  # recorded as run, never spawned
    assert "after 12 run(s)" in result.stderr
