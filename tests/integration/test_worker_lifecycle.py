"""Workers as a user meets them: real supervisor processes, real jobs."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.conftest import run_cli, wait_for
from tests.integration.conftest import process_running


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def job(q: Any, job_id: str) -> dict[str, Any]:
    return q("show", job_id)


def state(q: Any, job_id: str) -> str:
    return job(q, job_id)["state"]


def test_success_and_output_captured(cli: Any, q: Any, workers: Any) -> None:
    assert cli("enqueue", "--id", "ok1", "--command", "echo 'SUCCESS: Job 1'").returncode == 0
    workers.start("--count", "1", "--burst").wait(timeout=30)
    shown = job(q, "ok1")
    assert shown["state"] == "completed"
    assert shown["exit_code"] == 0
    assert "SUCCESS: Job 1" in shown["output"]
    assert shown["attempts"] == 1


def test_invalid_command_goes_to_dlq(cli: Any, q: Any, workers: Any) -> None:
    cli("config", "set", "backoff-base", "1")
    assert cli("enqueue", "--id", "bad", "--job", "invalid_command_xyz",
               "--max-retries", "2").returncode == 0
    workers.start("--count", "1", "--burst").wait(timeout=30)
    shown = job(q, "bad")
    assert shown["state"] == "dead"
    assert shown["attempts"] == 3
    assert shown["exit_code"] == 127
    assert "not found" in shown["error"]
    assert [h["result"] for h in shown["history"]] == ["failed", "failed", "dead"]
    dlq = q("dlq", "list")
    assert [j["id"] for j in dlq] == ["bad"]


def test_missing_working_directory_fails_the_job(cli: Any, q: Any, workers: Any,
                                                tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-dir")
    spec = {"id": "nowhere", "command": "pwd", "cwd": missing, "max_retries": 0}
    assert cli("enqueue", json.dumps(spec)).returncode == 0
    cli("enqueue", "--id", "after", "--command", "true")
    assert workers.start("--count", "1", "--burst").wait(timeout=30) == 0, workers.log(0)
    shown = job(q, "nowhere")
    assert shown["state"] == "dead"
    assert shown["error"] == (f"spawn failed: working directory {missing!r} does not "
                              "exist (not retried: a retry cannot succeed)")
    assert state(q, "after") == "completed"


def test_timeout_kills_the_whole_group(cli: Any, q: Any, workers: Any,
                                       tmp_path: Path) -> None:
    marker = tmp_path / "pgid"
    command = f"echo $$ > {marker}; sleep 1000 & sleep 1000"
    assert cli("enqueue", "--id", "slow", "--command", command, "--timeout", "1",
               "--max-retries", "1").returncode == 0
    cli("config", "set", "backoff-base", "1")
    workers.start("--count", "1", "--burst").wait(timeout=60)
    shown = job(q, "slow")
    assert shown["state"] == "dead"
    assert shown["attempts"] == 2
    assert shown["error"] == "timeout"
    assert all(h["timed_out"] for h in shown["history"])
    pgid = int(marker.read_text().strip())
    assert not _group_members(pgid), "processes of the timed-out job survived"


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def test_priority_order(cli: Any, q: Any, workers: Any, tmp_path: Path) -> None:
    out = tmp_path / "order"
    for name, prio in (("low", 1), ("mid", 5), ("high", 10)):
        cli("enqueue", "--id", name, "--priority", str(prio), "--command",
            f"echo {name} >> {out}")
    workers.start("--count", "1", "--burst").wait(timeout=30)
    assert out.read_text().split() == ["high", "mid", "low"]


def test_scheduled_job_waits_for_its_time(cli: Any, q: Any, workers: Any) -> None:
    cli("enqueue", "--id", "later", "--command", "true", "--delay", "1.5")
    assert state(q, "later") == "scheduled"
    started = time.time()
    proc = workers.start("--count", "1")
    wait_for(lambda: state(q, "later") == "completed", timeout=20, message="scheduled job")
    shown = job(q, "later")
    assert shown["history"][0]["started_at"] >= shown["run_at"]
    assert time.time() - started < 10
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_persistence_across_worker_restart(cli: Any, q: Any, workers: Any) -> None:
    cli("enqueue", "--id", "p1", "--job", "echo 'Persistent job 1'")
    cli("enqueue", "--id", "p2", "--job", "sleep 0.5; echo 'Persistent job 2'")
    first = workers.start("--count", "1")
    wait_for(lambda: state(q, "p1") == "completed", timeout=20, message="p1")
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=20) == 0
    workers.start("--count", "1", "--burst").wait(timeout=30)
    assert state(q, "p2") == "completed"


def test_rescued_job_output_is_its_own_run_only(cli: Any, q: Any, workers: Any) -> None:
    """The shell of a SIGKILLed supervisor's job lives on; what it still prints must
    not end up in the output of the run that replaces it."""
    pause = f"sleep 1.{uuid.uuid4().int % 10**6:06d}"  # a text no other process has
    cli("enqueue", "--id", "lost", "--command",
        f"{pause}; echo run-$QUEUECTL_JOB_ATTEMPT")
    first = workers.start("--count", "1")
    wait_for(lambda: state(q, "lost") == "processing", timeout=20, message="first run")
    os.kill(first.pid, signal.SIGKILL)  # the supervisor only: its job's shell lives on
    first.wait(timeout=10)
    assert workers.start("--count", "1", "--burst").wait(timeout=60) == 0
    shown = job(q, "lost")
    assert shown["state"] == "completed"
    assert any(h.get("event") == "worker lost" for h in shown["history"])
    # the orphaned first run is gone (killed by the rescue), so nothing can print later
    wait_for(lambda: not process_running(pause), timeout=20, message="no run left")
    assert shown["output"] == "run-2\n"
    assert cli("logs", "lost").stdout == "run-2\n"


def test_rescue_on_the_same_host_ends_the_lost_run(cli: Any, q: Any, workers: Any,
                                                   tmp_path: Path) -> None:
    """A job is never run twice at once: when a SIGKILLed supervisor's job is rescued
    on its host, the shell it left behind is killed before the job runs again."""
    out = tmp_path / "runs"
    pause = f"sleep 2.{uuid.uuid4().int % 10**6:06d}"  # a text no other process has
    cli("enqueue", "--id", "lost", "--command",
        f"echo start-$QUEUECTL_JOB_ATTEMPT >> {out}; {pause}; "
        f"echo end-$QUEUECTL_JOB_ATTEMPT >> {out}")
    first = workers.start("--count", "1")
    wait_for(lambda: out.exists(), timeout=20, message="first run")
    os.kill(first.pid, signal.SIGKILL)  # the supervisor only: its job's shell lives on
    first.wait(timeout=10)
    assert workers.start("--count", "1", "--burst").wait(timeout=60) == 0
    assert state(q, "lost") == "completed"
    wait_for(lambda: not process_running(pause), timeout=20,
             message="no run of the job left")
    assert out.read_text().split() == ["start-1", "start-2", "end-2"]


def test_lease_shorter_than_heartbeat_does_not_rescue_live_workers(
        cli: Any, q: Any, workers: Any) -> None:
    """lease-timeout 1 with the default 5 s heartbeat: a busy live supervisor's
    heartbeat is often older than the lease, yet its job must not be taken away.
    (`config set` refuses such a lease; the environment still can give it.)"""
    short = {"QUEUECTL_LEASE_TIMEOUT": "1"}
    cli("enqueue", "--id", "long", "--command", "sleep 3")
    workers.start("--count", "1", env=short)
    wait_for(lambda: state(q, "long") == "processing", timeout=20, message="claimed")
    workers.start("--count", "1", env=short)  # a second supervisor runs rescue passes
    wait_for(lambda: state(q, "long") != "processing", timeout=30, message="finished")
    shown = job(q, "long")
    assert shown["state"] == "completed", shown["history"]
    assert shown["attempts"] == 1 and shown["rescues"] == 0


def test_graceful_stop_lets_running_job_finish(cli: Any, q: Any, workers: Any) -> None:
    cli("enqueue", "--id", "long", "--command", "sleep 1.5; echo finished")
    proc = workers.start("--count", "1")
    wait_for(lambda: state(q, "long") == "processing", timeout=20, message="processing")
    result = run_cli("worker", "stop", db=workers.db)
    assert result.returncode == 0, result.stderr
    assert proc.wait(timeout=30) == 0
    shown = job(q, "long")
    assert shown["state"] == "completed"
    assert "finished" in shown["output"]


def test_stop_now_requeues_without_counting(cli: Any, q: Any, workers: Any) -> None:
    cli("enqueue", "--id", "long", "--command", "sleep 30")
    proc = workers.start("--count", "1")
    wait_for(lambda: state(q, "long") == "processing", timeout=20, message="processing")
    result = run_cli("worker", "stop", "--now", db=workers.db)
    assert result.returncode == 0, result.stderr
    assert proc.wait(timeout=30) == 0
    shown = job(q, "long")
    assert shown["state"] == "pending"
    assert shown["attempts"] == 0
    assert shown["history"][-1]["event"] == "requeued"


def test_worker_stop_stays_graceful_however_often(cli: Any, q: Any, workers: Any,
                                                  tmp_path: Any) -> None:
    gate = tmp_path / "gate"  # the job runs until the test has stopped the worker 3 times
    cli("enqueue", "--id", "long", "--command",
        f"while [ ! -e {gate} ]; do sleep 0.05; done; echo finished")
    proc = workers.start("--count", "1")
    wait_for(lambda: state(q, "long") == "processing", timeout=20, message="processing")
    import subprocess
    import sys

    argv = [sys.executable, "-m", "queuectl", "--db", workers.db, "worker", "stop"]
    twice = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]  # two at once
    for stopper in twice:
        assert stopper.wait(timeout=30) == 0
    wait_for(lambda: "stopping" in workers.log(0), timeout=10, message="graceful stop")
    again = run_cli("worker", "stop", db=workers.db)  # and once more
    assert again.returncode == 0 and "finish running jobs" in again.stdout
    assert state(q, "long") == "processing"
    gate.touch()
    assert proc.wait(timeout=30) == 0
    shown = job(q, "long")
    assert shown["state"] == "completed" and "finished" in shown["output"]
    assert "stopping now" not in workers.log(0)


def test_stop_now_after_a_graceful_stop_kills(cli: Any, q: Any, workers: Any) -> None:
    cli("enqueue", "--id", "long", "--command", "sleep 30")
    proc = workers.start("--count", "1")
    wait_for(lambda: state(q, "long") == "processing", timeout=20, message="processing")
    assert run_cli("worker", "stop", db=workers.db).returncode == 0
    wait_for(lambda: "stopping" in workers.log(0), timeout=10, message="graceful stop")
    assert run_cli("worker", "stop", "--now", db=workers.db).returncode == 0
    assert proc.wait(timeout=30) == 0
    assert state(q, "long") == "pending"


def test_second_signal_stops_now(cli: Any, q: Any, workers: Any) -> None:
    cli("enqueue", "--id", "long", "--command", "sleep 30")
    proc = workers.start("--count", "1")
    wait_for(lambda: state(q, "long") == "processing", timeout=20, message="processing")
    proc.send_signal(signal.SIGINT)
    # a person presses Ctrl-C again after the worker said it is stopping
    wait_for(lambda: "stopping" in workers.log(0), timeout=10, message="graceful stop")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    assert state(q, "long") == "pending"


def test_cancel_kills_running_job(cli: Any, q: Any, workers: Any) -> None:
    command = f"sleep 1000.{uuid.uuid4().int % 10**9:09d}"  # no other process has it
    cli("enqueue", "--id", "long", "--command", command)
    workers.start("--count", "1")
    wait_for(lambda: state(q, "long") == "processing", timeout=20, message="processing")
    wait_for(lambda: process_running(command), message="job started")
    assert cli("cancel", "long").returncode == 0
    # the process group is killed promptly; the job stays cancelled
    wait_for(lambda: not process_running(command), timeout=10,
             message="job process killed")
    assert state(q, "long") == "cancelled"


def test_retry_backoff_follows_base_power_attempts(cli: Any, q: Any, workers: Any) -> None:
    cli("enqueue", "--id", "flaky", "--command", "exit 3", "--max-retries", "2",
        "--backoff-base", "1.5")
    workers.start("--count", "1", "--burst").wait(timeout=60)
    shown = job(q, "flaky")
    assert shown["state"] == "dead"
    runs = shown["history"]
    assert len(runs) == 3
    # run n+1 starts no earlier than base ** n after run n finished, and not much later
    for n in (1, 2):
        gap = epoch(runs[n]["started_at"]) - epoch(runs[n - 1]["finished_at"])
        assert 1.5 ** n - 0.01 <= gap <= 1.5 ** n + 1.0
    back = q("dlq", "retry", "flaky")
    assert back["state"] == "pending"
    assert back["attempts"] == 0
    assert len(back["history"]) >= 3


def test_burst_worker_of_one_queue_ignores_other_queues(cli: Any, q: Any,
                                                       workers: Any) -> None:
    cli("enqueue", "--id", "mine", "--queue", "mine", "--command", "true")
    cli("enqueue", "--id", "theirs", "--queue", "theirs", "--command", "true")
    proc = workers.start("--count", "1", "--queue", "mine", "--burst")
    assert proc.wait(timeout=15) == 0, workers.log(0)
    assert state(q, "mine") == "completed"
    assert state(q, "theirs") == "pending"


def test_idle_timeout_stops_worker(cli: Any, workers: Any) -> None:
    cli("enqueue", "true")
    proc = workers.start("--count", "2", "--timeout", "1")
    assert proc.wait(timeout=20) == 0


def test_workers_listed_from_another_terminal(cli: Any, q: Any, workers: Any) -> None:
    assert cli("migrate").returncode == 0  # reads on no store at all fail (exit 3)
    proc = workers.start("--count", "3")
    listed = wait_for(lambda: q("worker", "status")["workers"], timeout=20,
                      message="registration")
    assert listed[0]["pid"] == proc.pid
    assert listed[0]["slots"] == 3
    status = q("status")
    assert len(status["workers"]) == 1
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert q("worker", "status")["workers"] == []
