"""Every documented command syntax, run through the real CLI (`python -m queuectl`
as a subprocess), checked by what a user can observe: exit codes, the stored job
(via `--json show` / `--json list`), one-line errors, and an unchanged store after
bad input."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import wait_for

Cli = Callable[..., subprocess.CompletedProcess]

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
TIMESTAMPS = ("run_at", "created_at", "updated_at", "started_at", "finished_at")


# -- helpers ---------------------------------------------------------------------------
def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout


def fails(result: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """The command failed with `code` and exactly one clear line on stderr."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("queuectl: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def as_json(result: subprocess.CompletedProcess) -> Any:
    return json.loads(ok(result))


def jobs(cli: Cli) -> dict[str, dict[str, Any]]:
    """Every job; {} when no store exists yet (bad input did not even create it)."""
    result = cli("--json", "list", "--limit", "0")
    if result.returncode == 3 and "no queue at" in result.stderr:
        return {}
    listing = as_json(result)
    assert isinstance(listing, list)
    return {job["id"]: job for job in listing}


def show(cli: Cli, job_id: str) -> dict[str, Any]:
    return as_json(cli("--json", "show", job_id))


def enqueue(cli: Cli, *args: str) -> str:
    out = ok(cli("enqueue", *args)).strip().splitlines()
    assert len(out) == 1, out
    return out[0]


def make_dead(cli: Cli, job_id: str = "dead1") -> str:
    enqueue(cli, "exit 1", "--id", job_id, "--max-retries", "0")
    ok(cli("worker", "start", "--count", "1", "--burst", timeout=60))
    assert show(cli, job_id)["state"] == "dead"
    return job_id


def run_burst(cli: Cli) -> None:
    ok(cli("worker", "start", "--count", "1", "--burst", timeout=60))


def assert_iso_z(job: dict[str, Any]) -> None:
    for key in TIMESTAMPS:
        if job.get(key) is not None:
            assert ISO_Z.match(job[key]), (key, job[key])


# -- enqueue / add ---------------------------------------------------------------------
def test_enqueue_job_option(cli: Cli) -> None:
    job_id = enqueue(cli, "--job", "echo 'Processing started'", "--max-retries", "2")
    job = show(cli, job_id)
    assert job["command"] == "echo 'Processing started'"
    assert job["max_retries"] == 2
    assert job["state"] == "pending"
    assert job["priority"] == 5
    assert re.fullmatch(r"[0-9a-f-]{36}", job_id)


def test_enqueue_job_options(cli: Cli) -> None:
    high = enqueue(cli, "--job", "echo 'High priority'", "--priority", "10")
    delayed = enqueue(cli, "--job", "echo 'Delayed'", "--delay", "60")
    slow = enqueue(cli, "--job", "long_running_task", "--timeout", "300",
                   "--max-retries", "3")
    assert show(cli, high)["priority"] == 10
    assert show(cli, delayed)["state"] == "scheduled"
    slow_job = show(cli, slow)
    assert slow_job["timeout"] == 300 and slow_job["max_retries"] == 3


def test_enqueue_positional_command(cli: Cli) -> None:
    job_id = enqueue(cli, "echo 'Hello World'")
    assert show(cli, job_id)["command"] == "echo 'Hello World'"
    retried = enqueue(cli, "sleep 5", "--max-retries", "3")
    assert show(cli, retried)["max_retries"] == 3


def test_enqueue_json_object(cli: Cli) -> None:
    assert enqueue(cli, '{"id":"job1","command":"sleep 2"}') == "job1"
    assert enqueue(cli, '{"id":"job2","command":"timeout 30","timeout":5,"max_retries":3,'
                        '"backoff_base":2}') == "job2"
    assert enqueue(cli, '{"id":"job3","command":"echo High Priority","priority":8}') == "job3"
    stored = jobs(cli)
    assert stored["job1"]["command"] == "sleep 2"
    assert stored["job2"]["timeout"] == 5 and stored["job2"]["max_retries"] == 3
    assert stored["job2"]["backoff_base"] == 2
    assert stored["job3"]["priority"] == 8


