"""Liveness of worker processes on this host."""

from __future__ import annotations

import os
import subprocess

from queuectl.maintenance import pid_alive
from tests.conftest import wait_for


def test_running_process_is_alive() -> None:
    assert pid_alive(os.getpid())


def test_exited_but_unreaped_process_is_not_alive() -> None:
    """A SIGKILLed detached supervisor whose parent (often PID 1 in a container)
    does not reap it stays a zombie: kill(pid, 0) still succeeds, yet it is dead."""
    child = subprocess.Popen(["true"])
    # wait for the exit without reaping it (WNOWAIT leaves the zombie in place)
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    try:
        os.kill(child.pid, 0)  # the zombie still "exists"
        assert not pid_alive(child.pid)
    finally:
        child.wait()
    wait_for(lambda: not pid_alive(child.pid), timeout=5, message="reaped")
