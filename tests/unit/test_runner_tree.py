"""Nothing a run starts outlives it: background processes of a command that exited,
`setsid` children of one that timed out or was cancelled, and the in-memory capture they
write to.  With a cgroup per run (where the system allows it) and without one
(QUEUECTL_NO_CGROUP=1): the process group and the descendants found through /proc."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from queuectl.worker import capture, cgroup
from queuectl.worker.runner import Run
from tests.conftest import pid_alive, pid_in, wait_for


@pytest.fixture(params=["cgroup", "no-cgroup"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "cgroup":
        if cgroup.pool() is None:
            pytest.skip("no writable cgroup v2 hierarchy with cgroup.kill here")
    else:
        monkeypatch.setenv(cgroup.DISABLE_ENV, "1")
    return str(request.param)




def _start(command: str, tmp_path: Path, **options: object) -> Run:
    options.setdefault("output_path", str(tmp_path / "out.log"))
    run = Run(command, grace_s=0.5, **options)  # type: ignore[arg-type]
    run.start()
    return run


def test_a_background_process_of_a_completed_run_is_killed(
        mode: str, tmp_path: Path, pids: list[int],
        caplog: pytest.LogCaptureFixture) -> None:
    marker = tmp_path / "bg.pid"
    run = _start(f"sleep 1000 & echo $! > {marker}; exit 0", tmp_path)
    pids.append(pid_in(marker))
    outcome = run.wait()
    assert outcome.ok and not outcome.cancelled and not outcome.timed_out  # it stands
    wait_for(lambda: not pid_alive(pids[0]), timeout=5, message="the background sleep gone")
    assert any("exited leaving" in record.getMessage() for record in caplog.records)


def test_a_setsid_child_is_killed_on_timeout(mode: str, tmp_path: Path,
                                             pids: list[int]) -> None:
    marker = tmp_path / "daemon.pid"
    run = _start(f"setsid sleep 1000 & echo $! > {marker}; sleep 1000", tmp_path,
                 timeout_s=1)
    pids.append(pid_in(marker))
    assert pid_alive(pids[0])
    outcome = run.wait()
    assert outcome.timed_out
    wait_for(lambda: not pid_alive(pids[0]), timeout=5, message="the setsid'd sleep gone")


def test_a_setsid_child_is_killed_on_cancel(mode: str, tmp_path: Path,
                                            pids: list[int]) -> None:
    marker = tmp_path / "daemon.pid"
    run = _start(f"setsid sleep 1000 & echo $! > {marker}; sleep 1000", tmp_path)
    pids.append(pid_in(marker))
    threading.Thread(target=run.kill).start()
    outcome = run.wait()
    assert outcome.cancelled
    wait_for(lambda: not pid_alive(pids[0]), timeout=5, message="the setsid'd sleep gone")


def test_a_setsid_child_is_killed_by_kill_now(mode: str, tmp_path: Path,
                                              pids: list[int]) -> None:
    marker = tmp_path / "daemon.pid"
    run = _start(f"setsid sleep 1000 & echo $! > {marker}; sleep 1000",
                 tmp_path)
    pids.append(pid_in(marker))
    run.kill_now()
    assert run.wait().cancelled
    wait_for(lambda: not pid_alive(pids[0]), timeout=5, message="the setsid'd sleep gone")


def test_a_double_forked_daemon_is_killed_with_a_cgroup_only(
        mode: str, tmp_path: Path, pids: list[int]) -> None:
    """The documented limit of the fallback: a daemon that left the job's session
    and whose parent exited is no descendant of the job any more."""
    marker = tmp_path / "daemon.pid"
    run = _start(f"sh -c 'setsid sleep 1000 & echo $! > {marker}'; sleep 1000", tmp_path,
                 timeout_s=1)
    pids.append(pid_in(marker))
    assert run.wait().timed_out
    if mode == "cgroup":
        wait_for(lambda: not pid_alive(pids[0]), timeout=5, message="the daemon gone")
    else:
        time.sleep(0.2)  # what the kill would have done, it has done by now
        assert pid_alive(pids[0]), "expected to escape without a cgroup"


def test_without_cgroup_a_timeout_still_kills_the_process_group(
        tmp_path: Path, pids: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cgroup.DISABLE_ENV, "1")
    marker = tmp_path / "bg.pid"
    run = _start(f"cat /proc/self/cgroup; sleep 1000 & echo $! > {marker}; sleep 1000",
                 tmp_path, timeout_s=0.5)
    pids.append(pid_in(marker))
    outcome = run.wait()
    assert outcome.timed_out
    with open("/proc/self/cgroup") as own:
        assert outcome.output_tail.startswith(own.read())  # no cgroup of its own
    wait_for(lambda: not pid_alive(pids[0]), timeout=5, message="the group's sleep gone")


def test_with_cgroup_a_run_has_a_group_of_its_own_reused_once_empty(
        tmp_path: Path) -> None:
    if cgroup.pool() is None:
        pytest.skip("no writable cgroup v2 hierarchy with cgroup.kill here")
    with open("/proc/self/cgroup") as own:
        mine = own.read()
    first = _start("cat /proc/self/cgroup", tmp_path).wait().output_tail
    assert first != mine and "/queuectl-" in first
    second = _start("cat /proc/self/cgroup", tmp_path).wait().output_tail
    assert second == first  # the empty group was given back and reused


def test_a_background_writer_does_not_keep_the_capture(mode: str, tmp_path: Path,
                                                       pids: list[int]) -> None:
    """A leftover that keeps printing held the run's memfd (and all it wrote: nothing
    trims a capture once its run has ended)."""
    if not capture.MEMFD:
        pytest.skip("no memfd_create here")
    job_id = f"writer-{uuid.uuid4().hex[:12]}"
    marker = tmp_path / "yes.pid"
    run = Run(f"yes & echo $! > {marker}; sleep 0.2; exit 0", capture_id=job_id)
    run.start()
    pids.append(pid_in(marker))
    outcome = run.wait()
    assert outcome.ok and outcome.output_tail.endswith("y\n")
    wait_for(lambda: not _memfd_holders(job_id) and not pid_alive(pids[0]), timeout=5,
             message="no process holding the run's capture")


def _memfd_holders(job_id: str) -> list[int]:
    """Processes with the job's capture open."""
    wanted = f"/memfd:queuectl:{capture.capture_name(job_id)} (deleted)"
    holders = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{entry}/fd/{fd}") == wanted:
                    holders.append(int(entry))
                    break
            except OSError:
                continue
    return holders


def test_empty_groups_of_a_dead_supervisor_are_removed_not_busy_ones() -> None:
    """A SIGKILLed supervisor leaves its folder behind; the next one removes it once
    its processes are gone (and never touches a live supervisor's)."""
    if cgroup.pool() is None:
        pytest.skip("no writable cgroup v2 hierarchy with cgroup.kill here")
    import subprocess

    here = cgroup.own_cgroup_dir()
    assert here is not None
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"{here}/queuectl-{dead.pid}"
    os.makedirs(f"{stale}/1")
    busy = f"{here}/queuectl-{os.getpid()}/stale-test"  # a live owner's
    os.makedirs(busy)
    try:
        cgroup._remove_stale(here)
        assert not os.path.exists(stale) and os.path.isdir(busy)
    finally:
        os.rmdir(busy)
        for folder in (f"{stale}/1", stale):
            if os.path.isdir(folder):
                os.rmdir(folder)
