"""`logs -f` streams a running job's output live and ends with the job; `wait` blocks
until a running job ends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import wait_for


def test_logs_follow_streams_until_the_job_ends(cli: Any, q: Any, workers: Any,
                                                db: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate"  # the job goes on only once the test has seen "first"
    command = f"echo first; while [ ! -e {gate} ]; do sleep 0.05; done; echo second"
    assert cli("enqueue", "--id", "talky", "--command", command).returncode == 0
    workers.start("--count", "1")
    wait_for(lambda: q("show", "talky")["state"] == "processing", timeout=20,
             message="running")
    follower = subprocess.Popen([sys.executable, "-m", "queuectl", "--db", db, "logs", "-f",
                                 "talky"], stdout=subprocess.PIPE, text=True)
    try:
        first_line = follower.stdout.readline()  # type: ignore[union-attr]
        assert first_line.strip() == "first"
        # it arrived while the job still ran: the job waits for the gate
        assert q("show", "talky")["state"] == "processing"
        gate.touch()
        rest, _ = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0
    assert rest.strip().splitlines() == ["second"]
    assert q("show", "talky")["state"] == "completed"


def test_wait_blocks_until_a_running_job_ends(cli: Any, q: Any, workers: Any) -> None:
    assert cli("enqueue", "--id", "w1", "--command", "sleep 1").returncode == 0
    workers.start("--count", "1")
    result = cli("wait", "w1", "--timeout", "30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "w1: completed"
    assert q("show", "w1")["state"] == "completed"
