"""The subprocess lifecycle: exit codes, capture, timeouts and kills of whole groups."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from queuectl.models import Outcome
from queuectl.worker.runner import Run
from tests.conftest import wait_for


def make(command: str, tmp_path: Path, **options: object) -> Run:
    options.setdefault("output_path", str(tmp_path / "out.log"))
    return Run(command, **options)  # type: ignore[arg-type]


def run(command: str, tmp_path: Path, **options: object) -> Run:
    handle = make(command, tmp_path, **options)
    handle.start()
    return handle


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (os.kill(pid, 0) alone also
    succeeds for a zombie that nobody reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _pgrep(pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


@pytest.fixture
def token() -> Iterator[str]:
    """A unique `sleep` argument so pgrep finds only this test's processes; anything
    left behind is killed after the test (and the test has already failed)."""
    value = f"1000.{uuid.uuid4().int % 10**9:09d}"
    yield value
    for pid in _pgrep(f"sleep {value}"):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _gone(token: str) -> bool:
    return not _pgrep(f"sleep {token}")


# -- exit codes and capture ---------------------------------------------------------

@pytest.mark.parametrize("code", [0, 1, 2, 3, 42, 255])
def test_exit_codes(code: int, tmp_path: Path) -> None:
    outcome = run(f"exit {code}", tmp_path).wait()
    assert outcome.exit_code == code and outcome.signal is None
    assert outcome.ok is (code == 0)
    assert not outcome.timed_out and not outcome.cancelled and outcome.spawn_error is None
    assert outcome.reason() == (None if code == 0 else f"exit code {code}")


def test_exit_code_and_both_streams_captured(tmp_path: Path) -> None:
    outcome = run("echo out; echo err >&2; exit 3", tmp_path).wait()
    assert outcome.exit_code == 3 and not outcome.ok
    assert outcome.output_tail == "out\nerr\n"
    assert outcome.reason() == "exit code 3: err"
    assert (tmp_path / "out.log").read_text() == "out\nerr\n"


def test_stderr_only_failure_reason_is_its_last_line(tmp_path: Path) -> None:
    outcome = run("echo 'step 1' >&2; echo 'disk full' >&2; exit 1", tmp_path).wait()
    assert outcome.reason() == "exit code 1: disk full"
    assert (tmp_path / "out.log").read_text() == "step 1\ndisk full\n"


def test_killed_by_a_signal(tmp_path: Path) -> None:
    outcome = run("echo dying; kill -KILL $$", tmp_path).wait()
    assert outcome.exit_code is None and outcome.signal == 9 and not outcome.ok
    assert not outcome.timed_out and not outcome.cancelled
    assert outcome.reason() == "killed by signal 9: dying"


def test_times_are_recorded(tmp_path: Path) -> None:
    before = time.time()
    outcome = run("true", tmp_path).wait()
    assert before <= outcome.started_at <= outcome.finished_at <= time.time()
    assert outcome.duration == outcome.finished_at - outcome.started_at


def test_stdin_is_empty(tmp_path: Path) -> None:
    outcome = run("cat; echo end", tmp_path).wait()  # would hang on a terminal stdin
    assert outcome.ok and outcome.output_tail == "end\n"


def test_output_is_written_to_the_file_while_the_job_runs(tmp_path: Path,
                                                          token: str) -> None:
    handle = run(f"echo first; exec sleep {token}", tmp_path, grace_s=0.5)
    log = tmp_path / "out.log"
    wait_for(lambda: log.read_text() == "first\n", timeout=5, message="live output")
    assert handle.check() is None  # still running
    handle.kill()
    assert handle.wait().cancelled


def test_output_file_is_fresh_for_each_run_and_its_folder_is_made(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "deep" / "job.log"
    run("echo one", tmp_path, output_path=str(path)).wait()
    assert path.read_text() == "one\n"
    outcome = run("echo two", tmp_path, output_path=str(path)).wait()
    assert path.read_text() == "two\n" and outcome.output_tail == "two\n"


def test_output_tail_is_bounded(tmp_path: Path) -> None:
    outcome = run("seq 1 20000", tmp_path, output_limit=100).wait()
    # the last 100 bytes, from the first line that starts in them
    assert 100 - 6 <= len(outcome.output_tail.encode()) <= 100
    assert outcome.output_tail.startswith("19") and outcome.output_tail[-7:] == "\n20000\n"
    assert outcome.output_bytes == len("".join(f"{i}\n" for i in range(1, 20001)))
    assert outcome.output_dropped == outcome.output_bytes - len(outcome.output_tail)
    assert outcome.output_file is None
    # the file keeps everything; only the tail in the outcome is bounded
    full = (tmp_path / "out.log").read_text()
    assert full.startswith("1\n2\n3\n") and full.endswith("\n20000\n")
    assert full.endswith(outcome.output_tail)


def test_output_tail_shorter_than_the_limit_is_whole(tmp_path: Path) -> None:
    outcome = run("printf abc", tmp_path, output_limit=100).wait()
    assert outcome.output_tail == "abc"


def test_output_limit_zero_keeps_no_tail(tmp_path: Path) -> None:
    outcome = run("echo hidden; exit 4", tmp_path, output_limit=0).wait()
    assert outcome.output_tail == "" and outcome.reason() == "exit code 4"
    assert (tmp_path / "out.log").read_text() == "hidden\n"


def test_tail_cut_inside_a_character_does_not_raise(tmp_path: Path) -> None:
    outcome = run("printf 'ééé'", tmp_path, output_limit=3).wait()  # 6 bytes
    assert outcome.output_tail.endswith("é") and len(outcome.output_tail) == 2


def test_no_output(tmp_path: Path) -> None:
    outcome = run("exit 5", tmp_path).wait()
    assert outcome.output_tail == "" and outcome.reason() == "exit code 5"


# -- environment and working directory --------------------------------------------

def test_success_and_environment(tmp_path: Path) -> None:
    outcome = run('printf "%s" "$QUEUECTL_TEST_VALUE"', tmp_path,
                  env={"QUEUECTL_TEST_VALUE": "héllo wörld"}).wait()
    assert outcome.ok and outcome.output_tail == "héllo wörld"


def test_job_env_overrides_and_extends_the_inherited_one(tmp_path: Path) -> None:
    outcome = run('printf "%s|%s|%s" "$HOME" "$A" "${PATH:+path}"', tmp_path,
                  env={"HOME": "/nowhere", "A": "1"}).wait()
    assert outcome.output_tail == "/nowhere|1|path"


def test_env_does_not_leak_between_runs(tmp_path: Path) -> None:
    run("true", tmp_path, env={"QUEUECTL_LEAK": "x"}).wait()
    outcome = run('printf "[%s]" "$QUEUECTL_LEAK"', tmp_path).wait()
    assert outcome.output_tail == "[]"


def test_cwd(tmp_path: Path) -> None:
    outcome = run("pwd", tmp_path, cwd=str(tmp_path)).wait()
    assert outcome.output_tail.strip() == os.path.realpath(str(tmp_path))


def test_command_not_found_is_exit_127_with_the_shell_message(tmp_path: Path) -> None:
    outcome = run("no_such_command_xyz", tmp_path).wait()
    assert outcome.exit_code == 127 and outcome.spawn_error is None
    assert "no_such_command_xyz: not found" in (outcome.reason() or "")
    assert (outcome.reason() or "").startswith("exit code 127: ")


@pytest.mark.parametrize("kind", ["missing", "a file"])
def test_bad_working_directory_is_a_spawn_failure(kind: str, tmp_path: Path) -> None:
    cwd = tmp_path / "nope"
    if kind == "a file":
        cwd.write_text("")
    handle = run("echo ran > ran.txt", tmp_path, cwd=str(cwd))
    assert handle.pid is None
    outcome = handle.wait()
    assert outcome.spawn_error == f"working directory {str(cwd)!r} does not exist"
    assert outcome.exit_code is None and not outcome.ok
    assert outcome.reason() == f"spawn failed: working directory {str(cwd)!r} does not exist"
    assert handle.check() is outcome


def test_spawn_failure_asks_the_event_loop_for_a_check_at_once(tmp_path: Path) -> None:
    """A supervisor polls pidfds and sleeps until next_wakeup(): a run that never
    started has no pidfd, so it must ask to be checked now, or its slot hangs."""
    handle = run("true", tmp_path, cwd=str(tmp_path / "nope"))
    assert handle.fileno() == -1
    wake = handle.next_wakeup()
    assert wake is not None and wake <= time.time()
    assert handle.check() is not None
    assert handle.next_wakeup() is None


def test_env_value_with_nul_is_a_spawn_failure(tmp_path: Path) -> None:
    handle = run("echo $A", tmp_path, env={"A": "a\x00b"})
    outcome = handle.wait()
    assert outcome.spawn_error and "null" in outcome.spawn_error and not outcome.ok


def test_unwritable_output_path_is_a_spawn_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    outcome = run("echo hi", tmp_path, output_path=str(blocker / "out.log")).wait()
    assert outcome.spawn_error and not outcome.ok
    assert (outcome.reason() or "").startswith("spawn failed: ")


# -- timeouts and kills ---------------------------------------------------------------

def test_timeout_kills_the_grandchild_too(tmp_path: Path, token: str) -> None:
    marker = tmp_path / "grandchild.pid"
    started = time.monotonic()
    handle = run(f"sleep {token} & echo $! > {marker}; wait", tmp_path, timeout_s=0.3,
                 grace_s=0.5)
    wait_for(lambda: marker.exists() and marker.read_text().strip(), timeout=5,
             message="grandchild started")
    grandchild = int(marker.read_text())
    assert _alive(grandchild) and not _gone(token)
    outcome = handle.wait()
    assert outcome.timed_out and not outcome.cancelled and not outcome.ok
    assert outcome.reason() == "timeout" and outcome.signal == signal.SIGTERM
    assert 0.3 <= outcome.duration < 3
    assert time.monotonic() - started < 5
    wait_for(lambda: not _alive(grandchild), timeout=5, message="grandchild killed")
    wait_for(lambda: _gone(token), timeout=5, message="no sleep left (pgrep)")
    assert not _alive(handle.pid or 0)


def test_term_ignoring_job_is_killed_after_the_grace(tmp_path: Path, token: str) -> None:
    started = time.monotonic()
    outcome = run(f"trap '' TERM; sleep {token}", tmp_path, timeout_s=0.2,
                  grace_s=0.3).wait()
    elapsed = time.monotonic() - started
    assert outcome.timed_out and outcome.signal == 9 and outcome.reason() == "timeout"
    assert 0.5 <= elapsed < 5  # timeout + grace, then KILL
    wait_for(lambda: _gone(token), timeout=5, message="no sleep left (pgrep)")


def test_a_job_that_ends_before_its_timeout_is_not_timed_out(tmp_path: Path) -> None:
    outcome = run("echo quick", tmp_path, timeout_s=30).wait()
    assert outcome.ok and not outcome.timed_out


def test_no_timeout_means_no_wakeup(tmp_path: Path, token: str) -> None:
    handle = run(f"sleep {token}", tmp_path, timeout_s=0, grace_s=0.3)
    try:
        wake = handle.next_wakeup()
        if handle.fileno() >= 0:  # with a pidfd nothing needs a timed wake-up
            assert wake is None
        else:  # without one the child is polled every 50 ms
            assert wake is not None and wake - time.time() <= 0.1
    finally:
        handle.kill()
        handle.wait()


def test_next_wakeup_is_the_deadline(tmp_path: Path, token: str) -> None:
    handle = run(f"sleep {token}", tmp_path, timeout_s=60, grace_s=0.3)
    try:
        wake = handle.next_wakeup()
        assert wake is not None and 55 < wake - time.time() <= 60
    finally:
        handle.kill()
    assert handle.wait().cancelled


def test_kill_from_another_thread_cancels(tmp_path: Path, token: str) -> None:
    marker = tmp_path / "grandchild.pid"
    handle = run(f"sleep {token} & echo $! > {marker}; wait", tmp_path, grace_s=0.5)

    def killer() -> None:
        wait_for(lambda: marker.exists() and marker.read_text().strip(), timeout=5,
                 message="grandchild started")
        handle.kill()

    thread = threading.Thread(target=killer)
    started = time.monotonic()
    thread.start()
    outcome = handle.wait()  # blocks with no timeout: only kill() can end it
    thread.join(5)
    assert time.monotonic() - started < 5
    assert outcome.cancelled and not outcome.timed_out and not outcome.ok
    assert outcome.reason() == "cancelled"
    grandchild = int(marker.read_text())
    wait_for(lambda: not _alive(grandchild), timeout=5, message="grandchild killed")
    wait_for(lambda: _gone(token), timeout=5, message="no sleep left (pgrep)")
    assert not _alive(handle.pid or 0)


def test_kill_is_idempotent_and_a_late_kill_changes_nothing(tmp_path: Path,
                                                            token: str) -> None:
    handle = run(f"sleep {token}", tmp_path, grace_s=0.3)
    handle.kill()
    handle.kill()
    assert handle.killed
    outcome = handle.wait()
    assert outcome.cancelled
    handle.kill()
    assert handle.check() is outcome and handle.wait() is outcome


def test_kill_of_a_finished_run_keeps_its_outcome(tmp_path: Path) -> None:
    handle = run("exit 0", tmp_path)
    outcome = handle.wait()
    handle.kill()
    assert handle.check() is outcome and outcome.ok and not outcome.cancelled


def test_kill_before_start_cancels_at_once(tmp_path: Path, token: str) -> None:
    handle = make(f"sleep {token}", tmp_path, grace_s=0.3)
    handle.kill()
    handle.start()
    started = time.monotonic()
    outcome = handle.wait()
    assert outcome.cancelled and time.monotonic() - started < 3
    wait_for(lambda: _gone(token), timeout=5, message="no sleep left (pgrep)")


# -- non-blocking use -------------------------------------------------------------------

def test_non_blocking_check(tmp_path: Path) -> None:
    handle = run("sleep 0.2; exit 6", tmp_path)
    assert handle.pid and _alive(handle.pid)
    assert handle.check() is None
    outcome = wait_for(handle.check, timeout=5, interval=0.01, message="exit")
    assert isinstance(outcome, Outcome) and outcome.exit_code == 6
    assert handle.check() is outcome
    assert handle.next_wakeup() is None


def test_timeout_is_enforced_by_check_alone(tmp_path: Path, token: str) -> None:
    handle = run(f"sleep {token}", tmp_path, timeout_s=0.2, grace_s=0.3)
    outcome = wait_for(handle.check, timeout=5, interval=0.02, message="timeout")
    assert isinstance(outcome, Outcome) and outcome.timed_out
    wait_for(lambda: _gone(token), timeout=5, message="no sleep left (pgrep)")


def test_check_before_start_reports_not_started(tmp_path: Path) -> None:
    outcome = make("true", tmp_path).check()
    assert outcome is not None and outcome.spawn_error == "not started"


def test_the_longest_command_a_job_may_have_runs(tmp_path: Path) -> None:
    from queuectl.jobcore import MAX_COMMAND_BYTES, check_command

    longest = "echo ok #" + "x" * (MAX_COMMAND_BYTES - len("echo ok #"))
    assert check_command(longest) == longest
    outcome = run(longest, tmp_path).wait()
    assert outcome.spawn_error is None and outcome.exit_code == 0
    assert outcome.output_tail == "ok\n"


# -- process group and session --------------------------------------------------------

_GROUP_PROBE = (
    "import os, sys; from queuectl.worker.runner import Run; "
    "run = Run('echo $$ $(ps -o pgid= -o sid= -p $$)', output_path=sys.argv[1]); "
    "run.start(); print(run.wait().output_tail, flush=True)"
)


def _group_and_session(output: str) -> tuple[int, int, int]:
    pid, pgid, sid = (int(field) for field in output.split()[-3:])
    return pid, pgid, sid


def test_without_a_terminal_a_job_leads_its_own_process_group(tmp_path: Path) -> None:
    """A worker with no controlling terminal (detached, a service, CI): the job's
    process group is its own, so a timeout or cancel can kill all of it."""
    done = subprocess.run([sys.executable, "-c", _GROUP_PROBE, str(tmp_path / "o.log")],
                          capture_output=True, text=True, timeout=30,
                          start_new_session=True)  # no controlling terminal
    assert done.returncode == 0, done.stderr
    pid, pgid, sid = _group_and_session(done.stdout)
    assert pgid == pid
    assert sid != pid  # no new session was needed: there is no terminal to leave


def test_with_a_terminal_a_job_gets_its_own_session(tmp_path: Path) -> None:
    """A worker in a terminal: the job leaves the terminal's session, so it can never
    read from it or be stopped by it."""
    import pty

    primary, secondary = pty.openpty()
    probe = subprocess.Popen(
        [sys.executable, "-c", _GROUP_PROBE, str(tmp_path / "o.log")],
        stdin=secondary, stdout=secondary, stderr=secondary,
        preexec_fn=lambda: os.login_tty(secondary))  # the pty becomes its terminal
    os.close(secondary)
    output = b""
    try:
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the probe exited and closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(primary)
        assert probe.wait(timeout=30) == 0, output
    pid, pgid, sid = _group_and_session(output.decode())
    assert pgid == pid and sid == pid


def test_a_tail_without_a_line_start_in_its_first_half_is_cut_at_the_byte(
        tmp_path: Path) -> None:
    outcome = run("head -c 5000 /dev/zero | tr '\\0' x", tmp_path, output_limit=100).wait()
    assert outcome.output_tail == "x" * 100
    assert (outcome.output_bytes, outcome.output_dropped) == (5000, 4900)
    small = run("printf 'a\\nb'", tmp_path, output_limit=100).wait()
    assert (small.output_tail, small.output_bytes, small.output_dropped) == ("a\nb", 3, 0)


def test_the_full_output_is_kept_on_disk_up_to_the_cap(tmp_path: Path) -> None:
    keep = tmp_path / "kept" / "job.log"
    outcome = run("seq 1 20000", tmp_path, output_limit=100, keep_path=str(keep),
                  keep_max=1 << 20).wait()
    assert keep.read_text() == "".join(f"{i}\n" for i in range(1, 20001))
    assert outcome.output_file == str(keep) and oct(keep.stat().st_mode & 0o777) == "0o600"
    capped = run("seq 1 20000", tmp_path, output_limit=100, keep_path=str(keep),
                 keep_max=1000).wait()
    assert keep.read_bytes() == "".join(f"{i}\n" for i in range(1, 20001)).encode()[:1000]
    assert capped.output_bytes > 1000
    off = run("seq 1 10", tmp_path, keep_path=str(tmp_path / "no.log"), keep_max=0).wait()
    assert off.output_file is None and not (tmp_path / "no.log").exists()
