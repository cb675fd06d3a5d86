"""`queuectl cron` through the real error funnel (in process, `queuectl.cli.main`) on
both stores: add/list/remove/pause/resume/run, the --json shapes, and bad input (one
line, exit 2 or 1, nothing written).  One subprocess test runs a real supervisor."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from queuectl import cron
from queuectl.cli import main
from queuectl.queue import Queue
from tests.conftest import run_cli, wait_for


class Cli:
    def __init__(self, url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.url = url
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main(["--db", self.url, *args])
        out, err = self.capsys.readouterr()
        return (0 if exc.value.code is None else int(exc.value.code)), out, err

    def ok(self, *args: str) -> str:
        code, out, err = self(*args)
        assert code == 0, (args, err)
        return out

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def fails(self, code: int, *args: str) -> str:
        before = self.json("cron", "list")
        found, out, err = self(*args)
        assert found == code, (args, found, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("queuectl: error: "), err
        assert self.json("cron", "list") == before  # nothing changed
        return lines[0]


@pytest.fixture
def cli(store_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(store_url, capsys)


def test_add_list_pause_resume_run_remove(cli: Cli) -> None:
    out = cli.ok("cron", "add", "backup", "0 3 * * *", "tar czf /tmp/b.tgz /etc",
                 "--tz", "Europe/Berlin", "--queue", "ops", "--priority", "7",
                 "--timeout", "10m", "--max-retries", "1", "--no-overlap",
                 "--catch-up", "all")
    assert out.startswith("backup: next run ") and out.strip().endswith(" 03:00 (Europe/Berlin)")
    cli.ok("cron", "add", "tick", "@hourly", "echo", "a b", "--unique")
    listed = cli.json("cron", "list")
    assert [s["name"] for s in listed] == ["backup", "tick"]
    backup, tick = listed
    assert backup["job"] == {"command": "tar czf /tmp/b.tgz /etc", "queue": "ops",
                             "priority": 7, "timeout": 600.0, "max_retries": 1}
    assert (backup["tz"], backup["catch_up"], backup["no_overlap"], backup["paused"],
            backup["last_run_at"], backup["last_state"]) == \
        ("Europe/Berlin", "all", True, False, None, None)
    assert backup["next_run_at"].endswith(":00:00Z")
    assert tick["schedule"] == "@hourly" and tick["command"] == "echo 'a b'"
    assert tick["job"]["unique"] is True

    table = cli.ok("cron", "list")
    assert table.splitlines()[0].split() == ["NAME", "SCHEDULE", "NEXT", "RUN", "LAST",
                                             "RUN", "STATE"]
    assert max(len(line) for line in table.splitlines()) <= 80

    assert cli.ok("cron", "pause", "backup").strip() == "backup: paused"
    assert cli.json("cron", "list")[0]["paused"] is True
    assert "paused" in cli.ok("cron", "list").splitlines()[1]
    assert cli.ok("cron", "resume", "backup").startswith("backup: resumed, next run ")

    job_id = cli.ok("cron", "run", "backup").strip()
    assert job_id.startswith("backup@run-")
    shown = cli.json("show", job_id)
    assert (shown["command"], shown["queue"], shown["priority"], shown["state"]) == \
        ("tar czf /tmp/b.tgz /etc", "ops", 7, "pending")
    backup = cli.json("cron", "list")[0]
    assert backup["last_job_id"] == job_id and backup["last_state"] == "pending"

    assert cli.ok("cron", "remove", "backup").strip() == "backup: removed"
    assert [s["name"] for s in cli.json("cron", "list")] == ["tick"]
    assert cli.json("show", job_id)["state"] == "pending"  # its run stays


def test_an_empty_list(cli: Cli) -> None:
    cli.ok("cron", "add", "tick", "* * * * *", "true")
    cli.ok("cron", "remove", "tick")
    assert cli.ok("cron", "list").strip() == "No cron schedules."
    assert cli.json("cron", "list") == []


@pytest.mark.parametrize("args, needle", [
    (["61 * * * *", "x"], "invalid cron schedule '61 * * * *'"),
    (["* * * *", "x"], "5 fields"),
    (["@often", "x"], "invalid cron schedule '@often'"),
    (["* * * * *", "x", "--tz", "Mars/Base"], "unknown time zone 'Mars/Base'"),
    (["* * * * *", "x", "--tz", "../etc/passwd"], "unknown time zone"),
    (["* * * * *", "x", "--catch-up", "some"], "'some' is not one of"),
    (["* * * * *", "x", "--priority", "11"], "priority must be between 1 and 10"),
    (["* * * * *", "x", "--timeout", "soon"], "timeout"),
    (["* * * * *", "x", "--queue", "a b"], "invalid queue name"),
    (["* * * * *"], "Missing argument"),
])
def test_bad_input_is_one_line_and_exit_2(cli: Cli, args: list[str], needle: str) -> None:
    cli.ok("cron", "add", "tick", "* * * * *", "true")
    assert needle in cli.fails(2, "cron", "add", "new", *args)


def test_bad_and_duplicate_names(cli: Cli) -> None:
    cli.ok("cron", "add", "tick", "* * * * *", "true")
    assert "already exists" in cli.fails(2, "cron", "add", "tick", "@daily", "false")
    assert "invalid cron schedule name" in cli.fails(2, "cron", "add", "a b", "@daily", "x")
    assert cli.json("cron", "list")[0]["command"] == "true"


@pytest.mark.parametrize("verb", ["remove", "pause", "resume", "run"])
def test_unknown_names_exit_1(cli: Cli, verb: str) -> None:
    cli.ok("cron", "add", "tick", "* * * * *", "true")
    assert "no cron schedule 'nope'" in cli.fails(1, "cron", verb, "nope")


def test_cron_list_on_a_missing_file_creates_nothing(tmp_path: Any,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    path = tmp_path / "none.db"
    code, _, err = Cli(str(path), capsys)("cron", "list")
    assert code == 3 and "no queue at" in err and not path.exists()


def test_two_running_supervisors_fire_each_instant_once(store_url: str) -> None:
    """Real workers: an every-minute schedule whose last four instants are made due
    by moving its next instant into the past (no waiting for real minutes); two
    supervisors race on them, and each instant runs once."""
    assert run_cli("cron", "add", "tick", "* * * * *", "echo fired", "--catch-up", "all",
                   db=store_url).returncode == 0
    with Queue(store_url) as queue:
        first = queue.backend.cron_get("tick")
        assert first is not None
        expected = [cron.run_id("tick", first.next_fire_at - 60 * k, first.tz)
                    for k in (4, 3, 2, 1)]
        queue.backend.execute_raw(  # type: ignore[attr-defined]
            "UPDATE cron_schedules SET next_fire_at = next_fire_at - 240")
    workers = [subprocess.Popen([sys.executable, "-m", "queuectl", "--db", store_url,
                                 "worker", "start", "--count", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(2)]
    try:
        with Queue(store_url) as queue:
            done = wait_for(lambda: len([j for j in queue.list_jobs()
                                         if j.state.value == "completed"]) >= 4 and
                            queue.list_jobs(), timeout=30, message="four cron runs done")
            assert isinstance(done, list)
            ids = sorted(job.id for job in done)
            # (a fifth when a real minute passed meanwhile)
            assert ids[:4] == expected and len(ids) <= 5, ids
            ran = [job for job in done if job.id in expected]
            assert all(job.attempts == 1 and "fired" in (job.output or "") for job in ran)
            schedule = queue.backend.cron_get("tick")
            assert schedule is not None and schedule.last_job_id in ids[3:]
            assert schedule.next_fire_at > queue.now()
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=20)


def test_tab_completes_schedule_names(sqlite_url: str) -> None:
    from tests.cli.test_completion import bash_complete

    for name in ("backup", "beat", "report"):
        assert run_cli("cron", "add", name, "@daily", "true", db=sqlite_url).returncode == 0
    assert bash_complete(sqlite_url, "cron", "run", "b") == ["backup", "beat"]