def test_enqueue_json_with_run_at(cli: Cli) -> None:
    assert enqueue(cli, '{"id":"ping","command":"ping google.com","priority":10,'
                        '"run_at":"+5m"}') == "ping"
    job = show(cli, "ping")
    assert job["state"] == "scheduled"
    assert job["priority"] == 10
    assert_iso_z(job)


def test_enqueue_command_and_id_options(cli: Cli) -> None:
    assert enqueue(cli, "--id", "job1", "--command", "echo Hello World") == "job1"
    assert enqueue(cli, "--id", "job2", "--command", "timeout 30", "--timeout", "5",
                   "--max-retries", "3", "--backoff-base", "2") == "job2"
    assert show(cli, "job1")["command"] == "echo Hello World"
    job2 = show(cli, "job2")
    assert (job2["timeout"], job2["max_retries"], job2["backoff_base"]) == (5, 3, 2)


def test_add_with_id(cli: Cli) -> None:
    out = ok(cli("add", "echo Hello World", "--id", "my-first-job"))
    assert out.strip() == "my-first-job"
    assert show(cli, "my-first-job")["command"] == "echo Hello World"


def test_enqueue_json_output(cli: Cli) -> None:
    job = as_json(cli("enqueue", "echo hi", "--id", "j", "--json"))
    assert job["id"] == "j" and job["state"] == "pending"
    assert_iso_z(job)
    job2 = as_json(cli("--json", "enqueue", "echo hi", "--id", "k"))
    assert job2["id"] == "k"


def test_enqueue_run_at_forms(cli: Cli) -> None:
    enqueue(cli, "echo a", "--id", "a", "--run-at", "+5m")
    enqueue(cli, "echo b", "--id", "b", "--run-at", "2025-11-10 02:00:00")
    enqueue(cli, "echo c", "--id", "c", "--delay", "5m")
    assert show(cli, "a")["state"] == "scheduled"
    assert show(cli, "c")["state"] == "scheduled"
    # a past local time is due now
    assert show(cli, "b")["state"] == "pending"


def test_enqueue_file(cli: Cli, tmp_path: Path) -> None:
    batch = tmp_path / "jobs.jsonl"
    batch.write_text('{"id":"f1","command":"echo one"}\n'
                     "# a comment\n\n"
                     "echo two\n"
                     '{"id":"f3","command":"echo three","priority":9}\n')
    out = ok(cli("enqueue", "--file", str(batch))).split()
    assert out[0] == "f1" and out[2] == "f3" and len(out) == 3
    stored = jobs(cli)
    assert stored["f3"]["priority"] == 9
    assert stored[out[1]]["command"] == "echo two"


def test_enqueue_file_counts_unique_key_matches(cli: Cli, tmp_path: Path) -> None:
    enqueue(cli, '{"id": "live", "command": "sleep 1", "unique_key": "nightly"}')
    batch = tmp_path / "jobs.jsonl"
    batch.write_text('{"id": "n1", "command": "make", "unique_key": "nightly"}\n'
                     '{"id": "n2", "command": "make", "unique_key": "hourly"}\n'
                     '{"id": "n3", "command": "make", "unique_key": "hourly"}\n'
                     "echo plain\n")
    result = as_json(cli("enqueue", "--file", str(batch), "--json"))
    assert result["enqueued"] == 2 and result["matched"] == 2
    assert result["ids"][:3] == ["live", "n2", "n2"]
    again = tmp_path / "again.jsonl"
    again.write_text('{"command": "make", "unique_key": "nightly"}\n'
                     '{"command": "make", "unique_key": "hourly"}\n'
                     "echo plain\n")
    text = cli("enqueue", "--file", str(again))
    assert text.returncode == 0
    assert "Enqueued 1 job (2 matched a live job by unique key)" in text.stderr
    assert text.stdout.split()[:2] == ["live", "n2"]


def test_enqueue_file_stdin(cli: Cli) -> None:
    out = ok(cli("enqueue", "--file", "-", input='{"id":"s1","command":"echo 1"}\necho 2\n'))
    assert len(out.split()) == 2
    assert set(jobs(cli)) == set(out.split())


def test_enqueue_file_bad_line_rejects_all(cli: Cli, tmp_path: Path) -> None:
    enqueue(cli, "echo keep", "--id", "keep")
    before = jobs(cli)
    batch = tmp_path / "jobs.jsonl"
    batch.write_text('{"id":"g1","command":"echo one"}\n{"id":"g2","bogus":1}\n')
    fails(cli("enqueue", "--file", str(batch)), 2, "line 2")
    assert jobs(cli) == before


