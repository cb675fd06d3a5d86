"""The subprocess lifecycle: exit codes, capture, timeouts and kills of whole groups."""

from __future__ import annotations

import os
import threading
import time

from queuectl.runner import Run
from tests.conftest import wait_for


def run(command: str, tmp_path: object, **options: object) -> Run:
    handle = Run(command, output_path=os.path.join(str(tmp_path), "out.log"),
                 **options)  # type: ignore[arg-type]
    handle.start()
    return handle


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_exit_code_and_both_streams_captured(tmp_path: object) -> None:
    outcome = run("echo out; echo err >&2; exit 3", tmp_path).wait()
    assert outcome.exit_code == 3 and not outcome.ok
    assert outcome.output_tail == "out\nerr\n"
    assert outcome.reason() == "exit code 3: err"


def test_success_and_environment(tmp_path: object) -> None:
    outcome = run('printf "%s" "$QUEUECTL_TEST_VALUE"', tmp_path,
                  env={"QUEUECTL_TEST_VALUE": "héllo"}).wait()
    assert outcome.ok and outcome.output_tail == "héllo"


def test_output_tail_is_bounded(tmp_path: object) -> None:
    outcome = run("seq 1 20000", tmp_path, output_limit=100).wait()
    assert len(outcome.output_tail.encode()) <= 100
    assert outcome.output_tail.endswith("19999\n20000\n")


def test_command_not_found_is_exit_127_with_the_shell_message(tmp_path: object) -> None:
    outcome = run("no_such_command_xyz", tmp_path).wait()
    assert outcome.exit_code == 127
    assert "no_such_command_xyz: not found" in (outcome.reason() or "")


def test_missing_working_directory_is_a_spawn_failure(tmp_path: object) -> None:
    outcome = run("true", tmp_path, cwd=os.path.join(str(tmp_path), "nope")).wait()
    assert outcome.spawn_error and "does not exist" in outcome.spawn_error
    assert outcome.reason().startswith("spawn failed")  # type: ignore[union-attr]


def test_cwd(tmp_path: object) -> None:
    outcome = run("pwd", tmp_path, cwd=str(tmp_path)).wait()
    assert outcome.output_tail.strip() == os.path.realpath(str(tmp_path))


def test_timeout_kills_the_whole_group(tmp_path: object) -> None:
    marker = os.path.join(str(tmp_path), "grandchild.pid")
    started = time.monotonic()
    outcome = run(f"sleep 1000 & echo $! > {marker}; wait", tmp_path, timeout_s=0.5,
                  grace_s=0.5).wait()
    assert outcome.timed_out and outcome.reason() == "timeout"
    assert time.monotonic() - started < 5
    grandchild = int(open(marker).read())
    wait_for(lambda: not _alive(grandchild), timeout=5, message="grandchild killed")


def test_term_ignoring_job_is_killed_after_the_grace(tmp_path: object) -> None:
    started = time.monotonic()
    outcome = run("trap '' TERM; sleep 1000", tmp_path, timeout_s=0.3, grace_s=0.5).wait()
    assert outcome.timed_out and outcome.signal == 9
    assert time.monotonic() - started < 5


def test_kill_from_another_thread_cancels(tmp_path: object) -> None:
    handle = run("sleep 1000", tmp_path, grace_s=0.5)
    threading.Timer(0.2, handle.kill).start()
    outcome = handle.wait()
    assert outcome.cancelled and not outcome.timed_out
    assert not _alive(handle.pid or 0)


def test_non_blocking_check(tmp_path: object) -> None:
    handle = run("sleep 0.2", tmp_path)
    assert handle.fileno() >= 0
    assert handle.check() is None
    outcome = wait_for(handle.check, timeout=5, interval=0.01, message="exit")
    assert outcome.ok and handle.check() is outcome
