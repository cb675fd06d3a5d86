"""What a daily user hits in the first hour: listings that say when they stop short
and stream everything to programs, stops that stay graceful, effective retry numbers,
asking before bulk deletes, read-only commands on a missing store, run logs, output
tails, single supervisors, notes on delayed jobs, failing spawns and config checks.
Each runs the real CLI against both stores where the behaviour is shared."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.cli.test_commands import as_json, fails, ok, show
from tests.conftest import read_terminal, run_cli, wait_for

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
Cli = Callable[..., subprocess.CompletedProcess]


def on_tty(db: str, *args: str, stdin_tty: bool = False, input: str = "",
           timeout: float = 30.0, stderr_tty: bool = False,
           raw: bool = False) -> tuple[int, str, str]:
    """Run queuectl with stdout on a pseudo-terminal (and stdin too if `stdin_tty`,
    typing `input`; stderr too if `stderr_tty`); stderr is otherwise a pipe.  Returns
    (exit code, terminal text (escapes kept if `raw`), stderr)."""
    leader, follower = pty.openpty()
    env = dict(os.environ, COLUMNS="200", TERM="xterm")
    proc = subprocess.Popen([sys.executable, "-m", "queuectl", "--db", db, *args],
                            stdin=follower if stdin_tty else subprocess.DEVNULL,
                            stdout=follower,
                            stderr=follower if stderr_tty else subprocess.PIPE, env=env,
                            close_fds=True)
    os.close(follower)
    if input:
        os.write(leader, input.encode())
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        chunks.append(read_terminal(leader, proc, deadline))
        err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))[1] or b""
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = b"".join(chunks).decode("utf-8", "replace")
    text = text if raw else ANSI.sub("", text)
    return proc.returncode, text.replace("\r\n", "\n"), err.decode("utf-8", "replace")


def add_many(cli: Cli, count: int, prefix: str = "j", *options: str) -> list[str]:
    lines = "".join(json.dumps({"id": f"{prefix}{i:05d}", "command": "true"}) + "\n"
                    for i in range(count))
    ok(cli("enqueue", "--file", "-", *options, input=lines))
    return [f"{prefix}{i:05d}" for i in range(count)]


# -- 1. listings -----------------------------------------------------------------------
def test_list_json_and_piped_give_every_job_newest_first(cli: Cli) -> None:
    ids = add_many(cli, 1_234)  # more than one page of the stream
    listed = as_json(cli("list", "--state", "pending", "--json"))
    assert [job["id"] for job in listed] == ids[::-1]
    piped = ok(cli("list")).splitlines()
    assert piped[0].split()[:2] == ["ID", "STATE"]
    assert [line.split()[0] for line in piped[1:]] == ids[::-1]
    assert [job["id"] for job in as_json(cli("list", "--json", "--limit", "7"))] \
        == ids[::-1][:7]
    assert as_json(cli("list", "--state", "dead", "--json")) == []


def test_list_on_a_terminal_says_it_stopped_short(cli: Cli, store_url: str) -> None:
    add_many(cli, 120)
    add_many(cli, 3, "m", "--queue", "mail")
    code, out, err = on_tty(store_url, "list")
    assert code == 0, err
    assert sum(1 for line in out.splitlines() if line.lstrip().startswith(("j0", "m0"))) == 50
    assert "showing 50 of 123 (--limit 0 for all)" in err
    code, out, err = on_tty(store_url, "list", "--queue", "mail")
    assert code == 0 and "showing" not in err  # all 3 shown
    code, out, err = on_tty(store_url, "list", "--queue", "default", "--limit", "10")
    assert "showing 10 of 120 (--limit 0 for all)" in err
    code, out, err = on_tty(store_url, "list", "--limit", "0")
    assert code == 0 and "showing" not in err
    assert sum(1 for line in out.splitlines() if line.lstrip().startswith(("j0", "m0"))) == 123


def test_dlq_list_streams_every_dead_job(cli: Cli, store_url: str) -> None:
    lines = "".join(json.dumps({"id": f"d{i:03d}", "command": "exit 3", "max_retries": 0})
                    + "\n" for i in range(53))
    ok(cli("enqueue", "--file", "-", input=lines))
    ok(cli("worker", "start", "--count", "4", "--burst", timeout=120))
    assert len(as_json(cli("dlq", "list", "--json"))) == 53
    assert len(ok(cli("dlq", "list")).splitlines()) == 54
    code, out, err = on_tty(store_url, "dlq", "list")
    assert code == 0 and "showing 50 of 53 (--limit 0 for all)" in err


def test_status_per_queue(cli: Cli) -> None:
    add_many(cli, 3)
    add_many(cli, 2, "m", "--queue", "mail")
    report = as_json(cli("status", "--queue", "--json"))
    assert report["queues"]["default"]["pending"] == 3
    assert report["queues"]["mail"]["pending"] == 2
    assert report["queues"]["mail"]["dead"] == 0
    assert report["total"] == 5
    assert "queues" not in as_json(cli("status", "--json"))
    text = ok(cli("status", "--queue"))
    mail = [line.split() for line in text.splitlines() if line.startswith("mail")]
    assert mail and mail[0][-1] == "2"


# -- 3. attempt counts -------------------------------------------------------------------
def test_effective_retry_numbers_everywhere(cli: Cli) -> None:
    ok(cli("enqueue", "--id", "plain", "true"))
    ok(cli("enqueue", "--id", "own", "--max-retries", "5", "--backoff-base", "3",
           "--timeout", "60", "true"))
    plain, own = show(cli, "plain"), show(cli, "own")
    assert (plain["max_retries"], plain["backoff_base"], plain["timeout"]) == (3, 2, 0)
    assert plain["from_config"] == {"max_retries": True, "backoff_base": True,
                                    "timeout": True}
    assert (own["max_retries"], own["backoff_base"], own["timeout"]) == (5, 3, 60)
    assert own["from_config"] == {"max_retries": False, "backoff_base": False,
                                  "timeout": False}
    assert plain["next_retry_at"] is None
    ok(cli("config", "set", "max-retries", "7"))  # a queued job follows the config
    assert show(cli, "plain")["max_retries"] == 7
    listed = {line.split()[0]: line.split() for line in ok(cli("list")).splitlines()[1:]}
    assert listed["plain"][3] == "0/8" and listed["own"][3] == "0/6"
    text = ok(cli("show", "plain"))
    assert "max runs" not in text and "config)" in text
    assert _field(text, "Attempts") == "0/8"
    assert _field(text, "Max retries") == "7 (from config)"
    assert _field(text, "Backoff base") == "2 (from config)"
    assert _field(show_text(cli, "own"), "Timeout") == "60s"


def _field(text: str, name: str) -> str:
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} in {text}")


def show_text(cli: Cli, job_id: str) -> str:
    return ok(cli("show", job_id))


def test_failed_job_waiting_for_retry_has_next_retry_at(cli: Cli, store_url: str) -> None:
    ok(cli("enqueue", "--id", "flaky", "--backoff-base", "600", "exit 1"))
    worker = subprocess.Popen([sys.executable, "-m", "queuectl", "--db", store_url,
                               "worker", "start", "--count", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: show(cli, "flaky")["state"] == "failed", timeout=30,
                 message="the first run failed")
    finally:
        ok(cli("worker", "stop", "--now"))
        worker.wait(timeout=30)
    failed = show(cli, "flaky")
    assert failed["next_retry_at"] is not None
    assert failed["next_retry_at"] == failed["run_at"]
    assert [j["next_retry_at"] for j in as_json(cli("list", "--json"))] == [failed["run_at"]]
    assert "Next retry:" in show_text(cli, "flaky")


# -- 4. bulk deletes ask; rm ------------------------------------------------------------
def _dead_and_done(cli: Cli) -> dict[str, str]:
    ok(cli("enqueue", "--id", "d1", "--max-retries", "0", "exit 1"))
    ok(cli("enqueue", "--id", "fine", "true"))
    ok(cli("worker", "start", "--count", "1", "--burst", timeout=60))
    return {job["id"]: job["state"] for job in as_json(cli("list", "--json"))}


@pytest.mark.parametrize("command", [["clear"], ["dlq", "purge"],
                                     ["purge", "--older-than", "0"]])
def test_bulk_deletes_need_yes_off_a_terminal(cli: Cli, command: list[str]) -> None:
    before = _dead_and_done(cli)
    assert before == {"d1": "dead", "fine": "completed"}
    fails(cli(*command, input=""), 2, "--yes")
    assert {job["id"]: job["state"] for job in as_json(cli("list", "--json"))} == before
    ok(cli(*command, "--yes"))
    assert "d1" not in {job["id"] for job in as_json(cli("list", "--json"))}


def test_dlq_purge_asks_on_a_terminal(cli: Cli, store_url: str) -> None:
    _dead_and_done(cli)
    code, out, err = on_tty(store_url, "dlq", "purge", stdin_tty=True, input="n\n")
    assert code != 0 and "Delete 1 dead job(s)?" in out + err
    assert show(cli, "d1")["state"] == "dead"
    code, out, err = on_tty(store_url, "dlq", "purge", stdin_tty=True, input="y\n")
    assert code == 0 and "1 dead job(s) deleted" in out, (out, err)
    assert {job["id"] for job in as_json(cli("list", "--json"))} == {"fine"}


def test_rm_deletes_one_job_not_a_running_one(cli: Cli, store_url: str) -> None:
    ok(cli("enqueue", "--id", "keep", "true"))
    ok(cli("enqueue", "--id", "gone", "true"))
    fails(cli("rm", "gone", "nosuchjob"), 1, "nosuchjob")  # every id checked first
    assert {j["id"] for j in as_json(cli("list", "--json"))} == {"keep", "gone"}
    assert ok(cli("rm", "gone")).strip() == "gone: removed"
    assert {j["id"] for j in as_json(cli("list", "--json"))} == {"keep"}
    fails(cli("show", "gone"), 1, "no job 'gone'")
    ok(cli("rm", "keep"))
    ok(cli("enqueue", "--id", "busy", "sleep 30"))
    worker = subprocess.Popen([sys.executable, "-m", "queuectl", "--db", store_url,
                               "worker", "start", "--count", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: show(cli, "busy")["state"] == "processing", timeout=30,
                 message="busy runs")
        fails(cli("rm", "busy"), 1, "processing", "cancel it first")
        assert show(cli, "busy")["state"] == "processing"
        ok(cli("cancel", "busy"))
        wait_for(lambda: show(cli, "busy")["state"] == "cancelled", timeout=30,
                 message="cancelled")
        assert as_json(cli("rm", "busy", "--json")) == {"removed": ["busy"]}
    finally:
        ok(cli("worker", "stop", "--now"))
        worker.wait(timeout=30)
    assert as_json(cli("list", "--json")) == []


# -- 5. read-only commands on a store that does not exist --------------------------------
READ_ONLY = [["status"], ["list"], ["--json", "list"], ["show", "job1"], ["logs", "job1"],
             ["dlq", "list"], ["workers"], ["worker", "stop"], ["config", "get", "max-retries"]]


@pytest.mark.parametrize("args", READ_ONLY)
def test_read_only_command_on_a_missing_store_creates_nothing(tmp_path: Path,
                                                              args: list[str]) -> None:
    db = tmp_path / "typo" / "q.db"
    result = run_cli(*args, db=str(db))
    fails(result, 3, f"no queue at {db}")
    assert result.stdout == ""
    assert not (tmp_path / "typo").exists()


def test_writes_create_the_store_and_the_default_store_reads_empty(tmp_path: Path) -> None:
    db = tmp_path / "new" / "q.db"
    assert run_cli("enqueue", "--id", "job1", "true", db=str(db)).returncode == 0
    assert as_json(run_cli("--json", "list", db=str(db)))[0]["id"] == "job1"
    # a new user's first `queuectl status`: the default store in the data dir
    first = as_json(run_cli("--json", "status"))
    assert first["total"] == 0


# -- 6. a line per finished run; show points to logs -f ---------------------------------
def test_foreground_worker_logs_each_finished_run(cli: Cli, store_url: str) -> None:
    ok(cli("enqueue", "--id", "good", "true"))
    ok(cli("enqueue", "--id", "bad", "--max-retries", "0", "exit 4"))
    ran = cli("worker", "start", "--count", "1", "--burst", timeout=60)
    ok(ran)
    lines = ran.stderr.splitlines()
    good = [line for line in lines if "job good" in line]
    assert len(good) == 1 and " INFO " in good[0] and "completed" in good[0], lines
    assert re.search(r"in \d+\.\d+s", good[0]) and "attempt 1" in good[0]
    bad = [line for line in lines if "job bad" in line]
    assert len(bad) == 1 and " ERROR " in bad[0] and "dead" in bad[0]
    assert "\x1b[" not in ran.stderr  # no colours into a pipe or a file
    ok(cli("enqueue", "--id", "more", "true"))
    code, out, _ = on_tty(store_url, "worker", "start", "--count", "1", "--burst",
                          stderr_tty=True, raw=True)
    assert code == 0
    line = next(line for line in out.splitlines() if "job more" in line)
    assert "\x1b[" in line and "INFO" in ANSI.sub("", line)  # the level coloured


def test_show_of_a_running_job_points_to_logs_follow(cli: Cli, store_url: str) -> None:
    ok(cli("enqueue", "--id", "slow", "echo started; sleep 30"))
    worker = subprocess.Popen([sys.executable, "-m", "queuectl", "--db", store_url,
                               "worker", "start", "--count", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: show(cli, "slow")["state"] == "processing", timeout=30,
                 message="running")
        text = ok(cli("show", "slow"))
        assert "Output: (none)" not in text
        assert "queuectl logs -f slow" in text
    finally:
        ok(cli("worker", "stop", "--now"))
        worker.wait(timeout=30)


# -- 7. logs -n N ------------------------------------------------------------------------
def test_logs_tail_gives_the_last_lines(cli: Cli) -> None:
    ok(cli("enqueue", "--id", "many", "seq 1 100; printf last"))
    ok(cli("worker", "start", "--count", "1", "--burst", timeout=60))
    assert ok(cli("logs", "many")).endswith("99\n100\nlast")
    assert ok(cli("logs", "-n", "3", "many")) == "99\n100\nlast"
    assert ok(cli("logs", "--tail", "1", "many")) == "last"
    assert ok(cli("logs", "--tail", "0", "many")) == ""
    assert as_json(cli("logs", "-n", "2", "many", "--json"))["output"] == "100\nlast"
    assert ok(cli("logs", "-n", "500", "many")) == ok(cli("logs", "many"))
    fails(cli("logs", "-n", "-1", "many"), 2, "--tail")
    assert ok(cli("logs", "-n", "2", "-f", "many")) == "100\nlast"  # ended: the tail


# -- 8. one scheduler per host; pid files go; --log-file ---------------------------------
def _pid_files(store_url: str) -> list[str]:
    from queuectl.daemon import pid_dir
    from queuectl.queue import Queue

    folder = pid_dir(Queue(store_url))
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_scheduler_start_twice_refuses_and_pid_files_go(cli: Cli, store_url: str) -> None:
    first = as_json(cli("scheduler", "start", "--workers", "1", "--json"))
    pids = [first["pid"]]
    try:
        assert _pid_files(store_url) == [f"{first['pid']}.pid"]
        fails(cli("scheduler", "start", "--workers", "1"), 1,
              f"already running (pid {first['pid']})", "--force")
        assert len(as_json(cli("workers", "--json"))["workers"]) == 1
        second = as_json(cli("scheduler", "start", "--force", "--json"))
        pids.append(second["pid"])
        assert len(as_json(cli("workers", "--json"))["workers"]) == 2
    finally:
        ok(cli("worker", "stop"))  # no --wait: that would tidy pid files itself
        for pid in pids:
            wait_for(lambda pid=pid: _gone(pid), timeout=30, message=f"pid {pid} exits")
    assert _pid_files(store_url) == []  # each removed its own on the way out


def test_worker_log_file(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "queuectl.log"
    fails(cli("worker", "start", "--burst", "--log-file", str(log)), 2, "no folder")
    log.parent.mkdir()
    ok(cli("enqueue", "--id", "logged", "true"))
    ran = cli("worker", "start", "--burst", "--log-file", str(log))
    ok(ran)
    assert "job logged" not in ran.stderr
    text = log.read_text()
    assert "job logged completed" in text and "started" in text
    assert (log.stat().st_mode & 0o077) == 0  # private, like the store


# -- 9. when a delayed job runs, on a terminal; a past --run-at warned ------------------
def test_enqueue_notes_when_a_delayed_job_runs(cli: Cli, store_url: str) -> None:
    code, out, _ = on_tty(store_url, "schedule", "echo later", "+24h", stderr_tty=True)
    assert code == 0
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    job_id = lines[0]
    assert re.fullmatch(r"[0-9a-f-]{36}", job_id), lines
    assert re.search(r"scheduled for \d{4}-\d\d-\d\d \d\d:\d\d local \(in 1\.0d\)",
                     lines[1]), lines
    piped = cli("enqueue", "--delay", "1h", "--id", "quiet", "true")
    assert piped.stdout == "quiet\n" and piped.stderr == ""  # scripts get the id only


def test_a_past_run_at_is_warned_about(cli: Cli) -> None:
    past = cli("enqueue", "--id", "old", "--run-at", "2020-01-01 00:00:00", "true")
    assert past.returncode == 0 and past.stdout == "old\n"
    assert "warning: run_at 2020-01-01 00:00 local is" in past.stderr
    assert "in the past: the job is due now" in past.stderr
    assert show(cli, "old")["state"] == "pending"
    assert cli("enqueue", "--id", "now", "true").stderr == ""


# -- 10. a spawn that cannot succeed; config keys checked against each other -----------
def test_missing_cwd_fails_without_retries(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    ok(cli("enqueue", "--id", "nowhere", "--cwd", str(missing), "pwd"))  # 3 retries
    ok(cli("worker", "start", "--count", "1", "--burst", timeout=60))
    shown = show(cli, "nowhere")
    assert shown["state"] == "dead" and shown["attempts"] == 1
    assert f"working directory {str(missing)!r} does not exist" in shown["error"]
    assert "not retried" in shown["error"]


def test_lease_timeout_must_outlast_two_heartbeats(cli: Cli) -> None:
    ok(cli("migrate"))
    line = fails(cli("config", "set", "lease-timeout", "1"), 2, "lease-timeout",
                 "at least twice heartbeat-interval (5s)")
    assert "(1s)" in line
    fails(cli("config", "set", "heartbeat-interval", "20"), 2, "twice")
    got = as_json(cli("config", "--json"))
    assert got["lease-timeout"] == {"value": 30, "source": "default"}  # nothing written
    assert got["heartbeat-interval"] == {"value": 5, "source": "default"}
    ok(cli("config", "set", "heartbeat-interval", "0.5"))  # in this order it works
    ok(cli("config", "set", "lease-timeout", "1"))
    assert as_json(cli("config", "get", "lease-timeout", "--json"))["value"] == 1


# -- 11. the README's commands work after the README's own set-up -------------------------
def test_readme_puts_queuectl_on_path_before_its_bare_commands() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    lines = readme.splitlines()
    activate = next(i for i, line in enumerate(lines) if line.strip() == ". .venv/bin/activate")
    first_bare = next(i for i, line in enumerate(lines) if line.startswith("queuectl "))
    assert activate < first_bare
