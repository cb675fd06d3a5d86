"""`logs -f` follows a job that runs on another host: its worker publishes the run's
output through the store (hosts told apart by QUEUECTL_HOST_ID, so the follower cannot
reach the worker's in-memory capture)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import wait_for


def test_logs_follow_streams_a_job_running_on_another_host(cli: Any, q: Any, workers: Any,
                                                           db: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate"  # the job goes on only once the test has seen "first"
    command = (f"echo first; while [ ! -e {gate} ]; do sleep 0.05; done; echo second; "
               "sleep 0.5; echo third")
    assert cli("enqueue", "--id", "remote", "--command", command).returncode == 0
    workers.start("--count", "1", env={"QUEUECTL_HOST_ID": "host-a"})
    wait_for(lambda: q("show", "remote")["state"] == "processing", timeout=20,
             message="running on host-a")
    follower = subprocess.Popen(
        [sys.executable, "-m", "queuectl", "--db", db, "logs", "-f", "remote"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "QUEUECTL_HOST_ID": "host-b"})
    try:
        first_line = follower.stdout.readline()  # type: ignore[union-attr]
        assert first_line == "first\n"
        # it arrived while the job still ran: the job waits for the gate
        assert q("show", "remote")["state"] == "processing"
        gate.touch()
        rest, said = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, said
    assert rest == "second\nthird\n"
    assert q("show", "remote")["state"] == "completed"