@pytest.mark.parametrize("last", ['{"command": "echo x", "priority": 11}', '{"id": "keep", '
                                  '"command": "echo again"}', '{"id": "b7", "command": "y"}'])
def test_big_file_with_a_bad_last_line_stores_nothing(cli: Cli, tmp_path: Path,
                                                     last: str) -> None:
    """Lines are validated while earlier slices are being written: a bad line after
    thousands of good ones still leaves the store as it was."""
    enqueue(cli, "echo keep", "--id", "keep")
    before = jobs(cli)
    batch = tmp_path / "jobs.jsonl"
    good = [f'{{"id": "b{i}", "command": "echo {i}"}}' for i in range(5000)]
    batch.write_text("\n".join([*good, last]) + "\n")
    result = cli("enqueue", "--file", str(batch))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("queuectl: error: ")
    assert "line 5001" in result.stderr or "already exists" in result.stderr
    assert jobs(cli) == before
    status = json.loads(cli("status", "--json").stdout)
    assert status["counts"]["pending"] == 1


def test_duplicate_id_exit_2_no_overwrite(cli: Cli) -> None:
    enqueue(cli, '{"id":"job1","command":"sleep 2"}')
    before = jobs(cli)
    fails(cli("enqueue", '{"id":"job1","command":"echo other"}'), 2, "job1")
    fails(cli("add", "echo other", "--id", "job1"), 2, "job1")
    assert jobs(cli) == before


@pytest.mark.parametrize("args,needle", [
    (['{"id":"x","command":"echo","bogus":1}'], "bogus"),
    (['{"id":"x","command":'], "JSON"),
    (["echo hi", "--priority", "11"], "priority"),
    (["echo hi", "--priority", "high"], "priority"),
    (["echo hi", "--delay", "soon"], "delay"),
    (["echo hi", "--run-at", "tomorrowish"], "time"),
    (["echo hi", "--max-retries", "-1"], "max_retries"),
    (["echo hi", "--timeout", "abc"], "timeout"),
    (["echo hi", "--backoff-base", "x"], "backoff_base"),
    ([], "no job given"),
])
def test_enqueue_bad_input(cli: Cli, args: list[str], needle: str) -> None:
    enqueue(cli, "echo keep", "--id", "keep")
    before = jobs(cli)
    fails(cli("enqueue", *args), 2, needle)
    assert jobs(cli) == before


@pytest.mark.parametrize("args", [
    ["echo \udcff"],                                    # argv bytes that are not UTF-8
    ["true", "--id", "a\udcffb"],
    ["true", "--unique-key", "k\udcff"],
    ['{"command":"echo \\ud800"}'],                    # a lone surrogate in JSON
    ['{"id":"x\\ud800","command":"true"}'],
    ['{"command":"echo $A","env":{"A":"\\udc80"}}'],
    ['{"command":"pwd","cwd":"/tmp/\\ud800"}'],
])
def test_enqueue_text_that_is_not_utf8(cli: Cli, args: list[str]) -> None:
    enqueue(cli, "echo keep", "--id", "keep")
    before = jobs(cli)
    fails(cli("enqueue", *args), 2, "UTF-8")
    assert jobs(cli) == before


def test_enqueue_env_value_with_nul(cli: Cli) -> None:
    enqueue(cli, "echo keep", "--id", "keep")
    before = jobs(cli)
    fails(cli("enqueue", '{"command":"echo $A","env":{"A":"a\\u0000b"}}'), 2, "NUL")
    assert jobs(cli) == before


