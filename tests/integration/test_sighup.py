"""SIGHUP (the terminal closed, or `kill -HUP`) stops a foreground worker gracefully:
its running job finishes and is recorded, and nothing is left running unsupervised."""

from __future__ import annotations

import json
import os
import signal
import uuid
from pathlib import Path
from typing import Any

from tests.conftest import wait_for
from tests.integration.conftest import process_running


def test_sighup_stops_a_foreground_worker_gracefully(cli: Any, q: Any, workers: Any,
                                                     tmp_path: Path) -> None:
    tag = f"{uuid.uuid4().int % 10**9:09d}"
    marker = tmp_path / "finished"
    command = f"sleep 2.{tag}; echo done > {marker}"
    assert cli("enqueue", "--id", "hup", "--command", command).returncode == 0
    proc = workers.start("--count", "1")
    wait_for(lambda: q("show", "hup")["state"] == "processing" and process_running(
        f"sleep 2.{tag}"), timeout=30, message="the job running")
    os.kill(proc.pid, signal.SIGHUP)
    assert proc.wait(timeout=30) == 0, workers.log(0)
    assert marker.read_text().strip() == "done"  # the job was let finish
    shown = q("show", "hup")
    assert shown["state"] == "completed", shown
    assert not process_running(f"sleep 2.{tag}")
    status = json.loads(cli("--json", "status").stdout)
    assert status["counts"]["processing"] == 0 and not status["workers"]
    assert "SIGHUP" in workers.log(0) or "hang" in workers.log(0).lower()


def test_a_detached_worker_ignores_sighup(cli: Any, q: Any, tmp_path: Path) -> None:
    result = cli("worker", "start", "--detach", "--count", "1")
    assert result.returncode == 0, result.stderr
    try:
        info = wait_for(lambda: _first_worker(cli), timeout=30,
                        message="the detached worker registered")
        os.kill(info["pid"], signal.SIGHUP)
        assert cli("enqueue", "--id", "after-hup", "--command", "true").returncode == 0
        wait_for(lambda: q("show", "after-hup")["state"] == "completed", timeout=30,
                 message="the detached worker still runs jobs after SIGHUP")
    finally:
        cli("worker", "stop")


def _first_worker(cli: Any) -> Any:
    listed = json.loads(cli("--json", "workers").stdout)["workers"]
    return listed[0] if listed else None
