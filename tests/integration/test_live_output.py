"""A running job's output: readable live by `logs` from another process, held in
memory that stays bounded however much the job prints, and left nowhere on disk."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from queuectl.queue import Queue
from queuectl.worker import capture
from tests.conftest import wait_for

pytestmark = pytest.mark.skipif(not capture.MEMFD, reason="no memfd_create here")

PRINTED = 40 << 20  # far beyond what a capture keeps


def _held_by_worker(q: Any, job_id: str) -> int:
    """Bytes of memory the running job's capture holds, seen from outside."""
    from queuectl.maintenance import this_host

    job = q("show", job_id)
    handle = capture.open_live(job["worker"], job_id, this_host())
    if handle is None:
        return -1
    with handle:
        return os.fstat(handle.fileno()).st_blocks * 512


def test_a_chatty_job_holds_bounded_memory_and_logs_shows_its_end(
        cli: Any, q: Any, workers: Any, db: str, tmp_path: Path) -> None:
    flag = tmp_path / "go-on"
    command = (f"head -c {PRINTED} /dev/zero | tr '\\0' a; echo END; "
               f"while [ ! -e {flag} ]; do sleep 0.02; done; echo done")
    assert cli("enqueue", "--id", "chatty", "--command", command).returncode == 0
    workers.start("--count", "1")
    wait_for(lambda: 0 <= _held_by_worker(q, "chatty")
             <= capture.KEEP_BYTES + capture.TRIM_AT_BYTES
             and cli("logs", "chatty").stdout.endswith("END\n"), timeout=20,
             message="the capture trimmed after the job printed")
    shown = cli("--json", "logs", "chatty")
    live = json.loads(shown.stdout)
    assert live["live"] is True and live["state"] == "processing"
    assert live["output"].endswith("a" * 100 + "END\n")
    assert capture.KEEP_BYTES <= len(live["output"]) < PRINTED
    assert set(live["output"][:-4]) == {"a"}  # nothing released reads back as NULs
    with Queue(db) as queue:
        assert not os.path.exists(queue.job_log_path("chatty"))  # nothing on disk
    flag.touch()
    wait_for(lambda: q("show", "chatty")["state"] == "completed", timeout=20,
             message="completed")
    assert cli("logs", "chatty").stdout.endswith("aaaEND\ndone\n")


def test_logs_of_an_endless_fast_printer_is_prompt_bounded_and_clean(
        cli: Any, q: Any, workers: Any) -> None:
    assert cli("enqueue", "--id", "endless", "--command", "yes 0123456789").returncode == 0
    workers.start("--count", "1")
    wait_for(lambda: q("show", "endless")["state"] == "processing", timeout=20,
             message="running")
    for _ in range(3):
        shown = cli("logs", "endless")  # run_cli gives up (fails) after its timeout
        assert shown.returncode == 0
        assert len(shown.stdout) <= capture.KEEP_BYTES + capture.TRIM_AT_BYTES
        assert "\0" not in shown.stdout
        assert set(shown.stdout.splitlines()[1:-1]) <= {"0123456789"}
    assert cli("cancel", "endless").returncode == 0


def test_logs_follow_moves_to_the_run_that_replaces_a_lost_one(
        cli: Any, q: Any, workers: Any, db: str) -> None:
    command = ('for i in 1 2 3 4 5 6; do echo "attempt $QUEUECTL_JOB_ATTEMPT tick $i"; '
               "sleep 0.4; done")
    assert cli("enqueue", "--id", "moved", "--command", command).returncode == 0
    first = workers.start("--count", "1")
    wait_for(lambda: q("show", "moved")["state"] == "processing", timeout=20,
             message="first run")
    follower = subprocess.Popen([sys.executable, "-m", "queuectl", "--db", db, "logs", "-f",
                                 "moved"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    try:
        assert follower.stdout.readline() == "attempt 1 tick 1\n"  # type: ignore[union-attr]
        os.kill(first.pid, signal.SIGKILL)  # its run is lost; another worker takes over
        first.wait(timeout=10)
        second = workers.start("--count", "1", "--burst")
        rest, said = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0
    assert q("show", "moved")["state"] == "completed"
    assert rest.splitlines()[-6:] == [f"attempt 2 tick {i}" for i in range(1, 7)]
    assert f"queuectl: attempt 2 of moved runs on {socket.gethostname()}:{second.pid}/1" \
        in said.splitlines()


def test_logs_follow_says_when_the_worker_of_the_job_is_gone(
        cli: Any, q: Any, workers: Any, db: str) -> None:
    assert cli("enqueue", "--id", "orphan", "--command", "echo begun; sleep 9.7").returncode == 0
    first = workers.start("--count", "1")
    wait_for(lambda: q("show", "orphan")["state"] == "processing", timeout=20,
             message="running")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    follower = subprocess.Popen([sys.executable, "-m", "queuectl", "--db", db, "logs", "-f",
                                 "orphan"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    try:
        ready, _, _ = select.select([follower.stderr], [], [], 20)
        assert ready, "no word about the lost worker"
        line = follower.stderr.readline()  # type: ignore[union-attr]
        assert "orphan" in line and "is gone" in line and "queuectl cleanup" in line
        assert follower.poll() is None  # still following: a rescue will run it again
    finally:
        follower.kill()
        follower.communicate(timeout=10)
    assert cli("cleanup").returncode == 0  # the lost run is killed and the job requeued
    assert q("show", "orphan")["state"] == "pending"
