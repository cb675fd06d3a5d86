"""A job's whole process tree ends with it, in a real supervisor: a background process
of a job that completed, a `setsid` child of one that timed out or was cancelled, and the
in-memory capture a leftover writer would keep growing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from queuectl.worker import capture, cgroup
from tests.conftest import pid_alive, pid_in, wait_for


@pytest.fixture(params=["cgroup", "no-cgroup"])
def worker_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "cgroup":
        if cgroup.pool() is None:
            pytest.skip("no writable cgroup v2 hierarchy with cgroup.kill here")
        return {}
    return {cgroup.DISABLE_ENV: "1"}


def test_a_completed_jobs_background_process_is_killed(
        cli: Any, q: Any, workers: Any, tmp_path: Path, pids: list[int],
        worker_env: dict[str, str]) -> None:
    marker = tmp_path / "bg.pid"
    assert cli("enqueue", "--id", "bg", "--command",
               f"sleep 1000 & echo $! > {marker}; exit 0").returncode == 0
    assert workers.start("--count", "1", "--burst", env=worker_env).wait(timeout=60) == 0
    pids.append(pid_in(marker))
    shown = q("show", "bg")
    assert shown["state"] == "completed" and shown["exit_code"] == 0  # its result stands
    wait_for(lambda: not pid_alive(pids[0]), timeout=10, message="the background sleep gone")
    assert "job bg: its command exited leaving" in workers.log(0)


def test_a_timed_out_jobs_setsid_child_is_killed(
        cli: Any, q: Any, workers: Any, tmp_path: Path, pids: list[int],
        worker_env: dict[str, str]) -> None:
    marker = tmp_path / "daemon.pid"
    assert cli("enqueue", "--id", "slow", "--timeout", "1", "--max-retries", "0",
               "--command", f"setsid sleep 1000 & echo $! > {marker}; sleep 1000"
               ).returncode == 0
    workers.start("--count", "1", "--burst", env=worker_env)
    pids.append(pid_in(marker))
    assert workers.procs[0].wait(timeout=60) == 0
    shown = q("show", "slow")
    assert shown["state"] == "dead" and shown["error"] == "timeout"
    wait_for(lambda: not pid_alive(pids[0]), timeout=10, message="the setsid'd sleep gone")


def test_a_cancelled_jobs_setsid_child_is_killed(
        cli: Any, q: Any, workers: Any, tmp_path: Path, pids: list[int],
        worker_env: dict[str, str]) -> None:
    marker = tmp_path / "daemon.pid"
    assert cli("enqueue", "--id", "long", "--command",
               f"setsid sleep 1000 & echo $! > {marker}; sleep 1000").returncode == 0
    workers.start("--count", "1", env=worker_env)
    pids.append(pid_in(marker))
    assert cli("cancel", "long").returncode == 0
    wait_for(lambda: not pid_alive(pids[0]), timeout=10, message="the setsid'd sleep gone")
    wait_for(lambda: q("show", "long")["state"] == "cancelled", timeout=10,
             message="cancelled")


@pytest.mark.skipif(not capture.MEMFD, reason="no memfd_create here")
def test_a_leftover_writer_does_not_keep_the_jobs_capture(
        cli: Any, q: Any, workers: Any, tmp_path: Path, pids: list[int],
        worker_env: dict[str, str]) -> None:
    """`yes` left behind kept writing into the job's memfd, which nothing trims once
    the run has ended: hundreds of MiB held by a job that had completed."""
    marker = tmp_path / "yes.pid"
    assert cli("enqueue", "--id", "writer", "--command",
               f"yes & echo $! > {marker}; sleep 0.3; exit 0").returncode == 0
    worker = workers.start("--count", "1", env=worker_env)
    pids.append(pid_in(marker))
    wait_for(lambda: q("show", "writer")["state"] == "completed", timeout=20,
             message="completed")
    wanted = f"/memfd:queuectl:{capture.capture_name('writer')} (deleted)"
    wait_for(lambda: not pid_alive(pids[0]) and not _holders(wanted), timeout=10,
             message="no process left holding the job's capture")
    assert _rss_kib(worker.pid) < 200 * 1024  # the supervisor holds no flood either


def _holders(link: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
            if any(_readlink(f"/proc/{entry}/fd/{fd}") == link for fd in fds):
                found.append(int(entry))
        except OSError:
            continue
    return found


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
