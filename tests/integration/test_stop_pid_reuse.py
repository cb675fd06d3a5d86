"""`worker stop` signals local supervisors by pid, but never a newer process that
happens to have a dead supervisor's pid."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from queuectl.maintenance import started_by, this_host
from queuectl.models import WorkerInfo
from queuectl.queue import Queue


def _register(queue: Queue, worker_id: str, pid: int, started_at: float) -> None:
    queue.backend.register_worker(WorkerInfo(
        id=worker_id, host=this_host(), pid=pid, slots=1, queues=[],
        started_at=started_at, heartbeat_at=time.time()))


def test_started_by_tells_a_newer_process() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        now = time.time()
        assert started_by(child.pid, now)  # registered after it started: the same
        assert not started_by(child.pid, now - 3600)  # started after: a reused pid
    finally:
        child.kill()
        child.wait()


def test_stop_leaves_a_reused_pid_alone(sqlite_url: str) -> None:
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        with Queue(sqlite_url) as queue:
            # a registration from an hour ago whose pid now belongs to `stranger`
            _register(queue, "old", stranger.pid, time.time() - 3600)
            report = queue.stop_workers()
        assert report.requested == 1 and report.signalled == []
        assert stranger.poll() is None  # not signalled
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.parametrize("now_mode, signum", [(False, signal.SIGUSR1),
                                              (True, signal.SIGTERM)])
def test_stop_signals_the_registered_process(sqlite_url: str, now_mode: bool,
                                             signum: int) -> None:
    """A graceful stop is SIGUSR1 ("a stop is requested"), never counted as a second
    signal; --now is SIGTERM (with the store flag)."""
    worker = subprocess.Popen(["sleep", "30"])
    try:
        with Queue(sqlite_url) as queue:
            _register(queue, "w", worker.pid, time.time())
            report = queue.stop_workers(now_mode=now_mode)
        assert report.signalled == [worker.pid]
        assert worker.wait(timeout=10) == -signum
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
