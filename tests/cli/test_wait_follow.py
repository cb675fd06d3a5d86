"""`wait` without ids (every live job, or a queue's), `logs -f` without an id (the only
running job), `logs -n N -f`, and `enqueue --wait`/`--follow`, through the real CLI
against both stores with real workers."""

from __future__ import annotations

import json
import select
import subprocess
import sys
from pathlib import Path
from typing import Callable

from tests.cli.test_commands import as_json, fails, jobs, ok, show
from tests.conftest import wait_for

Cli = Callable[..., subprocess.CompletedProcess]


def _popen(store_url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "queuectl", "--db", store_url, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stderr_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    assert proc.stderr is not None
    ready, _, _ = select.select([proc.stderr], [], [], timeout)
    assert ready, "no line on stderr in time"
    return proc.stderr.readline()


def _gate(tmp_path: Path, name: str, before: str = "", after: str = "") -> str:
    """A command that prints `before`, waits for the file `name` and prints `after`."""
    path = tmp_path / name
    return (f"{before}while [ ! -e {path} ]; do sleep 0.02; done; {after}").strip()


def test_wait_without_ids_waits_for_every_live_job_of_the_queue(
        cli: Cli, store_url: str) -> None:
    ok(cli("migrate"))
    empty = cli("wait")
    assert ok(empty) == "" and "no live jobs to wait for" in empty.stderr
    ok(cli("enqueue", "--id", "good", "true"))
    ok(cli("enqueue", "--id", "bad", "--max-retries", "0", "exit 3"))
    ok(cli("enqueue", "--id", "later", "--queue", "other", "--delay", "1h", "true"))
    short = cli("wait", "--queue", "default", "--timeout", "0.2")
    assert short.returncode == 1
    assert "timed out; still bad pending, good pending" in short.stderr
    data = json.loads(cli("wait", "--timeout", "0", "--json").stdout)
    assert [j["id"] for j in data["jobs"]] == ["later", "bad", "good"]
    assert data["timed_out"] and not data["all_completed"]
    fails(cli("wait", "good", "--queue", "default"), 2, "--queue")
    fails(cli("wait", "--queue", "bad name!"), 2, "invalid queue name")
    waiter = _popen(store_url, "wait", "--queue", "default")
    try:
        assert _stderr_line(waiter).strip() == "waiting for 2 live jobs"
        ok(cli("worker", "start", "--burst", "--queue", "default", timeout=60))
        out, _ = waiter.communicate(timeout=30)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert waiter.returncode == 1  # one of them died
    assert sorted(out.splitlines()) == ["bad: dead (exit code 3)", "good: completed"]
    assert show(cli, "later")["state"] == "scheduled"  # its queue was not waited for


def test_logs_follow_without_an_id_follows_the_only_running_job(
        cli: Cli, store_url: str, tmp_path: Path) -> None:
    ok(cli("migrate"))
    fails(cli("logs", "-f"), 1, "no job is running", "give an ID")
    ok(cli("enqueue", "--id", "one", _gate(tmp_path, "go1")))
    ok(cli("enqueue", "--id", "two", _gate(tmp_path, "go2", "echo l1; echo l2; ",
                                           "echo bye")))
    ok(cli("worker", "start", "--count", "2", "--detach"))
    follower = None
    try:
        wait_for(lambda: all(show(cli, i)["state"] == "processing" for i in ("one", "two")),
                 timeout=30, message="both running")
        fails(cli("logs", "-f"), 2, "2 jobs are running (", "one", "two", "give one ID")
        (tmp_path / "go1").touch()
        wait_for(lambda: show(cli, "one")["state"] == "completed", timeout=30,
                 message="one done")
        wait_for(lambda: "l2" in ok(cli("logs", "two")), timeout=30, message="output")
        assert ok(cli("logs")) == "l1\nl2\n"  # without -f: the same job, once
        follower = _popen(store_url, "logs", "-n", "1", "-f")
        # the tail is printed before the job goes on: then let it finish
        assert follower.stdout is not None
        ready, _, _ = select.select([follower.stdout], [], [], 30)
        assert ready and follower.stdout.readline() == "l2\n"
        (tmp_path / "go2").touch()
        out, err = follower.communicate(timeout=30)
        assert follower.returncode == 0, err
        assert out == "bye\n"
    finally:
        if follower is not None and follower.poll() is None:
            follower.kill()
            follower.wait()
        ok(cli("worker", "stop", "--now", "--wait", "--wait-timeout", "30"))


def test_enqueue_wait_and_follow(cli: Cli) -> None:
    ok(cli("migrate"))
    fails(cli("enqueue", "--wait", "--follow", "true"), 2, "not both")
    fails(cli("enqueue", "--follow", "--file", "-", input="true\n"), 2, "--file")
    fails(cli("enqueue", "--follow", "--json", "true"), 2, "--wait --json")
    assert jobs(cli) == {}  # nothing was written
    ok(cli("worker", "start", "--count", "2", "--detach"))
    try:
        assert ok(cli("enqueue", "--wait", "--id", "w1", "true")) == "w1\nw1: completed\n"
        failed = cli("enqueue", "--wait", "--id", "w2", "--max-retries", "0", "exit 3")
        assert failed.returncode == 1
        assert failed.stdout == "w2\nw2: dead (exit code 3)\n"
        data = as_json(cli("enqueue", "--wait", "--json", "--id", "w3", "true"))
        assert data["all_completed"] and [j["id"] for j in data["jobs"]] == ["w3"]
        lines = 'true\n{"command": "exit 1", "max_retries": 0}\n'
        batch = cli("enqueue", "--wait", "--file", "-", input=lines)
        assert batch.returncode == 1 and batch.stdout.count(": completed") == 1
        followed = cli("enqueue", "--follow", "--id", "f1", "echo out; sleep 0.3; echo end")
        assert ok(followed) == "f1\nout\nend\n"
        dead = cli("enqueue", "--follow", "--id", "f2", "--max-retries", "0",
                   "echo partial; exit 4")
        assert dead.returncode == 1 and dead.stdout == "f2\npartial\n"
        assert "job f2 dead (exit code 4" in dead.stderr
    finally:
        ok(cli("worker", "stop", "--now", "--wait", "--wait-timeout", "30"))
