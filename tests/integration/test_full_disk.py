"""A full disk under a running SQLite worker: a stop request says what it waits for,
and results that cannot be recorded before the worker must exit are kept and recorded
by the next worker on this host (the jobs do not run again as "worker lost")."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import run_cli, wait_for
from tests.integration.conftest import Workers


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs of its own, so that it can be filled without filling the machine."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path) -> Path:
    filler = mount / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    return filler


def show(db: str, job_id: str) -> dict:
    return json.loads(run_cli("--json", "show", job_id, db=db).stdout)


def start_job(db: str, tmp_path: Path, workers: Workers) -> Path:
    runs = tmp_path / "runs"
    command = f"echo run >> {runs}; sleep 1.5"
    assert run_cli("enqueue", "--id", "j1", "--command", command, db=db).returncode == 0
    proc = workers.start("--count", "1")
    wait_for(lambda: runs.exists(), timeout=20, message="the job started")
    assert proc.poll() is None
    return runs


def stop_on_a_full_disk(db: str, disk: Path, tmp_path: Path, workers: Workers
                        ) -> tuple[Path, Path, subprocess.Popen[bytes]]:
    """A job runs, the disk fills up, its result cannot be recorded, and a stop
    request comes: the worker says what the stop waits for."""
    runs = start_job(db, tmp_path, workers)
    filler = fill(disk)
    proc = workers.procs[0]
    wait_for(lambda: "retrying" in workers.log(0), timeout=20,
             message="the worker failing to record the result")
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "cannot be recorded" in workers.log(0), timeout=20,
             message="the worker saying what its stop waits for")
    return runs, filler, proc


def test_results_kept_through_a_forced_stop_are_recorded_by_the_next_worker(
        disk: Path, tmp_path: Path) -> None:
    db = str(disk / "q.db")
    workers = Workers(db, str(tmp_path))
    try:
        runs, filler, proc = stop_on_a_full_disk(db, disk, tmp_path, workers)
        assert proc.poll() is None  # it does not exit with a result unrecorded
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0, workers.log(0)
        assert "kept 1 result(s)" in workers.log(0), workers.log(0)
        filler.unlink()  # space is back
        later = workers.start("--burst")
        assert later.wait(timeout=40) == 0, workers.log(1)
    finally:
        workers.cleanup()
    job = show(db, "j1")
    assert job["state"] == "completed", job
    assert job["attempts"] == 1
    assert runs.read_text().splitlines() == ["run"]  # it ran once
    assert not any(entry.get("event") == "worker lost" for entry in job["history"]), job
    assert "Traceback" not in workers.log(0) + workers.log(1)


def test_a_stop_waits_for_space_and_records_the_result(disk: Path,
                                                       tmp_path: Path) -> None:
    db = str(disk / "q.db")
    workers = Workers(db, str(tmp_path))
    try:
        runs, filler, proc = stop_on_a_full_disk(db, disk, tmp_path, workers)
        os.unlink(filler)
        assert proc.wait(timeout=40) == 0, workers.log(0)
    finally:
        workers.cleanup()
    job = show(db, "j1")
    assert job["state"] == "completed" and job["attempts"] == 1, job
    assert runs.read_text().splitlines() == ["run"]