def test_enqueue_stdin_that_is_not_utf8(store_url: str) -> None:
    import os
    import sys

    result = subprocess.run([sys.executable, "-m", "queuectl", "--db", store_url, "enqueue",
                             "--file", "-"], input=b"echo \xff\n", capture_output=True,
                            timeout=60, env=dict(os.environ, LC_ALL="C"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.decode().startswith("queuectl: error: - is not UTF-8 text")


@pytest.mark.parametrize("args", [["show", "abc\udcff"], ["cancel", "abcd\udcff"],
                                  ["list", "--queue", "q\udcff"]])
def test_lookup_with_text_that_is_not_utf8(cli: Cli, args: list[str]) -> None:
    enqueue(cli, "echo keep", "--id", "keep")
    fails(cli(*args), 2, "UTF-8")


# -- schedule --------------------------------------------------------------------------
def test_schedule_relative(cli: Cli) -> None:
    job_id = ok(cli("schedule", "backup", "+1h")).strip()
    job = show(cli, job_id)
    assert job["state"] == "scheduled" and job["command"] == "backup"
    scheduled = as_json(cli("scheduled", "--json"))
    assert [j["id"] for j in scheduled] == [job_id]


def test_schedule_local_datetime(cli: Cli) -> None:
    job_id = ok(cli("schedule", "daily backup", "2025-11-10 02:00:00")).strip()
    assert show(cli, job_id)["command"] == "daily backup"


def test_schedule_bad_time(cli: Cli) -> None:
    fails(cli("schedule", "backup", "someday"), 2, "someday")
    assert jobs(cli) == {}


# -- listing ---------------------------------------------------------------------------
def test_list_forms(cli: Cli) -> None:
    enqueue(cli, "echo a", "--id", "pend")
    enqueue(cli, "echo b", "--id", "sched", "--delay", "1h")
    assert "pend" in ok(cli("list"))
    pending_text = ok(cli("list", "--state", "pending"))
    assert "pend" in pending_text and "sched" not in pending_text
    s0 = ok(cli("list-jobs", "pending"))
    assert "pend" in s0 and "sched" not in s0
    scheduled = ok(cli("scheduled"))
    assert "sched" in scheduled and "pend" not in scheduled
    assert ok(cli("list-jobs", "completed")).strip() == "No completed jobs."


def test_list_json_both_placements(cli: Cli) -> None:
    enqueue(cli, "echo a", "--id", "a")
    enqueue(cli, "echo b", "--id", "b")
    front = cli("--json", "list")
    back = cli("list", "--json")
    for result in (front, back):
        data = as_json(result)
        assert isinstance(data, list)
        assert [job["id"] for job in data] == ["b", "a"]  # newest first
        for job in data:
            assert_iso_z(job)
            assert job["created_at"].endswith("Z")
    assert as_json(cli("list-jobs", "pending", "--json"))[0]["id"] == "b"
    assert as_json(cli("list", "--state", "completed", "--json")) == []


def test_list_bad_state(cli: Cli) -> None:
    fails(cli("list", "--state", "nonsense"), 2, "nonsense")


# -- show / cancel / retry --------------------------------------------------------------
def test_show(cli: Cli) -> None:
    enqueue(cli, "--id", "job1", "--command", "echo Hello World")
    text = ok(cli("show", "job1"))
    assert "job1" in text and "echo Hello World" in text and "pending" in text
    job = as_json(cli("show", "job1", "--json"))
    assert job["id"] == "job1" and job["attempts"] == 0 and job["history"] == []
    assert_iso_z(job)


def test_show_not_found(cli: Cli) -> None:
    ok(cli("migrate"))
    fails(cli("show", "nope"), 1, "nope")


def test_prefix_and_ambiguous_prefix(cli: Cli) -> None:
    enqueue(cli, "echo 1", "--id", "abcd1")
    enqueue(cli, "echo 2", "--id", "abcd2")
    assert show(cli, "abcd1")["id"] == "abcd1"
    line = fails(cli("show", "abcd"), 2, "ambiguous")
    assert "abcd1" in line and "abcd2" in line
    enqueue(cli, "echo 3", "--id", "wxyz-long-id")
    assert show(cli, "wxyz")["id"] == "wxyz-long-id"
    fails(cli("show", "wxy"), 1)  # a prefix needs four characters


@pytest.mark.parametrize("verb", ["cancel", "dequeue"])
def test_cancel_and_dequeue(cli: Cli, verb: str) -> None:
    enqueue(cli, "--id", "job3", "--command", "echo Priority Task", "--priority", "8")
    out = ok(cli(verb, "job3"))
    assert "cancelled" in out
    assert show(cli, "job3")["state"] == "cancelled"
    before = jobs(cli)
    fails(cli(verb, "job3"), 1, "cancelled")  # not cancellable twice
    assert jobs(cli) == before
    fails(cli(verb, "missing"), 1, "missing")


def test_retry_cancelled(cli: Cli) -> None:
    enqueue(cli, "echo hi", "--id", "r1")
    ok(cli("cancel", "r1"))
    job = as_json(cli("retry", "r1", "--json"))
    assert job["state"] == "pending"
    assert show(cli, "r1")["state"] == "pending"


def test_retry_pending_is_an_error(cli: Cli) -> None:
    enqueue(cli, "echo hi", "--id", "r1")
    before = jobs(cli)
    fails(cli("retry", "r1"), 1)
    assert jobs(cli) == before


# -- worker runs, wait, logs, dlq ---------------------------------------------------------
def test_dlq_list_and_retry_by_id(cli: Cli) -> None:
    make_dead(cli, "job2")
    assert "job2" in ok(cli("dlq", "list"))
    dead = as_json(cli("dlq", "list", "--json"))
    assert [job["id"] for job in dead] == ["job2"]
    assert dead[0]["attempts"] == 1
    ok(cli("dlq", "retry", "job2"))
    job = show(cli, "job2")
    assert job["state"] == "pending" and job["attempts"] == 0
    assert job["history"], "dlq retry keeps the attempt history"
    assert as_json(cli("--json", "dlq", "list")) == []


def test_dlq_retry_uuid_prefix(cli: Cli) -> None:
    job_id = enqueue(cli, "exit 1", "--max-retries", "0")
    run_burst(cli)
    assert show(cli, job_id)["state"] == "dead"
    ok(cli("dlq", "retry", job_id[:8]))  # documented form: dlq retry 08232c92
    assert show(cli, job_id)["state"] == "pending"
    run_burst(cli)
    ok(cli("dlq", "retry", job_id))  # the full UUID
    assert show(cli, job_id)["state"] == "pending"


def test_dlq_retry_job_id_option(cli: Cli) -> None:
    make_dead(cli, "d1")
    ok(cli("dlq", "retry", "--job-id", "d1"))
    assert show(cli, "d1")["state"] == "pending"


def test_dlq_retry_all_and_purge(cli: Cli) -> None:
    enqueue(cli, "exit 1", "--id", "d1", "--max-retries", "0")
    enqueue(cli, "exit 2", "--id", "d2", "--max-retries", "0")
    enqueue(cli, "true", "--id", "fine")
    run_burst(cli)
    result = as_json(cli("dlq", "retry", "--all", "--json"))
    assert result["retried"] == 2 and set(result["ids"]) == {"d1", "d2"}
    retried = show(cli, "d1")
    assert retried["state"] == "pending" and retried["attempts"] == 0
    # a fresh start: the last run's result stays in the history only
    assert (retried["error"], retried["exit_code"], retried["finished_at"]) == (None, None, None)
    assert [entry.get("exit_code") for entry in retried["history"]][:1] == [1]
    run_burst(cli)
    assert as_json(cli("dlq", "purge", "--yes", "--json"))["purged"] == 2
    assert set(jobs(cli)) == {"fine"}
    assert "0 dead job(s) deleted" in ok(cli("dlq", "purge", "--yes"))


def test_dlq_retry_errors(cli: Cli) -> None:
    enqueue(cli, "echo hi", "--id", "alive")
    before = jobs(cli)
    fails(cli("dlq", "retry"), 2)
    fails(cli("dlq", "retry", "alive", "--all"), 2)
    fails(cli("dlq", "retry", "alive"), 1)  # not dead
    fails(cli("dlq", "retry", "ghost"), 1, "ghost")
    assert jobs(cli) == before


def test_wait_completed_dead_timeout(cli: Cli) -> None:
    enqueue(cli, "echo waited-output", "--id", "good")
    enqueue(cli, "exit 3", "--id", "bad", "--max-retries", "0")
    run_burst(cli)
    assert ok(cli("wait", "good")).strip() == "good: completed"
    result = cli("wait", "bad")
    assert result.returncode == 1 and "dead" in result.stdout
    assert "Traceback" not in result.stderr
    assert cli("wait", "good", "bad", "--quiet").returncode == 1
    # logs: the captured output
    assert "waited-output" in ok(cli("logs", "good"))
    assert "waited-output" in as_json(cli("logs", "good", "--json"))["output"]
    # --timeout on a job that never runs
    enqueue(cli, "echo later", "--id", "never", "--delay", "1h")
    slow = cli("wait", "never", "--timeout", "0.3")
    assert slow.returncode == 1 and "timed out" in slow.stderr
    data = json.loads(cli("--json", "wait", "never", "--timeout", "0.2").stdout)
    assert data["timed_out"] is True and data["all_completed"] is False
    fails(cli("wait", "never", "--timeout", "-1"), 2)
    fails(cli("wait", "ghost"), 1, "ghost")


def test_start_stop_status(cli: Cli) -> None:
    enqueue(cli, "echo 'Hello World'")
    enqueue(cli, "invalid_command", "--max-retries", "0")
    ok(cli("start", "--count", "2", "--timeout", "1", timeout=60))
    status = as_json(cli("status", "--json"))
    assert status["counts"]["completed"] == 1
    assert status["counts"]["dead"] == 1
    assert status["total"] == 2
    assert "completed" in ok(cli("status"))
    ok(cli("stop"))  # nothing running: still fine


def test_logs_not_found(cli: Cli) -> None:
    ok(cli("migrate"))
    fails(cli("logs", "ghost"), 1, "ghost")


# -- config ----------------------------------------------------------------------------
CONFIG_KEYS = {"max-retries", "backoff-base", "backoff-max", "backoff-jitter",
               "job-timeout", "worker-count", "poll-interval", "heartbeat-interval",
               "lease-timeout", "output-limit", "output-file-max", "retention",
               "log-level", "priority-aging", "on-dead", "on-complete", "hook-timeout",
               "retry-on", "no-retry-on"}


@pytest.mark.parametrize("args", [[], ["show"], ["list"]])
def test_config_show_forms(cli: Cli, args: list[str]) -> None:
    ok(cli("migrate"))  # a store (config reads on no store at all fail with exit 3)
    text = ok(cli("config", *args))
    for key in CONFIG_KEYS:
        assert key in text
    data = as_json(cli("config", *args, "--json"))
    assert set(data) == CONFIG_KEYS
    assert data["max-retries"] == {"value": 3, "source": "default"}
    assert as_json(cli("--json", "config", *args)) == data


def test_config_get_set_forms(cli: Cli) -> None:
    ok(cli("migrate"))
    assert ok(cli("config", "get", "max-retries")).strip() == "3"
    ok(cli("config", "set", "max-retries", "5"))
    assert ok(cli("config", "get", "max_retries")).strip() == "5"
    ok(cli("config", "set", "backoff-base", "3"))
    assert ok(cli("config", "get", "backoff_base")).strip() == "3"
    ok(cli("config", "set", "--key", "max_retries", "--value", "6"))
    assert ok(cli("config", "get", "max-retries")).strip() == "6"
    ok(cli("config", "--key", "max_retries", "--value", "7"))
    ok(cli("config", "--key", "backoff_base", "--value", "4"))
    assert ok(cli("config", "--key", "max-retries")).strip() == "7"
    data = as_json(cli("config", "--json"))
    assert data["max-retries"] == {"value": 7, "source": "stored"}
    assert data["backoff-base"]["value"] == 4
    got = as_json(cli("--json", "config", "get", "backoff-base"))
    assert got == {"key": "backoff-base", "value": 4, "source": "stored"}
    ok(cli("config", "unset", "backoff_base"))
    assert as_json(cli("config", "get", "backoff-base", "--json"))["source"] == "default"
    # the stored value is used by new jobs' retry budget
    enqueue(cli, "exit 1", "--id", "budget")
    run_burst_env = cli("config", "set", "max-retries", "0")
    ok(run_burst_env)
    run_burst(cli)
    assert show(cli, "budget")["attempts"] == 1


def _config_snapshot(cli: Cli) -> Any:
    """The stored config; None when no store exists yet."""
    result = cli("config", "--json")
    if result.returncode == 3 and "no queue at" in result.stderr:
        return None
    return as_json(result)


@pytest.mark.parametrize("args", [
    ["set", "bogus", "3"],
    ["set", "--key", "bogus", "--value", "3"],
    ["--key", "bogus", "--value", "3"],
    ["get", "bogus"],
    ["unset", "bogus"],
])
def test_config_unknown_key(cli: Cli, args: list[str]) -> None:
    before = _config_snapshot(cli)
    line = fails(cli("config", *args), 2, "bogus")
    for key in ("max-retries", "backoff-base", "retention"):
        assert key in line  # the valid keys are listed
    assert _config_snapshot(cli) == before


@pytest.mark.parametrize("key,value", [
    ("max-retries", "abc"), ("max-retries", "-3"), ("max_retries", "1.5"),
    ("backoff-base", "zero"), ("backoff-jitter", "maybe"), ("job-timeout", "-1"),
    ("worker-count", "0"), ("log-level", "LOUD"), ("retention", "forever"),
])
def test_config_bad_value_writes_nothing(cli: Cli, key: str, value: str) -> None:
    ok(cli("config", "set", "max-retries", "4"))
    before = _config_snapshot(cli)
    fails(cli("config", "set", key, value), 2, key.replace("_", "-"))
    fails(cli("config", "--key", key, "--value", value), 2)
    assert _config_snapshot(cli) == before


def test_config_usage_errors(cli: Cli) -> None:
    fails(cli("config", "--value", "3"), 2, "--key")
    fails(cli("config", "set", "max-retries"), 2)


# -- clear / purge / cleanup / status / time ----------------------------------------------
def test_clear_yes(cli: Cli) -> None:
    enqueue(cli, "echo a", "--id", "a")
    enqueue(cli, "echo b", "--id", "b")
    before = jobs(cli)
    fails(cli("clear", input=""), 2, "--yes")  # stdin is not a terminal
    assert jobs(cli) == before
    assert "2" in ok(cli("clear", "--yes"))
    assert jobs(cli) == {}
    assert as_json(cli("clear", "--yes", "--json")) == {"deleted": 0}


def test_purge_older_than_and_cleanup(cli: Cli) -> None:
    enqueue(cli, "true", "--id", "done")
    enqueue(cli, "echo wait", "--id", "waiting", "--delay", "1h")
    run_burst(cli)
    assert as_json(cli("purge", "--older-than", "7d", "--yes", "--json"))["purged"] == 0
    assert "done" in jobs(cli)
    fails(cli("purge", "--older-than", "a week"), 2, "older-than")
    fails(cli("purge", "--older-than", "1d", "--state", "pending"), 2, "pending")
    assert as_json(cli("--json", "purge", "--older-than", "0", "--yes"))["purged"] == 1
    assert set(jobs(cli)) == {"waiting"}
    report = as_json(cli("cleanup", "--json"))
    assert report["requeued"] == [] and report["purged"] == 0
    assert "dead worker" in ok(cli("cleanup"))


def test_status_json_and_text(cli: Cli) -> None:
    enqueue(cli, "echo a")
    enqueue(cli, "echo b", "--delay", "1h")
    data = as_json(cli("--json", "status"))
    assert data["counts"]["pending"] == 1 and data["counts"]["scheduled"] == 1
    assert data["total"] == 2
    assert as_json(cli("status", "--json"))["total"] == 2
    assert "pending" in ok(cli("status"))


def test_time(cli: Cli) -> None:
    text = ok(cli("time"))
    assert "Local:" in text and "UTC:" in text
    data = as_json(cli("time", "--json"))
    assert ISO_Z.match(data["utc"])


# -- global ----------------------------------------------------------------------------
def test_version_and_help(cli: Cli) -> None:
    assert re.match(r"queuectl, version \d", ok(cli("--version")))
    text = ok(cli("--help"))
    for name in ("enqueue", "list", "dlq", "config", "worker", "status"):
        assert name in text
    assert "Usage" in ok(cli("enqueue", "--help"))
    assert "retry" in ok(cli("dlq", "--help"))


def test_unknown_command_and_option(cli: Cli) -> None:
    fails(cli("frobnicate"), 2, "frobnicate")
    fails(cli("list", "--bogus"), 2, "--bogus")
    fails(cli("list", "--limit", "many"), 2, "--limit")


def test_no_traceback_on_unreadable_file(cli: Cli, tmp_path: Path) -> None:
    fails(cli("enqueue", "--file", str(tmp_path / "missing.jsonl")), 2, "missing.jsonl")


@pytest.mark.parametrize("args", [["worker", "status"], ["workers"], ["worker", "stop"],
                                  ["stop"], ["scheduler", "status"]])
def test_worker_inspection_without_workers(cli: Cli, args: list[str]) -> None:
    ok(cli("migrate"))  # a store without workers (on no store at all: exit 3)
    ok(cli(*args))
    data = as_json(cli(*args, "--json"))
    assert isinstance(data, dict)
    assert as_json(cli("--json", *args)) == data


@pytest.mark.parametrize("args", [["worker", "start", "--detach", "--json"],
                                  ["start", "--detach", "--json"],
                                  ["--json", "worker", "start", "--detach"]])
def test_json_after_worker_start_and_scheduler_logs(cli: Cli, args: list[str]) -> None:
    started = as_json(cli(*args))
    try:
        assert started["slots"] == 1 and started["pid"] > 0
        for form in (["scheduler", "logs", "--json"], ["--json", "scheduler", "logs"]):
            shown = as_json(cli(*form))
            assert shown["log"] == started["log"]
            assert any("started" in line for line in shown["lines"])
    finally:
        ok(cli("worker", "stop", "--wait"))


@pytest.mark.parametrize("name", ["", "bad name!"])
def test_worker_start_rejects_a_bad_queue_name(cli: Cli, name: str) -> None:
    fails(cli("worker", "start", "--queue", name, "--burst", timeout=20), 2,
          "invalid queue name")
    fails(cli("start", "--detach", "--queue", name, timeout=20), 2, "invalid queue name")
    assert jobs(cli) == {}  # nothing written
    ok(cli("migrate"))
    assert ok(cli("workers")).startswith("No workers")


def test_postgres_password_is_never_shown(pg_url: str) -> None:
    from tests.conftest import run_cli, wait_for

    url = pg_url.replace("postgresql://postgres@", "postgresql://postgres:s3cret@", 1)
    assert "s3cret" in url
    for args in (["status"], ["--json", "status"], ["migrate"], ["--json", "migrate"]):
        result = run_cli(*args, db=url)
        assert result.returncode == 0, result.stderr
        assert "s3cret" not in result.stdout + result.stderr, args
    assert "postgres:***@" in run_cli("status", db=url).stdout
    started = run_cli("--json", "worker", "start", "--detach", db=url)
    assert started.returncode == 0, started.stderr
    pid = json.loads(started.stdout)["pid"]
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:  # what `ps` shows everyone
            assert b"s3cret" not in handle.read()
    finally:
        assert run_cli("worker", "stop", "--wait", db=url).returncode == 0
    log = wait_for(lambda: (lambda text: "started" in text and text)(
        run_cli("scheduler", "logs", db=url).stdout), message="the worker log")
    assert isinstance(log, str) and "s3cret" not in log


def test_another_programs_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    import sqlite3

    from tests.conftest import run_cli

    other = tmp_path / "app.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE foo (x)")
        conn.execute("INSERT INTO foo VALUES (1)")
    before = other.read_bytes()
    for args in (["status"], ["enqueue", "echo hi"], ["list"]):
        fails(run_cli(*args, db=str(other)), 3, "another program")
    assert other.read_bytes() == before
    with sqlite3.connect(other) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
    assert names == ["foo"]


def test_corrupt_store_exit_3_untouched(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database\n" * 10)
    for args in (["list"], ["enqueue", "echo hi"], ["config", "set", "max-retries", "5"]):
        fails(run_cli(*args, db=str(bad)), 3, "corrupt")
    assert bad.read_bytes() == b"not a database\n" * 10
    missing = tmp_path / "no-such-dir-file"
    missing.write_text("")
    fails(run_cli("list", db=str(missing / "q.db")), 3)


def test_status_says_how_many_waiting_jobs_are_due(cli: Any) -> None:
    assert cli("enqueue", "--command", "true", "--run-at", "+1h").returncode == 0
    assert "Due now" not in cli("status").stdout  # scheduled, but not due
    assert cli("enqueue", "--command", "true", "--run-at", "+1s").returncode == 0
    wait_for(lambda: "Due now: 1 of the scheduled/failed jobs" in cli("status").stdout,
             timeout=15, message="status reporting the due job")
    assert '"due_waiting": 1' in cli("--json", "status").stdout
